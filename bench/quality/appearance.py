"""Known pointwise appearance changes, CIELAB colour spaces, and the global colour-transfer
baseline (Reinhard et al.) the benchmark compares against."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Tensor = torch.Tensor
Appearance = Callable[[Tensor], Tensor]

_MIX = ((0.30, 0.60, 0.10), (0.15, 0.25, 0.60), (0.65, 0.05, 0.30))
_GAMMA = 0.6
_LEVELS = 4
_HUE_DEG = 120.0
# RGB → YIQ (NTSC); the inverse is computed so that the round trip is exact.
_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


def _apply_matrix(x: Tensor, m: Tensor) -> Tensor:
    """out[c] = Σ_k m[c, k] · x[k] on (N, 3, H, W)."""
    return torch.einsum("ck,nkhw->nchw", m.to(x), x)


def mix_gamma(x: Tensor) -> Tensor:
    """Fixed 3×3 channel mixing (rows sum to 1, so greys stay grey), then gamma 0.6.

    Args:
        x: (N, 3, H, W) RGB 0..1.

    Returns:
        (N, 3, H, W) RGB 0..1.
    """
    return _apply_matrix(x, torch.tensor(_MIX)).clamp(0, 1) ** _GAMMA


def posterise(x: Tensor, levels: int = _LEVELS) -> Tensor:
    """Quantise every channel to ``levels`` evenly spaced values in 0..1."""
    return (x * levels).floor().clamp(0, levels - 1) / (levels - 1)


def hue_rotate(x: Tensor, degrees: float = _HUE_DEG, clamp: bool = True) -> Tensor:
    """Rotate the chroma plane (I, Q) of YIQ by ``degrees``; luma Y is unchanged.

    Args:
        x: (N, 3, H, W) RGB 0..1.
        degrees: rotation angle.
        clamp: clip the result to 0..1 (colours rotated out of the RGB cube).
    """
    t = math.radians(degrees)
    rot = torch.tensor(((1.0, 0.0, 0.0), (0.0, math.cos(t), -math.sin(t)), (0.0, math.sin(t), math.cos(t))),
                       dtype=torch.float64)
    yiq = torch.tensor(_YIQ, dtype=torch.float64)
    out = _apply_matrix(x, torch.linalg.inv(yiq) @ rot @ yiq)
    return out.clamp(0, 1) if clamp else out


APPEARANCES: dict[str, Appearance] = {"mix_gamma": mix_gamma, "posterise": posterise, "hue120": hue_rotate}

# --------------------------------------------------------------- colour transfer

_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_WHITE = (0.95047, 1.0, 1.08883)
_EPS_LAB = (6 / 29) ** 3


def rgb_to_lab(x: Tensor) -> Tensor:
    """sRGB 0..1 (N, 3, H, W) → CIELAB (D65): L in 0..100, a and b roughly ±100."""
    lin = torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0) + 0.055) / 1.055) ** 2.4)
    xyz = _apply_matrix(lin, torch.tensor(_RGB_TO_XYZ)) / x.new_tensor(_WHITE).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPS_LAB, xyz.clamp_min(_EPS_LAB) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """CIELAB (D65) (N, 3, H, W) → sRGB, not clipped (out-of-gamut values leave 0..1)."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack((fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200), dim=1)
    xyz = torch.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * lab.new_tensor(_WHITE).view(1, 3, 1, 1)
    lin = _apply_matrix(xyz, torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)))
    return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def colour_transfer(source: Tensor, reference: Tensor, eps: float = 1e-6) -> Tensor:
    """Reinhard-style global colour transfer: match each CIELAB channel's mean and
    standard deviation of ``source`` to those of ``reference``.

    Args:
        source: (1, 3, H, W) RGB 0..1 whose colours change.
        reference: (1, 3, H', W') RGB 0..1 whose colour statistics are copied.
        eps: floor of the source's standard deviation.

    Returns:
        (1, 3, H, W) RGB, clipped to 0..1.
    """
    s, r = rgb_to_lab(source), rgb_to_lab(reference)
    mu_s, sd_s = s.mean((2, 3), keepdim=True), s.std((2, 3), keepdim=True).clamp_min(eps)
    mu_r, sd_r = r.mean((2, 3), keepdim=True), r.std((2, 3), keepdim=True)
    return lab_to_rgb((s - mu_s) / sd_s * sd_r + mu_r).clamp(0, 1)
