"""Fusion of a content map with a deconvolved appearance map (paper, eq. 4–5)."""

from __future__ import annotations

import torch

from ._check import check_shape
from .config import MaskMode


def feature_mask(features: torch.Tensor, *, kappa: float = 300.0, tau: float = 0.05, mode: MaskMode = "sigmoid") -> torch.Tensor:
    """Where a feature map has strong responses, as a 0..1 mask.

    |F(x)|² is min-max normalised to [0, 1] over each map; the mask is
    sigmoid(κ(|F|² − τ)) (paper) or the step |F|² > τ (authors' release).
    A flat map (all norms equal) gives zero everywhere.

    Args:
        features: (N, C, H, W).
        kappa: sigmoid steepness, > 0.
        tau: threshold in [0, 1].
        mode: ``"sigmoid"`` or ``"step"``.

    Returns:
        (N, 1, H, W) mask in [0, 1].

    Raises:
        ValueError: bad shape or mode.
    """
    check_shape(features, "N C H W", "features")
    if mode not in ("sigmoid", "step"):
        raise ValueError(f"mask mode must be 'sigmoid' or 'step', got {mode!r}")
    sq = features.pow(2).sum(dim=1, keepdim=True)
    lo = sq.amin(dim=(2, 3), keepdim=True)
    hi = sq.amax(dim=(2, 3), keepdim=True)
    norm = (sq - lo) / (hi - lo).clamp_min(1e-12)
    if mode == "step":
        return (norm > tau).to(features.dtype)
    return torch.sigmoid(kappa * (norm - tau))


def fuse(content: torch.Tensor, appearance: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """Blend ``content ∘ W + appearance ∘ (1 − W)``.

    Args:
        content: (N, C, H, W), e.g. F_A at layer L−1.
        appearance: (N, C, H, W), e.g. the deconvolved R_B' at layer L−1.
        weight: scalar or (N, 1, H, W) weight W = α·M in [0, 1].

    Returns:
        (N, C, H, W) fused map (F_A' at L−1). α = 1 with M = 1 returns ``content``;
        weight 0 returns ``appearance``.

    Raises:
        ValueError: the two maps differ in shape.
    """
    check_shape(content, "N C H W", "content")
    if content.shape != appearance.shape:
        raise ValueError(f"content {tuple(content.shape)} and appearance {tuple(appearance.shape)} must match")
    return content * weight + appearance * (1 - weight)
