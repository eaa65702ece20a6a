"""Known-answer cases: B' = appearance(warp(A)) from a photo, with every ground truth."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from analogy_core.image import luminance, pixel_grid, sample_bilinear

from .appearance import APPEARANCES, Appearance
from .warps import Warp, standard_warps

Tensor = torch.Tensor


def inside(points: Tensor, height: int, width: int, border: float = 0.0) -> Tensor:
    """(…) bool: the (x, y) ``points`` lie at least ``border`` px inside an H×W grid."""
    x, y = points[..., 0], points[..., 1]
    return (x >= border) & (x <= width - 1 - border) & (y >= border) & (y <= height - 1 - border)


def square_crop_resize(image: Tensor, side: int) -> Tensor:
    """Centre square crop of a (1, 3, H, W) image, resized (antialiased) to ``side``²."""
    h, w = image.shape[-2:]
    n = min(h, w)
    top, left = (h - n) // 2, (w - n) // 2
    crop = image[..., top : top + n, left : left + n]
    if n == side:
        return crop.clone()
    return F.interpolate(crop, size=(side, side), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def margin_for(size: int) -> int:
    """Width of the real-picture margin around A from which B' is sampled."""
    return math.ceil(size / 8) + 2


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding (radius 3σ)."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def texture_mask(image: Tensor, sigma: float = 1.0) -> Tensor:
    """Pixels whose smoothed luminance-gradient magnitude is above the image's median.

    The luma is blurred (σ), differentiated with central differences, and the gradient
    magnitude blurred again (σ).

    Args:
        image: (1, 3, H, W) RGB 0..1.

    Returns:
        (H, W) bool.
    """
    y = gaussian_blur(luminance(image), sigma)
    p = F.pad(y, (1, 1, 1, 1), mode="replicate")
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    g = gaussian_blur(torch.sqrt(gx**2 + gy**2), sigma)[0, 0]
    return g > g.median()



@dataclass(frozen=True, eq=False)
class Case:
    """One known-answer pair and its ground truth; images (1, 3, S, S) RGB 0..1.

    Attributes:
        name: ``photo/warp+appearance``.
        a, bp: the analogy's inputs.
        ap_true: appearance(A).
        b_true: warp(A), i.e. A(T(q)) (the margin supplies T(q) outside A).
        flow_ab, flow_ba: (S, S, 2) float64 true flows.
        visible_ab, visible_ba: (S, S) bool, the true match lies inside the other image.
        scored_ab, scored_ba: (S, S) bool, visible, textured and off the border.
    """

    name: str
    a: Tensor
    bp: Tensor
    ap_true: Tensor
    b_true: Tensor
    flow_ab: Tensor
    flow_ba: Tensor
    visible_ab: Tensor
    visible_ba: Tensor
    scored_ab: Tensor
    scored_ba: Tensor


def make_case(name: str, big: Tensor, size: int, warp: Warp, appearance: Appearance, border: int) -> Case:
    """Build a case from an enlarged picture whose centre ``size``² is A.

    Args:
        name: case name.
        big: (1, 3, size + 2m, size + 2m) RGB 0..1, m = ``margin_for(size)``.
        size: side of A and B'.
        warp: the backward warp T (in A's pixel coordinates).
        appearance: the pointwise appearance change.
        border: px at the image edges left out of the flow scores.

    Raises:
        ValueError: the warp reaches beyond the margin of ``big``.
    """
    m = (big.shape[-1] - size) // 2
    if big.shape[-2:] != (size + 2 * m, size + 2 * m):
        raise ValueError(f"big picture is {tuple(big.shape[-2:])}, expected a square of side {size} + 2·margin")
    a = big[..., m : m + size, m : m + size]
    q = pixel_grid(size, size, dtype=torch.float64)
    t_q = warp.forward(q)
    if not bool(inside(t_q + m, size + 2 * m, size + 2 * m).all()):
        raise ValueError(f"warp {warp.name} reaches beyond the {m} px margin; enlarge the margin")
    b_true = sample_bilinear(big, t_q + m)
    t_inv = warp.inverse(q)
    return Case(
        name=name, a=a, bp=appearance(b_true), ap_true=appearance(a), b_true=b_true,
        flow_ab=t_inv - q, flow_ba=t_q - q,
        visible_ab=inside(t_inv, size, size), visible_ba=inside(t_q, size, size),
        scored_ab=texture_mask(a) & inside(t_inv, size, size, border) & inside(q, size, size, border),
        scored_ba=texture_mask(appearance(b_true)) & inside(t_q, size, size, border) & inside(q, size, size, border),
    )


def build_cases(
    photos: Sequence[tuple[str, Tensor]], size: int, *, warp_seed: int = 0, select: Sequence[str] = ()
) -> list[Case]:
    """All warp × appearance cases for each photo, filtered by substrings of their names.

    Args:
        photos: (name, (1, 3, H, W) RGB 0..1) pairs.
        size: side of A.
        warp_seed: seed of the elastic field.
        select: keep cases whose name contains any of these (all when empty).
    """
    m = margin_for(size)
    border = max(2, size // 32)
    warps = standard_warps(size, warp_seed)
    cases = []
    for photo_name, photo in photos:
        big = square_crop_resize(photo, size + 2 * m)
        for warp in warps:
            for app_name, app in APPEARANCES.items():
                name = f"{photo_name}/{warp.name}+{app_name}"
                if select and not any(s in name for s in select):
                    continue
                cases.append(make_case(name, big, size, warp, app, border))
    return cases
