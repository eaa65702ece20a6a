"""Small validation helpers used at the core's public boundary."""

from __future__ import annotations

import torch


def check_shape(x: object, spec: str, name: str = "tensor") -> None:
    """Check that ``x`` is a tensor whose shape matches ``spec``.

    Args:
        x: the value to check.
        spec: space-separated dimension names; a digit fixes that dimension's size,
            e.g. ``"N 3 H W"``.
        name: what to call the value in the error message.

    Raises:
        TypeError: ``x`` is not a tensor.
        ValueError: the rank or a fixed dimension differs; the message shows both shapes.

    Example:
        >>> check_shape(torch.zeros(1, 3, 8, 8), "N 3 H W", "image")
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape ({spec}), got {type(x).__name__}")
    dims = spec.split()
    if x.dim() != len(dims) or any(d.isdigit() and int(d) != s for d, s in zip(dims, x.shape)):
        raise ValueError(f"{name} must have shape ({spec}), got {tuple(x.shape)}")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values; check the input that produced it")
