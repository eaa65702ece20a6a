"""Known-answer cases: B' = appearance(warp(A)) from a photo, with every ground truth."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from analogy_core.image import luminance, pixel_grid, sample_bilinear

from .appearance import APPEARANCES, Appearance
from .warps import REF_SIZE, Scene, Warp, extra_scenes, standard_warps

Tensor = torch.Tensor

EDGE_BAND = 12
"""Width (px) of the band along the other image's edges that ``Case.edge_ab``/``edge_ba``
mark: a covered pixel whose true match lies this close to the edge has neighbours whose
content the other image does not show, which is where matching is hardest."""


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



def wide_crop_resize(image: Tensor, height: int, width: int) -> Tensor:
    """The largest centre crop of a (1, 3, H, W) image with the aspect of ``width``:``height``,
    resized (antialiased) to that size."""
    h, w = image.shape[-2:]
    scale = min(h / height, w / width)
    ch, cw = round(height * scale), round(width * scale)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = image[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


@dataclass(frozen=True, eq=False)
class Case:
    """One known-answer pair and its ground truth; images (1, 3, H, W) RGB 0..1.

    A is S×S; B' (and B) may have another size.

    Attributes:
        name: ``photo/warp+appearance`` (with ``@size`` when not 224 px).
        a, bp: the analogy's inputs.
        ap_true: appearance(A).
        b_true: warp(A), i.e. A(T(q)) (the margin supplies T(q) outside A).
        flow_ab: (S, S, 2) float64 true flow from A into B'.
        flow_ba: (H', W', 2) float64 true flow from B' into A.
        visible_ab, visible_ba: bool masks, the true match lies inside the other image
            (the covered region).
        edge_ab, edge_ba: bool masks, covered pixels whose true match lies within
            ``EDGE_BAND`` px of the other image's edge.
        scored_ab, scored_ba: bool masks, visible, textured and off the border.
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
    edge_ab: Tensor
    edge_ba: Tensor
    scored_ab: Tensor
    scored_ba: Tensor


def make_case(
    name: str,
    big: Tensor,
    size: int,
    warp: Warp,
    appearance: Appearance,
    border: int,
    bp_hw: tuple[int, int] | None = None,
) -> Case:
    """Build a case from an enlarged picture whose centre ``size``² is A.

    Args:
        name: case name.
        big: (1, 3, size + 2·m_y, size + 2·m_x) RGB 0..1: A with a margin of real picture
            around it.
        size: side of A.
        warp: the backward warp T (from B''s pixels into A's).
        appearance: the pointwise appearance change.
        border: px at the image edges left out of the flow scores.
        bp_hw: (H', W') of B'; default A's size.

    Raises:
        ValueError: the warp reaches beyond the margin of ``big``.
    """
    my, mx = (big.shape[-2] - size) // 2, (big.shape[-1] - size) // 2
    if big.shape[-2:] != (size + 2 * my, size + 2 * mx):
        raise ValueError(f"big picture is {tuple(big.shape[-2:])}, expected A's side {size} plus even margins")
    hb, wb = bp_hw or (size, size)
    offset = torch.tensor((mx, my), dtype=torch.float64)
    a = big[..., my : my + size, mx : mx + size]
    q = pixel_grid(hb, wb, dtype=torch.float64)
    t_q = warp.forward(q)
    if not bool(inside(t_q + offset, size + 2 * my, size + 2 * mx).all()):
        raise ValueError(f"warp {warp.name} reaches beyond the ({mx}, {my}) px margin; enlarge the margin")
    b_true = sample_bilinear(big, t_q + offset)
    p = pixel_grid(size, size, dtype=torch.float64)
    t_inv = warp.inverse(p)
    visible_ab, visible_ba = inside(t_inv, hb, wb), inside(t_q, size, size)
    return Case(
        name=name, a=a, bp=appearance(b_true), ap_true=appearance(a), b_true=b_true,
        flow_ab=t_inv - p, flow_ba=t_q - q,
        visible_ab=visible_ab, visible_ba=visible_ba,
        edge_ab=visible_ab & ~inside(t_inv, hb, wb, EDGE_BAND),
        edge_ba=visible_ba & ~inside(t_q, size, size, EDGE_BAND),
        scored_ab=texture_mask(a) & inside(t_inv, hb, wb, border) & inside(p, size, size, border),
        scored_ba=texture_mask(appearance(b_true)) & inside(t_q, size, size, border) & inside(q, hb, wb, border),
    )


def _reach(scene: Scene, size: int) -> tuple[int, int]:
    """Margins (x, y) in px that a scene's warp needs around A."""
    q = pixel_grid(*scene.bp_hw, dtype=torch.float64)
    t = scene.warp.forward(q)
    over_x = max(0.0, float(-t[..., 0].min()), float(t[..., 0].max() - (size - 1)))
    over_y = max(0.0, float(-t[..., 1].min()), float(t[..., 1].max() - (size - 1)))
    return math.ceil(over_x) + 2, math.ceil(over_y) + 2


def case_name(photo: str, warp: str, appearance: str, size: int) -> str:
    """``photo/warp+appearance``, with ``@size`` when the size is not the reference 224 px."""
    return f"{photo}/{warp}+{appearance}" + ("" if size == REF_SIZE else f"@{size}")


def build_cases(
    photos: Sequence[tuple[str, Tensor]],
    size: int,
    *,
    warp_seed: int = 0,
    select: Sequence[str] = (),
    extra: bool = True,
) -> list[Case]:
    """All warp × appearance cases for each photo, filtered by substrings of their names.

    The standard warps (shift, affine, elastic) keep A and B' the same size with a margin
    of ``margin_for(size)``; the extra scenes (overlap, zoom) get the margins they need.

    Args:
        photos: (name, (1, 3, H, W) RGB 0..1) pairs.
        size: side of A.
        warp_seed: seed of the elastic field.
        select: keep cases whose name contains any of these (all when empty).
        extra: include the overlap and zoom scenes.
    """
    m = margin_for(size)
    border = max(2, size // 32)
    scenes = [Scene(w, (size, size)) for w in standard_warps(size, warp_seed)]
    extras = extra_scenes(size) if extra else []
    cases = []
    for photo_name, photo in photos:
        square = square_crop_resize(photo, size + 2 * m)
        for scene in scenes + extras:
            big = square
            if scene in extras:
                mx, my = _reach(scene, size)
                big = wide_crop_resize(photo, size + 2 * my, size + 2 * mx)
            for app_name, app in APPEARANCES.items():
                name = case_name(photo_name, scene.warp.name, app_name, size)
                if select and not any(s in name for s in select):
                    continue
                cases.append(make_case(name, big, size, scene.warp, app, border, scene.bp_hw))
    return cases
