"""Pixel-level refinement of correspondence fields, after the relu1_1 search.

The coarse-to-fine search ends with a field on the relu1_1 grid that is only as good as
the ×2 upsampling of relu2_1 allows: every layer doubles the field of the layer above,
and at relu1_1 the fused F_A' is mostly B' features pulled through that very field, so
the search confirms its start and the field keeps an error of one or two pixels. This
stage removes that floor with a cost that an appearance change cannot lock: for every
integer offset d within a small radius of the current field it correlates the source's
luminance in a window around p with the target's luminance sampled along the field
plus d. Normalised cross-correlation ignores any local gain and bias of the target's
brightness, and its square ignores the sign, so colour mixing, gamma, hue rotation and
posterisation all keep the right match on top. The best offset is refined to sub-pixel
precision with a parabola through its neighbours' costs.

``refine_pyramid`` runs this coarse to fine, from a quarter of the network's grid up to
the images' own sizes, so that errors of several pixels are in reach of a small search.
At the coarsest level pixels may first take over a neighbour's displacement where it
correlates better (propagation); after every level's search a pixel may take the
displacement its distinctive neighbours agree on where its own window cannot tell
(along an edge, on a ramp: the aperture problem), and the last level ends with a
Gauss-Newton step of the sub-pixel shift under a local gain and bias, after which a
pixel in a region moved by whole pixels takes the whole-pixel position where it
correlates as well (a copy is sharp, a bilinear sample blurs), and a region's whole-pixel
displacement goes to its pixels that missed it (``_whole_pixel_regions``). With both
directions refined, ``exchange_whole_pixels`` lets each direction's exact matches correct
the other's.

Before each pass the field is smoothed among neighbours that agree with it (within
``smooth_tol`` px): that removes the rounding noise of an integer field without mixing
separate pieces of a collage. A pixel keeps its old match unless the source is textured
there, the new match correlates well (1 − r² ≤ ``max_cost``) and, for a move to another
integer offset, it beats the old match by ``margin``.

Pairs of different scenes (a photo and a painting, two photos of different places) are left
exactly as the deep search made them: the refinement runs only for a pair in which at least
``MIN_MATCHED`` of the textured source pixels have a match the two images confirm
(``matched_fraction``): the deep fields lead there and back (within ``GATE_CYCLE_TOL`` px),
and the luminance windows correlate there (1 − r² ≤ ``GATE_COST`` within 1 px) distinctly
(every offset ``GATE_RING`` px away correlates worse by ``GATE_DISTINCT``). Views of one
scene under an appearance change score 0.17–0.76 there (posterised ones too, whose windows
correlate only moderately but sharply), the authors' example pairs 0.002–0.09: there,
luminance edges line up in ways that do not mean the same content, and moving to them made
faces worse.

Fields here are continuous: (N, H, W, 2) float32 absolute (x, y) coordinates in the
target image's pixels (pixel centres at integers), always inside the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._check import check_shape
from .image import luminance, pixel_grid, sample_bilinear
from .progress import InterruptFn, ProgressFn, ProgressTracker

Size = tuple[int, int]


@dataclass(frozen=True)
class _Accept:
    """When a pixel may move: its source window is textured (variance above ``min_texture``),
    the new match correlates (1 − r² at most ``max_cost``) and, for a move to another
    integer offset or a neighbour's displacement, beats the current match by ``margin``."""

    min_texture: float
    max_cost: float
    margin: float

_VAR_EPS = 1e-4
"""Added to both windows' luminance variances: a flat window correlates with nothing."""
_FAR = 1e6
"""Padding displacement (px) of ``smooth_field``: no neighbour outside the grid agrees."""
_CACHE_FLOATS = 1 << 18
"""Floats (1 MiB) that ``box_mean`` sums at a time, so that they stay in the CPU's cache
(3x faster than whole maps for 18 maps of 1024² px)."""

GATE_COST = 0.5
"""Largest 1 − r² (r ≥ 0.71) of a match the pair gate counts (``matched_fraction``)."""
GATE_DISTINCT = 0.15
"""How much better (in 1 − r²) a match the pair gate counts must correlate than every
offset ``GATE_RING`` px away: the window's pattern is found there and nowhere near."""
GATE_RING = 4
"""Distance (px, on the field's grid) of the pair gate's ring of rival offsets."""
GATE_CYCLE_TOL = 1.5
"""Farthest (px) the other direction's field may lead back from a match the gate counts."""
GATE_RADIUS = 1
"""Search radius (px) of the pair gate, on the field's own grid."""
MIN_MATCHED = 0.14
"""Least fraction of textured source pixels with a confirmed match (``matched_fraction``)
for a pair to be refined at all."""

REFINE_RADII: tuple[int, ...] = (2, 1)
"""Search radius (px) of each pass at the first (coarsest) level of ``refine_pyramid``."""
UPPER_RADII: tuple[int, ...] = (1, 1)
"""Search radius of each pass at the finer levels, which start from a sub-pixel field."""
COARSE_LEVELS = 2
"""Halvings of the field's grid at which ``refine_pyramid`` starts (on images resized to
match): windows see more context there, and a search of 2 px reaches errors of 8 px at
the network's size. No level is smaller than ``MIN_LEVEL_SIDE``."""
MIN_LEVEL_SIDE = 32
"""Least side (px) of a coarse level."""
PROPAGATION_STEPS: tuple[int, ...] = (8, 4, 2, 1)
"""Distances (px) from which a pixel may take over a neighbour's displacement before the
first level's local search (``refine_field``'s ``propagate``)."""
CONSENSUS_RADIUS = 12
"""Radius (px, at every level) of the neighbourhood whose agreed displacement a pixel may
take after each level's search (``refine_field``'s ``consensus_radius``)."""
CONSENSUS_TOL = 0.03
"""How much worse (in 1 − r²) than its own match the agreed displacement may correlate
and still be taken: ties along an edge or on a ramp go to the neighbourhood."""
CONSENSUS_VOTER_COST = 0.2
"""A neighbour's weight in the consensus falls linearly to 0 as its own 1 − r² rises to this."""
GRADIENT_STEPS = 1
"""Gauss-Newton steps of the sub-pixel shift at the last level (``refine_field``'s
``gradient_steps``)."""
GRADIENT_REGULARISER = 1e-5
"""Added to the gradient terms of the Gauss-Newton system (luminance² per px²): no step
along an axis without structure."""
WHOLE_PIXEL_TOL: float | None = 0.003
"""At the last level a pixel takes the whole-pixel position nearest its match where that
correlates no more than this worse (in 1 − r²) than the sub-pixel one and its
neighbourhood's displacement is itself whole (``WHOLE_PIXEL_REACH``): a whole-pixel match
is copied exactly, a sub-pixel one is sampled bilinearly, which blurs (``None``: never)."""
WHOLE_PIXEL_REACH = 0.1
"""Farthest (px, along either axis) the mean displacement around a pixel
(``WHOLE_PIXEL_WINDOW``) may lie from whole pixels for the pixel to be moved to them: a
translated region is, a smoothly warped one mostly is not, and rounding there would move
matches off their true sub-pixel positions."""
WHOLE_PIXEL_WINDOW = 3
"""Radius (px) of that neighbourhood."""
REGION_RADIUS = 12
"""Radius (px) of the neighbourhood in which ``_whole_pixel_regions`` counts the pixels
matched exactly at each whole-pixel displacement."""
REGION_SUPPORT = 0.15
"""Least share of that neighbourhood matched exactly at one whole-pixel displacement for a
pixel within ``REGION_REACH`` of it to take it."""
REGION_REACH = 1.5
"""Farthest (px, along either axis) a pixel's match may lie from its region's whole-pixel
displacement and still take it."""
DOMINANT_SHARE = 0.1
"""Least share of all source pixels matched exactly at one whole-pixel displacement for
that displacement to be offered to every pixel (``_whole_pixel_regions``)."""
DOMINANT_MODES = 3
"""Most such dominant displacements tried per pair."""
_REGION_CANDIDATES = 16
"""Whole-pixel displacements (the most frequent) whose local share is counted."""
EXCHANGE_ROUNDS = 2
"""Rounds in which each direction's exact matches correct the other's (``exchange_whole_pixels``)."""
REDRAW_RADIUS = 1
"""Radius (px) of the windows in which ``redraw_from_source`` fits the vote as an affine
colour transform of the source."""
REDRAW_EPS = 1e-5
"""Ridge on the source's window colour covariance (0..1 RGB squared): a flat window's fit
is its mean colour."""
REDRAW_RESIDUAL = 1e-3
"""Largest mean squared difference (per channel, over the window) between the vote and
the fit where the fit is taken (RMS 0.03)."""
REDRAW_EXPLAINED = 0.5
"""Least share of the vote's window variance the fit must explain where it is taken: a
look that adds its own edges (posterisation steps, brush strokes) keeps its vote."""
LOOK_BINS = 25
"""Most bins per RGB channel of the source colours in which ``redraw_global_look`` fits the
look (0.04 wide). On the quality bench 20–50 bins gave mean A' within 1 dB of each other;
25 puts no bin edge on the bench's posterisation steps (multiples of 1/4), as 20 or 40
would."""
LOOK_PIXELS_PER_BIN = 3
"""Smaller images get fewer bins, ⌊∛(H·W / 3)⌋ per channel, so that a bin holds as many
pixels at every size: 25 from 224×224 up, 16 at 128×96 (a video frame of the video bench,
where 25 bins made a map coarser than a good vote: frames lost up to 1.7 dB)."""
LOOK_MIN_BINS = 4
"""Fewest bins per channel, however small the image (unless ``bins`` asks for fewer)."""
LOOK_MIN_PIXELS = 16
"""Least reliable pixels in a colour bin for an affine fit there (a bin with fewer takes
their mean vote)."""
LOOK_COVERAGE = 0.5
"""Least share of the reliable pixels whose colour bin the held-out test also sees in the
other colour of tiles; with fewer, the map is not used."""
LOOK_TILE = 16
"""Side (px) of the checkerboard tiles of ``redraw_global_look``'s held-out test."""
LOOK_EPS = 1e-5
"""Ridge on a colour bin's colour covariance: a bin of one colour fits its mean."""
LOOK_EXPLAINED = 0.9
"""Least share of the vote's variance, on the pixels whose match leads back, that the look
fitted as one colour map of the source must explain, held out (each pixel predicted by the
mean vote of its colour bin's reliable pixels in the other colour of a checkerboard of
``LOOK_TILE``-px tiles): a look that depends on where a pixel lies (a painting's strokes,
a collage, one look here and another there) is not one colour map, and the vote stays."""
LOOK_TOLERANCE = 0.01
"""How far (per channel) the vote may lie outside the range of the fitted look over a
pixel's 3×3 neighbourhood where the fit is taken: the vote between pixels blurs the look's
edges (it lies between the values beside it), but it does not leave their range."""
_LOOK_CHUNK = 1 << 16
"""Pixels whose colour moments (and whose map value) are made at a time: bounded memory on
large images."""
LOOK_CYCLE_TOL = 1.0
"""px: the pixels the look is fitted on have matches that the other field leads back to
within this distance (a region of A that B' does not show has no such match)."""


def _window_sum(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Sum of the 2r+1 entries around each one along ``dim`` (zero beyond the ends).

    Sums of 1, 2, 4, … consecutive entries are built by doubling and each window is put
    together from those its length's binary digits name: about 2·log2(2r+1) additions
    per entry instead of 2r, and every sum adds the entries themselves (no running sum
    whose differences would cancel).
    """
    n, k = x.shape[dim], 2 * r + 1
    run = x.new_empty(*x.shape[:dim], n + 2 * r, *x.shape[dim:][1:])  # run[i]: the sum of `size` entries from i
    run.narrow(dim, 0, r).zero_()
    run.narrow(dim, n + r, r).zero_()
    run.narrow(dim, r, n).copy_(x)  # (F.pad took twice as long)
    size, start, parts = 1, 0, []
    while True:
        if k & size:
            parts.append(run.narrow(dim, start, n))
            start += size
        if 2 * size > k:
            out = parts[0].clone() if len(parts) == 1 else parts[0] + parts[1]
            for part in parts[2:]:
                out += part
            return out
        m = run.shape[dim] - size
        run = run.narrow(dim, 0, m) + run.narrow(dim, size, m)
        size *= 2


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1)² window around each pixel, windows clipped at the borders.

    Computed as sums of shifted copies (no running sum), so large images suffer no
    cancellation.

    Args:
        x: (N, C, H, W).
        radius: window radius r >= 0.

    Returns:
        (N, C, H, W).

    Example:
        >>> box_mean(torch.arange(3.0).view(1, 1, 1, 3), 1).flatten().tolist()
        [0.5, 1.0, 1.5]
    """
    check_shape(x, "N C H W", "x")
    if radius == 0:
        return x.clone()
    h, w = x.shape[-2:]

    def clipped(n: int) -> torch.Tensor:  # entries in each window along an axis of n
        i = torch.arange(n, device=x.device)
        return ((i + radius).clamp(max=n - 1) - (i - radius).clamp(min=0) + 1).to(x.dtype)

    count = clipped(h).view(h, 1) * clipped(w)
    # a few planes at a time (_CACHE_FLOATS)
    planes, out = x.reshape(-1, 1, h, w), torch.empty_like(x).view(-1, 1, h, w)
    step = max(1, _CACHE_FLOATS // (h * w))
    for i in range(0, len(planes), step):
        torch.div(_window_sum(_window_sum(planes[i : i + step], radius, -1), radius, -2), count, out=out[i : i + step])
    return out.view(x.shape)


def clamp_field(field: torch.Tensor, target_hw: Size) -> torch.Tensor:
    """Clamp continuous (x, y) coordinates into a target grid of size (H, W).

    Example:
        >>> clamp_field(torch.tensor([[[[-1.0, 5.0]]]]), (3, 4)).flatten().tolist()
        [0.0, 2.0]
    """
    out = field.clone()  # clamped in place: a stack of the two clamped coordinates is slower
    out[..., 0].clamp_(0, target_hw[1] - 1)
    out[..., 1].clamp_(0, target_hw[0] - 1)
    return out


def smooth_field(field: torch.Tensor, radius: int, tol: float) -> torch.Tensor:
    """Average each pixel's displacement with the neighbours that agree with it.

    Neighbours within ``radius`` whose displacement differs by at most ``tol`` px in both
    coordinates are averaged; others (another piece of a collage) are ignored, so edges
    between pieces stay sharp.

    Args:
        field: (N, H, W, 2) continuous absolute coordinates.
        radius: neighbourhood radius in px (0 returns ``field``).
        tol: agreement tolerance in px.

    Returns:
        (N, H, W, 2) smoothed coordinates (not clamped).

    Example:
        >>> f = pixel_grid(1, 3).unsqueeze(0) + torch.tensor([[0.0, 0.0], [1.0, 0.0], [9.0, 0.0]]).view(1, 1, 3, 2)
        >>> (smooth_field(f, 1, 1.5) - pixel_grid(1, 3)).flatten().tolist()
        [0.5, 0.0, 0.5, 0.0, 9.0, 0.0]
    """
    check_shape(field, "N H W 2", "field")
    if radius == 0:
        return field
    n, h, w, _ = field.shape
    r = radius
    base = pixel_grid(h, w, device=field.device, dtype=field.dtype)
    disp = field - base
    # planes (N, H + 2r, W + 2r) of the x and y displacements and a count of one; outside
    # the grid a displacement far beyond any tolerance, so it never agrees (separate
    # contiguous planes: a channel dimension broadcast against one agreement map is 3x slower)
    dx, dy = (F.pad(disp[..., i], (r, r, r, r), value=_FAR) for i in range(2))
    one = F.pad(torch.ones_like(disp[..., 0]), (r, r, r, r))
    planes = (dx, dy, one)

    def at(grid: torch.Tensor, y: int, x: int) -> torch.Tensor:
        return grid[:, y : y + h, x : x + w]

    totals = [at(p, r, r).clone() for p in planes]
    gap_x, gap_y = (torch.empty(n, h + r, w + 2 * r, dtype=disp.dtype, device=disp.device) for _ in range(2))
    # agreement is symmetric: one test of each pair of offsets o and −o serves both
    for oy in range(r + 1):
        for ox in range(-r, r + 1):
            if oy == 0 and ox <= 0:
                continue
            # positions q and q + o, over every q that is a pixel p or a pixel's p − o
            y0, x0, x1 = r - oy, r - max(ox, 0), r + w + max(-ox, 0)
            rows, cols = r + h - y0, x1 - x0
            ax, ay = (torch.sub(p[:, y0 + oy : r + h + oy, x0 + ox : x1 + ox], p[:, y0 : r + h, x0:x1],
                                out=buf[:, :rows, :cols]).abs_() for p, buf in ((dx, gap_x), (dy, gap_y)))
            agree = torch.maximum(ax, ay, out=ax).le_(tol)  # 1.0 where both coordinates agree
            for total, p in zip(totals, planes):
                total.addcmul_(at(p, r + oy, r + ox), at(agree, oy, r - x0))  # p's neighbour p + o, tested at q = p
                total.addcmul_(at(p, r - oy, r - ox), at(agree, 0, r - x0 - ox))  # and p − o, tested at q = p − o
    tx, ty, count = totals
    return base + torch.stack((tx / count, ty / count), dim=-1)


class _WindowStats(NamedTuple):
    """A source luminance map (N, 1, H, W) with its mean and variance over each window."""

    lum: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor


def _window_stats(lum: torch.Tensor, window: int) -> _WindowStats:
    mean = box_mean(lum, window)
    return _WindowStats(lum, mean, box_mean(lum * lum, window) - mean * mean)


def _ncc_cost(
    src: _WindowStats, tgt_lum: torch.Tensor, coords: torch.Tensor, window: int
) -> torch.Tensor:
    """1 − r² of the windowed luminance correlation along a field, (N, H, W).

    ``src`` is the source's luminance with its window mean and variance; the target's
    luminance is sampled at ``coords`` (clamped into the target).
    """
    src_lum, src_mean, src_var = src
    target_hw = (int(tgt_lum.shape[-2]), int(tgt_lum.shape[-1]))
    t = sample_bilinear(tgt_lum, clamp_field(coords, target_hw))
    t_mean, t_sq, cross = box_mean(torch.cat((t, t * t, src_lum * t), dim=1), window).unbind(1)
    t_var = torch.addcmul(t_sq, t_mean, t_mean, value=-1.0).add_(_VAR_EPS)
    cov = torch.addcmul(cross, src_mean[:, 0], t_mean, value=-1.0)
    return cov.square_().div_(t_var.mul_(src_var[:, 0] + _VAR_EPS)).neg_().add_(1.0)


def _square_offsets(radius: int) -> list[tuple[int, int]]:
    """Every integer (dx, dy) with |dx|, |dy| ≤ ``radius``, row by row."""
    return [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def _ncc_costs(
    src: _WindowStats,
    tgt_lum: torch.Tensor,
    field: torch.Tensor,
    offsets: Sequence[tuple[int, int]],
    window: int,
    check_interrupt: InterruptFn | None,
    advance: ProgressTracker,
) -> torch.Tensor:
    """1 − r² of the windowed luminance correlation at each (dx, dy) offset from the field, (K, N, H, W)."""
    costs = []
    for dx, dy in offsets:
        if check_interrupt is not None:
            check_interrupt()
        offset = torch.tensor((dx, dy), device=field.device, dtype=field.dtype)
        costs.append(_ncc_cost(src, tgt_lum, field + offset, window))
        advance.advance(1)
    return torch.stack(costs)


def _shifted_displacements(field: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Each pixel's position plus the displacement of its neighbour (dx, dy) away (edges repeat)."""
    n, h, w, _ = field.shape
    base = pixel_grid(h, w, device=field.device, dtype=field.dtype)
    disp = field - base
    ys = (torch.arange(h, device=field.device) + dy).clamp(0, h - 1)
    xs = (torch.arange(w, device=field.device) + dx).clamp(0, w - 1)
    return base + disp[:, ys][:, :, xs]


def _propagate(
    src: _WindowStats,
    tgt_lum: torch.Tensor,
    field: torch.Tensor,
    steps: Sequence[int],
    window: int,
    accept: _Accept,
    check_interrupt: InterruptFn | None,
    tracker: ProgressTracker,
) -> torch.Tensor:
    """Let pixels take over a neighbour's displacement where it correlates better.

    For every step s (largest first) and each of the four neighbours s px away, a
    textured pixel takes that neighbour's displacement when it lowers 1 − r² by
    ``margin`` to at most ``max_cost``. Good matches spread over the gaps of a local
    search, so pixels whose deep match is several pixels off (beyond the search radius)
    recover from a well-matched neighbourhood, as in PatchMatch's propagation.
    """
    if not steps:
        return field
    if check_interrupt is not None:
        check_interrupt()
    cost = _ncc_cost(src, tgt_lum, field, window)
    tracker.advance(1)
    textured = src.var[:, 0] > accept.min_texture
    for step in steps:
        for dx, dy in ((step, 0), (-step, 0), (0, step), (0, -step)):
            if check_interrupt is not None:
                check_interrupt()
            candidate = _shifted_displacements(field, dx, dy)
            c = _ncc_cost(src, tgt_lum, candidate, window)
            better = textured & (c <= accept.max_cost) & (c < cost - accept.margin)
            field = torch.where(better.unsqueeze(-1), candidate, field)
            cost = torch.where(better, c, cost)
            tracker.advance(1)
    target_hw = (int(tgt_lum.shape[-2]), int(tgt_lum.shape[-1]))
    return clamp_field(field, target_hw)


def _with_gradients(lum: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W): luminance and its x and y derivatives (central differences, one-sided at the edges)."""
    gx = torch.zeros_like(lum)
    gy = torch.zeros_like(lum)
    if lum.shape[-1] > 1:
        gx[..., 1:-1] = 0.5 * (lum[..., 2:] - lum[..., :-2])
        gx[..., 0], gx[..., -1] = lum[..., 1] - lum[..., 0], lum[..., -1] - lum[..., -2]
    if lum.shape[-2] > 1:
        gy[..., 1:-1, :] = 0.5 * (lum[..., 2:, :] - lum[..., :-2, :])
        gy[..., 0, :], gy[..., -1, :] = lum[..., 1, :] - lum[..., 0, :], lum[..., -1, :] - lum[..., -2, :]
    return torch.cat((lum, gx, gy), dim=1)


def _solve_symmetric3(
    upper: Sequence[torch.Tensor], rhs: Sequence[torch.Tensor], *, first_only: bool = False
) -> list[torch.Tensor]:
    """Solve a map of symmetric 3×3 systems ``A · x = b`` at once, by the adjugate.

    Elementwise arithmetic on whole maps, in float64 (the cofactors of float32 entries
    are then nearly exact), returned in the inputs' dtype. The callers add a ridge, so A
    is never singular. Unlike ``torch.linalg.solve`` it needs no stacked (..., 3, 3)
    matrix, and it can stop at the first unknown: in the pixel refinement at 448×448 px
    on one CPU thread, the consensus's affine fits (``_agreed_displacements``) take two
    thirds of the time they took with ``torch.linalg.solve``, the Gauss-Newton steps 85 %.

    Args:
        upper: A's upper triangle, (a00, a01, a02, a11, a12, a22), maps of one shape.
        rhs: (b0, b1, b2), maps that broadcast with A's entries (e.g. a trailing
            dimension of several right-hand sides).
        first_only: return x0 alone.

    Returns:
        ``[x0, x1, x2]`` (``[x0]`` with ``first_only``).

    Example:
        >>> m = torch.tensor([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
        >>> b = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
        >>> x = _solve_symmetric3([m[i, j] for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))], list(b))
        >>> torch.allclose(torch.stack(x), torch.linalg.solve(m, b))
        True
    """
    a00, a01, a02, a11, a12, a22 = (a.double() for a in upper)
    b0, b1, b2 = (b.double() for b in rhs)
    dtype = torch.promote_types(upper[0].dtype, rhs[0].dtype)
    # the cofactors (the adjugate of a symmetric matrix is symmetric)
    c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
    inv_det = (a00 * c00).addcmul_(a01, c01).addcmul_(a02, c02).reciprocal_()
    rows = [(c00, c01, c02)]
    if not first_only:
        c11, c12, c22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
        rows += [(c01, c11, c12), (c02, c12, c22)]
    return [(ci0 * b0).addcmul_(ci1, b1).addcmul_(ci2, b2).mul_(inv_det).to(dtype) for ci0, ci1, ci2 in rows]


def _gradient_step(
    src: _WindowStats,
    tgt: torch.Tensor,
    field: torch.Tensor,
    window: int,
    *,
    min_texture: float,
    regulariser: float,
) -> torch.Tensor:
    """One Gauss-Newton step of each window's sub-pixel shift, under a local gain and bias.

    Over the window around p the source is fitted as ``S ≈ g·T(φ + δ) + b`` with
    ``T(φ + δ) ≈ T + δ·∇T`` sampled along the field, which is linear in (g, g·δx, g·δy, b):
    a 3×3 system of windowed covariances per pixel (the bias drops out by centring). The
    ``regulariser`` on the gradient terms keeps δ near 0 where the window has no
    structure along an axis (an edge, the aperture problem).

    Args:
        src: the source's luminance with its window mean and variance.
        tgt: (N, 3, Ht, Wt) target luminance and gradients (``_with_gradients``).
        field: (N, H, W, 2) continuous coordinates into the target.

    Returns:
        (N, H, W, 2) the moved field, clamped into the target; untextured pixels and
        steps longer than half a pixel are left where they were.
    """
    src_lum, src_mean, src_var = src
    sampled = sample_bilinear(tgt, field)  # T, Tx, Ty along the field
    t, tx, ty = sampled[:, 0:1], sampled[:, 1:2], sampled[:, 2:3]
    stats = box_mean(torch.cat((sampled, t * t, t * tx, t * ty, tx * tx, tx * ty, ty * ty,
                                src_lum * t, src_lum * tx, src_lum * ty), dim=1), window)
    mean = stats[:, 0:3]
    m = [mean[:, i] for i in range(3)]
    second = stats[:, 3:9]
    cross = stats[:, 9:12]
    # centred covariances: [T, Tx, Ty] × [T, Tx, Ty] (upper triangle) and with S
    ridge = {(0, 0): _VAR_EPS, (1, 1): regulariser, (2, 2): regulariser}
    upper = [second[:, k] - m[i] * m[j] + ridge.get((i, j), 0.0)
             for k, (i, j) in enumerate(((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)))]
    gain, *shift = _solve_symmetric3(upper, [cross[:, i] - src_mean[:, 0] * m[i] for i in range(3)])
    ok = (src_var[:, 0] > min_texture) & (gain.abs() > 1e-3)
    delta = torch.stack(shift, dim=-1) / torch.where(ok, gain, torch.ones_like(gain)).unsqueeze(-1)
    ok = ok & (delta.abs().amax(dim=-1) <= 0.5)
    moved = torch.where(ok.unsqueeze(-1), field + delta, field)
    target_hw = (int(tgt.shape[-2]), int(tgt.shape[-1]))
    return clamp_field(moved, target_hw)


def _consensus(
    src: _WindowStats,
    tgt_lum: torch.Tensor,
    field: torch.Tensor,
    window: int,
    radius: int,
    tol: float,
    accept: _Accept,
) -> torch.Tensor:
    """Move each pixel to the displacement its distinctive neighbours agree on, where that costs nothing.

    Along an edge or on a smooth ramp a window's correlation cannot tell where it lies
    along the edge (the aperture problem), so its own best match may be off by a pixel or
    more. Each pixel has two candidates from the neighbourhood within ``radius``, with
    every neighbour weighted by how distinctive its window is (the smaller eigenvalue of
    its structure tensor): the weighted mean displacement, and the value at the pixel of
    a weighted least-squares affine fit of the displacement (for scaled, rotated or
    bent views). The better-correlating one is taken by a textured pixel where its 1 − r²
    is at most ``tol`` above the current match's (and at most ``accept.max_cost``); a
    distinctive window keeps its own match, and only neighbours whose own match
    correlates (``CONSENSUS_VOTER_COST``) have a say.
    """
    src_lum = src.lum
    g = _with_gradients(src_lum)
    gx, gy = g[:, 1:2], g[:, 2:3]
    st = box_mean(torch.cat((gx * gx, gy * gy, gx * gy), dim=1), window)
    half_trace = 0.5 * (st[:, 0:1] + st[:, 1:2])
    weight = (half_trace - ((0.5 * (st[:, 0:1] - st[:, 1:2])) ** 2 + st[:, 2:3] ** 2).sqrt()).clamp_min(0)
    n, h, w, _ = field.shape
    base = pixel_grid(h, w, device=field.device, dtype=field.dtype)
    disp = (field - base).permute(0, 3, 1, 2)
    now = _ncc_cost(src, tgt_lum, field, window)
    # only a neighbour whose own match correlates has a say (not one whose match lies outside the other image)
    weight = weight * (1.0 - now / CONSENSUS_VOTER_COST).clamp_min(0).unsqueeze(1)
    best, best_cost = field, now + tol
    textured = src.var[:, 0] > accept.min_texture
    for agreed, support in _agreed_displacements(disp, weight, radius):
        candidate = clamp_field(base + agreed.permute(0, 2, 3, 1), (int(tgt_lum.shape[-2]), int(tgt_lum.shape[-1])))
        cost = _ncc_cost(src, tgt_lum, candidate, window)
        take = (cost < best_cost) & (cost <= accept.max_cost) & textured & (support > 1e-12)  # on a tie the mean stays
        best = torch.where(take.unsqueeze(-1), candidate, best)
        best_cost = torch.where(take, cost, best_cost)
    return best


def _agreed_displacements(disp: torch.Tensor, weight: torch.Tensor, radius: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The weighted mean and the weighted affine fit of ``disp`` (N, 2, H, W) around each pixel.

    Returns:
        ``[(mean, support), (affine, support)]``: (N, 2, H, W) displacements and the
        (N, H, W) mean weight they rest on.
    """
    n, _, h, w = disp.shape
    # moments of the weights and the weighted displacements in coordinates scaled by the
    # radius, then centred on each pixel p (u = x − x_p): disp ≈ d0 + J·u, d0 is the fit at p
    scale = float(max(radius, 1))
    ys = (torch.arange(h, device=disp.device, dtype=disp.dtype) / scale).view(1, 1, h, 1).expand(n, 1, h, w)
    xs = (torch.arange(w, device=disp.device, dtype=disp.dtype) / scale).view(1, 1, 1, w).expand(n, 1, h, w)
    mom = box_mean(torch.cat((weight, weight * xs, weight * ys, weight * xs * xs, weight * xs * ys, weight * ys * ys,
                              disp * weight, disp * weight * xs, disp * weight * ys), dim=1), radius)
    s0, sx, sy, sxx, sxy, syy = (mom[:, i] for i in range(6))
    mean = mom[:, 6:8] / mom[:, 0:1].clamp_min(1e-12)
    x0, y0 = xs[:, 0], ys[:, 0]
    su, sv = sx - s0 * x0, sy - s0 * y0
    suu = sxx - 2 * x0 * sx + x0 * x0 * s0
    svv = syy - 2 * y0 * sy + y0 * y0 * s0
    suv = sxy - x0 * sy - y0 * sx + x0 * y0 * s0
    reg = 1e-3 * s0.clamp_min(1e-12)  # a ridge on J: a window with support on a line only stays near its mean
    upper = [x.unsqueeze(1) for x in (s0 + 1e-12, su, sv, suu + reg, suv, svv + reg)]  # (N, 1, H, W) each
    # the two displacement components as a channel dimension of the right-hand sides
    rhs = [mom[:, 6:8], mom[:, 8:10] - x0.unsqueeze(1) * mom[:, 6:8], mom[:, 10:12] - y0.unsqueeze(1) * mom[:, 6:8]]
    [affine] = _solve_symmetric3(upper, rhs, first_only=True)
    return [(mean, s0), (affine, s0)]


def _refine_pass(
    src: _WindowStats,
    tgt_lum: torch.Tensor,
    field: torch.Tensor,
    radius: int,
    window: int,
    accept: _Accept,
    check_interrupt: InterruptFn | None,
    tracker: ProgressTracker,
) -> tuple[torch.Tensor, torch.Tensor]:
    costs = _ncc_costs(src, tgt_lum, field, _square_offsets(radius), window, check_interrupt, tracker)
    k = 2 * radius + 1
    best, idx = costs.min(dim=0)
    iy, ix = idx // k, idx % k
    step = torch.stack((ix - radius, iy - radius), dim=-1).to(field.dtype)

    def cost_at(oy: int, ox: int) -> torch.Tensor:
        j = (iy + oy).clamp(0, k - 1) * k + (ix + ox).clamp(0, k - 1)
        return costs.gather(0, j.unsqueeze(0))[0]

    # sub-pixel: the vertex of a parabola through the best cost and its two neighbours, per axis
    for axis, pos, lo, hi in ((0, ix, cost_at(0, -1), cost_at(0, 1)), (1, iy, cost_at(-1, 0), cost_at(1, 0))):
        curvature = lo - 2.0 * best + hi
        inner = (pos > 0) & (pos < k - 1) & (curvature > 1e-9)
        shift = torch.where(inner, 0.5 * (lo - hi) / curvature.clamp_min(1e-9), torch.zeros_like(best))
        step[..., axis] += shift.clamp(-0.5, 0.5)
    centre = (k * k) // 2
    # a move to another integer offset must beat the current match by `margin`; the
    # sub-pixel correction around the current match needs none
    ok = (src.var[:, 0] > accept.min_texture) & (best <= accept.max_cost)
    ok = ok & ((idx == centre) | (best < costs[centre] - accept.margin))
    moved = torch.where(ok.unsqueeze(-1), field + step, field)
    target_hw = (int(tgt_lum.shape[-2]), int(tgt_lum.shape[-1]))
    return clamp_field(moved, target_hw), ok


def _ring_offsets(distance: int) -> list[tuple[int, int]]:
    """The gate's rival offsets: ``distance`` px along each axis, and along both axes on the diagonals."""
    d = max(1, round(distance / math.sqrt(2)))
    return [(distance, 0), (-distance, 0), (0, distance), (0, -distance), (d, d), (d, -d), (-d, d), (-d, -d)]


def gate_work() -> int:
    """Scored offsets of one ``matched_fraction`` call (its progress and interrupt units).

    Example:
        >>> gate_work()
        17
    """
    return len(_square_offsets(GATE_RADIUS)) + len(_ring_offsets(GATE_RING))


def _at_nearest(values: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """``values`` (N, Ht, Wt, C), a map on the target's grid, read at each match's nearest pixel: (N, H, W, C)."""
    n, h, w, _ = field.shape
    ht, wt, c = int(values.shape[1]), int(values.shape[2]), int(values.shape[3])
    x = field[..., 0].round().long().clamp_(0, wt - 1)
    y = field[..., 1].round().long().clamp_(0, ht - 1)
    index = (y * wt + x).reshape(n, h * w, 1).expand(-1, -1, c)
    return values.reshape(n, ht * wt, c).gather(1, index).view(n, h, w, c)


def _leads_back(field: torch.Tensor, inverse: torch.Tensor, tol: float) -> torch.Tensor:
    """(N, H, W) bool: the inverse field, read at each match's nearest pixel, returns within ``tol`` px."""
    n, h, w, _ = field.shape
    distance = (_at_nearest(inverse, field) - pixel_grid(h, w, device=field.device, dtype=field.dtype)).norm(dim=-1)
    return torch.le(distance, tol)


def matched_fraction(
    source: torch.Tensor,
    target: torch.Tensor,
    field: torch.Tensor,
    inverse: torch.Tensor,
    *,
    window: int = 5,
    min_texture: float = 1e-4,
    check_interrupt: InterruptFn | None = None,
) -> torch.Tensor:
    """How much of the source has a match that both images confirm: the pair gate of ``refine_pixels``.

    On copies of the images resized to the fields' grids, the fraction of textured source
    pixels (windowed luminance variance above ``min_texture``) whose match
    - leads back: ``inverse`` read at the match's nearest pixel returns within
      ``GATE_CYCLE_TOL`` px of the pixel (the two directions of the deep search agree);
    - correlates: the best 1 − r² within ``GATE_RADIUS`` px of the field is at most ``GATE_COST``;
    - distinctly: every offset on a ring ``GATE_RING`` px from the field correlates worse by
      at least ``GATE_DISTINCT``.
    Two views of one scene confirm most matches, however their colours differ (a posterised
    view correlates only moderately, but sharply); a photo and a painting confirm few,
    since their luminance patterns agree only here and there, and no better than nearby.

    Args:
        source: (N, 3, H, W) RGB 0..1 (any size; resized to ``field``'s grid).
        target: (N, 3, Ht, Wt) RGB 0..1 (resized to ``inverse``'s grid).
        field: (N, h, w, 2) continuous coordinates into ``inverse``'s grid.
        inverse: (N, ht, wt, 2) continuous coordinates into ``field``'s grid: the other
            direction's field.
        window, min_texture: as in ``refine_field``.
        check_interrupt: called before every scored offset (``gate_work()`` of them).

    Returns:
        (N,) float fractions in 0..1 (0 for an item without texture).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> img = F.interpolate(torch.rand(1, 3, 12, 12, generator=g), size=(48, 48), mode="bicubic").clamp(0, 1)
        >>> ident = pixel_grid(48, 48).unsqueeze(0)
        >>> float(matched_fraction(img, 1 - img, ident, ident)) > 0.9  # the same picture, inverted
        True
        >>> float(matched_fraction(img, img.flip(-1), ident, ident)) < MIN_MATCHED  # another picture
        True
    """
    check_shape(field, "N H W 2", "field")
    check_shape(inverse, "N H W 2", "inverse")
    size = (int(field.shape[1]), int(field.shape[2]))
    target_hw = (int(inverse.shape[1]), int(inverse.shape[2]))
    src = _window_stats(luminance(_resized(source.float(), size)), window)
    tgt_lum = luminance(_resized(target.float(), target_hw))
    field = clamp_field(field.to(device=source.device, dtype=torch.float32), target_hw)
    scored = ProgressTracker(None, gate_work())  # no progress reports: only the checks count
    near = _ncc_costs(src, tgt_lum, field, _square_offsets(GATE_RADIUS), window, check_interrupt, scored)
    rival = _ncc_costs(src, tgt_lum, field, _ring_offsets(GATE_RING), window, check_interrupt, scored)
    near, rival = near.min(dim=0).values, rival.min(dim=0).values
    textured = src.var[:, 0] > min_texture
    back = _leads_back(field, inverse.to(device=field.device, dtype=torch.float32), GATE_CYCLE_TOL)
    matched = textured & back & (near <= GATE_COST) & (rival - near >= GATE_DISTINCT)
    return matched.sum(dim=(1, 2)).float() / textured.sum(dim=(1, 2)).clamp_min(1).float()


def refine_work(
    radii: Sequence[int] = REFINE_RADII,
    propagate: Sequence[int] = (),
    consensus: bool = False,
    gradient_steps: int = 0,
    whole_pixel: bool = False,
) -> int:
    """Progress units of one ``refine_field`` call: one per scored offset, candidate or step.

    Example:
        >>> refine_work((2, 1)), refine_work((2, 1), (8, 4, 2, 1), True, 2), refine_work((1,), whole_pixel=True)
        (34, 58, 15)
    """
    units = sum((2 * r + 1) ** 2 for r in radii)
    units += (1 + 4 * len(propagate)) if propagate else 0
    units += (3 if consensus else 0) + ((gradient_steps + 2) if gradient_steps else 0)
    return units + ((2 + _region_work()) if whole_pixel else 0)


def _region_work() -> int:
    """Scored candidates of one ``_whole_pixel_regions`` call: the current matches and each dominant displacement."""
    return 1 + DOMINANT_MODES


def refine_field(
    source: torch.Tensor,
    target: torch.Tensor,
    field: torch.Tensor,
    *,
    radii: Sequence[int] = REFINE_RADII,
    propagate: Sequence[int] = (),
    consensus_radius: int = 0,
    consensus_tol: float = CONSENSUS_TOL,
    gradient_steps: int = 0,
    whole_pixel_tol: float | None = None,
    window: int = 5,
    smooth_radius: int = 5,
    smooth_tol: float = 1.5,
    min_texture: float = 1e-4,
    max_cost: float = 0.5,
    margin: float = 0.01,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine a field to sub-pixel precision on the images themselves.

    Each pass smooths the field among agreeing neighbours, scores every integer offset
    within its radius by windowed luminance correlation, and moves accepted pixels to
    the best offset plus a parabolic sub-pixel correction.

    Args:
        source: (N, 3, H, W) RGB 0..1 image whose pixels are matched (A for φ_a→b).
        target: (N, 3, Ht, Wt) RGB 0..1 image they are matched into (B').
        field: (N, H, W, 2) continuous (x, y) coordinates into ``target``.
        radii: search radius in px of each pass (one pass per entry).
        propagate: before the passes, pixels may take over the displacement of a
            neighbour this many px away (each entry, largest first; ``()``: none).
        consensus_radius: after the passes, pixels may take the displacement their
            distinctive neighbours within this radius agree on (0: none).
        consensus_tol: how much worse (1 − r²) that displacement may correlate.
        gradient_steps: Gauss-Newton steps of the sub-pixel shift under a local gain
            and bias, at the end; kept where they improve the correlation (0: none).
        whole_pixel_tol: at the very end, each pixel takes the nearest whole-pixel
            position where its 1 − r² is at most this much above the match's and the
            mean displacement around it lies within ``WHOLE_PIXEL_REACH`` of whole
            pixels (``None``: never): sampled there, the target is copied instead of
            interpolated.
        window: radius of the correlation window in px.
        smooth_radius: radius of the neighbour smoothing before each pass (0: none).
        smooth_tol: neighbours whose displacement differs by more than this (px) are not
            averaged.
        min_texture: least variance of the source luminance in the window for a pixel to
            move (flat windows carry no position).
        max_cost: largest 1 − r² accepted (0.5: the source window explains at least half
            of the target window's variance).
        margin: least improvement of 1 − r² for a move to another integer offset.
        check_interrupt: called before every scored offset; raise from it to stop.
        progress: ``progress(done, total, stage)``, one unit per scored offset
            (``refine_work(radii)`` in all), stage ``"pixel refinement"``.

    Returns:
        ``(field, moved)``: (N, H, W, 2) float32 coordinates inside ``target``, and
        (N, H, W) bool, where the last search pass moved or adjusted the match (the
        consensus, the Gauss-Newton steps and the whole-pixel step after it are not
        counted).

    Raises:
        ValueError: shapes disagree, or a radius or window is negative.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> img = F.interpolate(torch.rand(1, 3, 12, 12, generator=g), size=(48, 48), mode="bicubic").clamp(0, 1)
        >>> ident = pixel_grid(48, 48).unsqueeze(0)
        >>> out, _ = refine_field(img, img, ident + 1.4)  # start 1.4 px off in x and y
        >>> bool((out - ident)[0, 8:-8, 8:-8].abs().median() < 0.1)
        True
    """
    check_shape(source, "N 3 H W", "source")
    check_shape(target, "N 3 H W", "target")
    check_shape(field, f"{source.shape[0]} {source.shape[2]} {source.shape[3]} 2", "field")
    if target.shape[0] != source.shape[0]:
        raise ValueError(f"source has batch {source.shape[0]} but target has batch {target.shape[0]}")
    if window < 0 or smooth_radius < 0 or any(r < 0 for r in radii):
        raise ValueError(f"radii, window and smooth_radius must be >= 0, got {tuple(radii)}, {window}, {smooth_radius}")
    tracker = ProgressTracker(progress, refine_work(radii, propagate, consensus_radius > 0, gradient_steps,
                                                    whole_pixel_tol is not None),
                              "pixel refinement")
    target_hw = (int(target.shape[-2]), int(target.shape[-1]))
    field = clamp_field(field.to(device=source.device, dtype=torch.float32), target_hw)
    src, tgt_lum = _window_stats(luminance(source.float()), window), luminance(target.float())
    moved = torch.zeros(field.shape[:-1], dtype=torch.bool, device=field.device)
    accept = _Accept(min_texture, max_cost, margin)
    field = _propagate(src, tgt_lum, field, propagate, window, accept, check_interrupt, tracker)
    for radius in radii:
        field = clamp_field(smooth_field(field, smooth_radius, smooth_tol), target_hw)
        field, moved = _refine_pass(src, tgt_lum, field, radius, window, accept, check_interrupt, tracker)
    if consensus_radius:
        if check_interrupt is not None:
            check_interrupt()
        field = _consensus(src, tgt_lum, field, window, consensus_radius, consensus_tol, accept)
        tracker.advance(3)
    if gradient_steps:
        tgt = _with_gradients(tgt_lum)
        before = _ncc_cost(src, tgt_lum, field, window)
        stepped = field
        for _ in range(gradient_steps):
            if check_interrupt is not None:
                check_interrupt()
            stepped = _gradient_step(src, tgt, stepped, window, min_texture=min_texture, regulariser=GRADIENT_REGULARISER)
            tracker.advance(1)
        after = _ncc_cost(src, tgt_lum, stepped, window)
        tracker.advance(2)
        better = (after <= before).unsqueeze(-1)
        field = torch.where(better, stepped, field)
    if whole_pixel_tol is not None:
        if check_interrupt is not None:
            check_interrupt()
        whole = clamp_field(torch.round(field), target_hw)
        disp = (field - pixel_grid(*field.shape[1:3], device=field.device)).permute(0, 3, 1, 2)
        local = box_mean(disp, WHOLE_PIXEL_WINDOW)
        near = (local - local.round()).abs().amax(dim=1) <= WHOLE_PIXEL_REACH
        keep = near & (_ncc_cost(src, tgt_lum, whole, window) <= _ncc_cost(src, tgt_lum, field, window) + whole_pixel_tol)
        field = torch.where(keep.unsqueeze(-1), whole, field)
        tracker.advance(2)
        field = _whole_pixel_regions(src, tgt_lum, field, window, accept, check_interrupt, tracker)
    tracker.finish()
    return field, moved


def redraw_from_source(
    source: torch.Tensor,
    voted: torch.Tensor,
    field: torch.Tensor,
    *,
    radius: int = REDRAW_RADIUS,
    eps: float = REDRAW_EPS,
    max_residual: float = REDRAW_RESIDUAL,
    min_explained: float = REDRAW_EXPLAINED,
) -> torch.Tensor:
    """The vote redrawn from the source's own pixels where it was sampled between pixels.

    A bilinear sample between pixels blurs, and so does a vote of overlapping patches
    whose matches differ by fractions of a pixel. Where a source window's colours explain the
    vote there as an affine colour transform (a guided filter with the source as the
    guide: per window ``voted ≈ M·source + b``, the coefficients averaged over the
    windows that hold a pixel), that transform of the source replaces the vote: the
    source's own sharp structure in the vote's colours. Pixels whose match lies on a whole
    pixel (within 0.01 px, a copy, which is sharp) and windows the fit does not explain
    (over ``max_residual``, or under ``min_explained`` of the vote's variance) keep the
    vote. A field of whole pixels (a pair the refinement left alone) returns ``voted``.

    Used for A' (source A, voted from B'), not for B: B' may carry its look's own edges,
    which B must not take.

    Args:
        source: (N, 3, H, W) RGB 0..1 (A).
        voted: (N, 3, H, W) the vote (A').
        field: (N, H, W, 2) the field it was voted through.
        radius, eps, max_residual, min_explained: ``REDRAW_RADIUS``, ``REDRAW_EPS``,
            ``REDRAW_RESIDUAL``, ``REDRAW_EXPLAINED``.

    Returns:
        (N, 3, H, W) in 0..1.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a = F.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=(32, 32), mode="bicubic").clamp(0, 1)
        >>> ident = pixel_grid(32, 32).unsqueeze(0)
        >>> torch.equal(redraw_from_source(a, 1 - a, ident), 1 - a)  # whole pixels: the vote stays
        True
        >>> out = redraw_from_source(a, 1 - a, ident + 0.5)  # between pixels: an affine look of A is redrawn
        >>> bool((out - (1 - a)).abs().max() < 2e-3)
        True
    """
    check_shape(source, "N 3 H W", "source")
    check_shape(voted, f"{source.shape[0]} 3 {source.shape[2]} {source.shape[3]}", "voted")
    check_shape(field, f"{source.shape[0]} {source.shape[2]} {source.shape[3]} 2", "field")
    between = ~_exact_whole(field)[1].unsqueeze(1)
    if not bool(between.any()):
        return voted
    n, _, h, w = voted.shape
    guide = source.to(voted.dtype)

    def outer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (N, 9, H, W): x_i·y_j
        return (x.unsqueeze(2) * y.unsqueeze(1)).flatten(1, 2)

    stats = box_mean(torch.cat((guide, voted, outer(guide, guide), outer(guide, voted)), dim=1), radius)
    mean_v = stats[:, 3:6]
    gain, bias = _affine_colour_fit(stats.permute(0, 2, 3, 1), eps)  # (N, H, W, 3 source, 3 vote), (N, H, W, 3)
    coef = box_mean(torch.cat((gain.flatten(-2), bias), dim=-1).permute(0, 3, 1, 2), radius)
    gain, bias = coef[:, :9].reshape(n, 3, 3, h, w), coef[:, 9:]
    fitted = (torch.einsum("nijhw,nihw->njhw", gain, guide) + bias).clamp(0, 1)
    # per window: the vote's squared difference from the fit, and its variance
    spread = box_mean(torch.cat((((voted - fitted) ** 2).mean(dim=1, keepdim=True),
                                 (voted * voted).mean(dim=1, keepdim=True)), dim=1), radius)
    residual, variance = spread[:, 0:1], spread[:, 1:2] - (mean_v * mean_v).mean(dim=1, keepdim=True)
    # (a flat window, variance 0, takes its fit: the mean colour, within 1e-6)
    take = between & (residual < max_residual) & (residual <= (1 - min_explained) * variance + 1e-6)
    return torch.where(take, fitted, voted)


def _affine_colour_fit(stats: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares affine colour map ``vote ≈ source · gain + bias`` from moments.

    Args:
        stats: (..., 24) means over each sample set: source (3), vote (3), source_i ·
            source_j (9, row-major), source_i · vote_j (9).
        eps: ridge on the source's colour covariance (a set of one colour fits its mean).

    Returns:
        ``(gain, bias)``: (..., 3 source, 3 vote) and (..., 3).
    """
    mean_s, mean_v = stats[..., 0:3], stats[..., 3:6]
    shape = (*stats.shape[:-1], 3, 3)
    cov = stats[..., 6:15].reshape(shape) - mean_s.unsqueeze(-1) * mean_s.unsqueeze(-2)
    cross = stats[..., 15:24].reshape(shape) - mean_s.unsqueeze(-1) * mean_v.unsqueeze(-2)
    upper = [cov[..., i, j, None] + (eps if i == j else 0.0) for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))]
    gain = torch.stack(_solve_symmetric3(upper, [cross[..., i, :] for i in range(3)]), dim=-2)
    bias = mean_v - (mean_s.unsqueeze(-2) @ gain)[..., 0, :]
    return gain, bias


def redraw_global_look(
    source: torch.Tensor,
    voted: torch.Tensor,
    field: torch.Tensor,
    inverse: torch.Tensor,
    *,
    bins: int = LOOK_BINS,
    eps: float = LOOK_EPS,
    min_explained: float = LOOK_EXPLAINED,
    tolerance: float = LOOK_TOLERANCE,
) -> torch.Tensor:
    """The vote redrawn as one colour map of the source, where the look is one.

    A look that is a function of colour alone (a grade, a colour mix and gamma, a hue
    turn, a posterisation) is learnt from the correspondence and applied to the source
    itself, sharp, as HaCohen et al. fit a global colour model to dense correspondences
    ("Non-rigid dense correspondence", SIGGRAPH 2011). The source's colours are binned
    (up to ``bins`` per channel) and, in each bin, the vote is fitted as an affine colour
    transform of the source over the pixels whose match the other field leads back to
    (within ``LOOK_CYCLE_TOL`` px): a piecewise affine colour map, which follows a smooth
    curve closely and a step to within one bin. The map is used only when it explains
    ``min_explained`` of the vote's variance on those pixels, each predicted by the mean
    vote of its bin in the other colour of a checkerboard of ``LOOK_TILE``-px tiles (a
    held-out test: a bin's own fit would explain any vote, and a colour seen in one place
    only proves nothing). Then the map replaces the vote where the match lies between
    pixels (a whole-pixel match is a copy, sharp already) and the vote lies within the
    map's range over the pixel's 3×3 neighbourhood (``tolerance`` per channel): a blurred
    edge of the look lies between the values beside it; what the map does not explain
    (grain, strokes) keeps its vote. Where the match does not lead back (a part of A that
    B' does not show, a match the other field contradicts) nothing vouches for the vote,
    and the map replaces it, copy or not. A field of whole pixels everywhere (a pair the
    refinement left alone) returns ``voted``.

    Used for A' (source A, voted from B'), after ``redraw_from_source``. Not for B: a look
    that is one colour map of A need not have one back (a posterisation has none).

    Args:
        source: (N, 3, H, W) RGB 0..1 (A).
        voted: (N, 3, H, W) the vote (A').
        field: (N, H, W, 2) the field it was voted through (A → B').
        inverse: (N, H', W', 2) the other direction's field (B' → A).
        bins, eps, min_explained, tolerance: ``LOOK_BINS`` (the most; fewer on images
            under 224×224 px, ``LOOK_PIXELS_PER_BIN``), ``LOOK_EPS``, ``LOOK_EXPLAINED``,
            ``LOOK_TOLERANCE``.

    Returns:
        (N, 3, H, W) in 0..1.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a, noise = torch.rand(2, 1, 3, 32, 32, generator=g)
        >>> ident = pixel_grid(32, 32).unsqueeze(0)
        >>> torch.equal(redraw_global_look(a, noise, ident + 0.5, ident), noise)  # no colour map of A: the vote stays
        True
        >>> torch.equal(redraw_global_look(a, 1 - a, ident, ident), 1 - a)  # whole pixels, copies: the vote stays
        True
    """
    check_shape(source, "N 3 H W", "source")
    n, _, h, w = source.shape
    check_shape(voted, f"{n} 3 {h} {w}", "voted")
    check_shape(field, f"{n} {h} {w} 2", "field")
    check_shape(inverse, f"{n} H' W' 2", "inverse")
    if bins < 1 or eps <= 0 or not 0.0 <= min_explained <= 1.0 or tolerance < 0:
        raise ValueError(f"need bins >= 1, eps > 0, min_explained in [0, 1], tolerance >= 0; got {bins}, {eps}, "
                         f"{min_explained}, {tolerance}")
    between = ~_exact_whole(field)[1]
    if not bool(between.any()):
        return voted
    reliable = _leads_back(field, inverse, LOOK_CYCLE_TOL)
    cells = min(bins, max(LOOK_MIN_BINS, _cube_root_floor(h * w // LOOK_PIXELS_PER_BIN)))
    out = voted.clone()
    for i in range(n):
        fitted = _colour_map(source[i].to(voted.dtype), voted[i], reliable[i], cells, eps, min_explained)
        if fitted is None:
            continue
        lo, hi = _range_3x3(fitted)
        inside = ((voted[i] >= lo - tolerance) & (voted[i] <= hi + tolerance)).all(dim=0)
        take = (between[i] & inside) | ~reliable[i]
        out[i] = torch.where(take & ~fitted.isnan().any(dim=0), fitted, voted[i])
    return out


def _cube_root_floor(n: int) -> int:
    """The largest integer whose cube is at most ``n`` (exact, unlike ``n ** (1 / 3)``)."""
    root = round(math.pow(max(n, 0), 1.0 / 3.0))
    while root**3 > n:
        root -= 1
    while (root + 1) ** 3 <= n:
        root += 1
    return root


def _range_3x3(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least and greatest value over each pixel's 3×3 neighbourhood (clipped at the
    borders) of a (C, H, W) map; NaN spreads to the neighbours."""
    def extremes(y: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        before = torch.cat((y.narrow(dim, 0, 1), y.narrow(dim, 0, y.shape[dim] - 1)), dim=dim)
        after = torch.cat((y.narrow(dim, 1, y.shape[dim] - 1), y.narrow(dim, y.shape[dim] - 1, 1)), dim=dim)
        return torch.minimum(torch.minimum(before, y), after), torch.maximum(torch.maximum(before, y), after)

    lo, hi = extremes(x, -1)
    return extremes(lo, -2)[0], extremes(hi, -2)[1]


def _colour_map(
    source: torch.Tensor, voted: torch.Tensor, reliable: torch.Tensor, bins: int, eps: float, min_explained: float
) -> torch.Tensor | None:
    """``redraw_global_look``'s piecewise affine colour map of one image, evaluated at every
    pixel ((3, H, W), NaN where the pixel's bin holds no reliable pixel), or ``None`` when
    it explains less than ``min_explained`` of the vote's variance held out, or too few
    reliable pixels have a colour seen in both colours of tiles to tell."""
    h, w = source.shape[-2:]
    src = source.flatten(1).T  # (P, 3)
    vote = voted.flatten(1).T
    cell = (src * bins).long().clamp(0, bins - 1)
    code = (cell[:, 0] * bins + cell[:, 1]) * bins + cell[:, 2]
    # tiles of LOOK_TILE px in a checkerboard: the held-out test predicts each tile's pixels
    # from the other colour of tiles, so a bin whose pixels lie together in one place (a
    # colour that only one stroke or one object has) proves nothing
    tile = pixel_grid(h, w, dtype=torch.long, device=code.device) // LOOK_TILE  # (x, y) tile of each pixel
    side = (tile.sum(dim=-1) % 2).flatten()
    keep = reliable.flatten()
    s, v, k, t = src[keep], vote[keep], code[keep], side[keep]
    counted = torch.cat((torch.ones_like(v[:, :1]), v), dim=1)  # count and vote sums per bin and side
    halves = torch.zeros(2 * bins**3, 4, dtype=v.dtype, device=v.device).index_add_(0, k + t * bins**3, counted)
    other = halves[k + (1 - t) * bins**3]
    known = other[:, 0] > 0
    if int(known.sum()) < LOOK_MIN_PIXELS or float(known.float().mean()) < LOOK_COVERAGE:
        return None
    held_out = other[known, 1:] / other[known, :1]
    residual = ((v[known] - held_out) ** 2).mean()
    if not bool(residual <= (1 - min_explained) * v[known].var(dim=0).mean()):
        return None
    sums = torch.zeros(bins**3, 25, dtype=v.dtype, device=v.device)
    for part in range(0, k.shape[0], _LOOK_CHUNK):  # moments a slice of pixels at a time
        sp, vp = s[part : part + _LOOK_CHUNK], v[part : part + _LOOK_CHUNK]
        moments = torch.cat((counted[part : part + _LOOK_CHUNK, :1], sp, vp,
                             (sp.unsqueeze(-1) * sp.unsqueeze(-2)).flatten(1),
                             (sp.unsqueeze(-1) * vp.unsqueeze(-2)).flatten(1)), dim=1)
        sums.index_add_(0, k[part : part + _LOOK_CHUNK], moments)
    count = sums[:, 0]
    occupied = count > 0
    gain, bias = _affine_colour_fit(sums[occupied, 1:] / count[occupied, None], eps)
    few = count[occupied] < LOOK_MIN_PIXELS  # too few for an affine fit: the bin's mean vote
    gain = torch.where(few[:, None, None], 0.0, gain)
    bias = torch.where(few[:, None], sums[occupied, 4:7] / count[occupied, None], bias)
    table = torch.full((bins**3, 4, 3), torch.nan, dtype=v.dtype, device=v.device)
    table[occupied] = torch.cat((gain, bias.unsqueeze(1)), dim=1)
    fitted = torch.empty_like(src)
    for part in range(0, src.shape[0], _LOOK_CHUNK):
        coef = table[code[part : part + _LOOK_CHUNK]]  # (chunk, 4, 3)
        sp = src[part : part + _LOOK_CHUNK]
        out = torch.addcmul(coef[:, 3], sp[:, 0:1], coef[:, 0], out=fitted[part : part + _LOOK_CHUNK])
        out.addcmul_(sp[:, 1:2], coef[:, 1]).addcmul_(sp[:, 2:3], coef[:, 2])
    return fitted.clamp(0, 1).T.reshape(voted.shape)


def _exact_whole(field: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole-pixel displacement nearest each match, (N, H, W, 2), and where the match
    lies on it (within 0.01 px), (N, H, W) bool."""
    disp = field - pixel_grid(*field.shape[1:3], device=field.device, dtype=field.dtype)
    whole = disp.round()
    return whole, (disp - whole).abs().amax(dim=-1) <= 0.01


def _modes(whole: torch.Tensor, exact: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole-pixel displacements held exactly by one item's pixels, (K, 2), most held
    first, and how many pixels hold each, (K,)."""
    held = whole[exact].long()
    if held.numel() == 0:
        return whole.new_zeros(0, 2), torch.zeros(0, dtype=torch.long, device=whole.device)
    # one integer key per displacement, in (dx, dy) order (unique over rows sorts far slower)
    low = held.amin(dim=0)
    rows = int(held[:, 1].max() - low[1]) + 1
    keys, counts = torch.unique((held[:, 0] - low[0]) * rows + (held[:, 1] - low[1]), return_counts=True)
    order = counts.argsort(descending=True, stable=True)
    keys = keys[order]
    values = torch.stack((keys // rows + low[0], keys % rows + low[1]), dim=-1).to(whole.dtype)
    return values, counts[order]


def _dominant(values: torch.Tensor, counts: torch.Tensor, pixels: int) -> torch.Tensor:
    """The displacements of ``_modes`` held exactly by at least ``DOMINANT_SHARE`` of an item's ``pixels``."""
    return values[counts >= DOMINANT_SHARE * pixels]


def _whole_pixel_regions(
    src: _WindowStats,
    tgt_lum: torch.Tensor,
    field: torch.Tensor,
    window: int,
    accept: _Accept,
    check_interrupt: InterruptFn | None,
    tracker: ProgressTracker,
) -> torch.Tensor:
    """Give the whole-pixel displacement of a region to its pixels that missed it.

    After the whole-pixel step most pixels of a region moved by whole pixels match
    exactly there; the rest stray a few tenths (a window beside an occlusion, a gamma
    curve that tilts the correlation) or, where the deep search failed, several pixels.
    Two candidates, counted on the pixels matched exactly (targets within 0.01 px of
    whole pixels):

    - dominant: each of the ``DOMINANT_MODES`` displacements that at least
      ``DOMINANT_SHARE`` of all pixels hold exactly, however far the pixel's match was:
      taken by a textured pixel wherever it correlates better than that match by
      ``accept.margin`` (and at most ``accept.max_cost``), and by a pixel whose match the
      images do not confirm (1 − r² above ``accept.max_cost``; a flat window's always is)
      wherever it correlates no worse;
    - regional: the displacement held exactly by the largest share of the pixels within
      ``REGION_RADIUS``, taken where that share is at least ``REGION_SUPPORT`` and the
      pixel's match lies within ``REGION_REACH`` of it.

    A smoothly warped view has few exact matches (its whole-pixel positions are
    scattered lines), so it keeps its sub-pixel field; a region that moved by whole
    pixels is copied whole. ``_region_work()`` progress units.
    """
    n, h, w, _ = field.shape
    target_hw = (int(tgt_lum.shape[-2]), int(tgt_lum.shape[-1]))
    base = pixel_grid(h, w, device=field.device, dtype=field.dtype)
    if check_interrupt is not None:
        check_interrupt()
    now = _ncc_cost(src, tgt_lum, field, window)
    tracker.advance(1)
    whole, exact = _exact_whole(field)
    modes = [_modes(whole[i], exact[i]) for i in range(n)]
    dominant = [_dominant(values, counts, h * w)[:DOMINANT_MODES] for values, counts in modes]
    textured = src.var[:, 0] > accept.min_texture
    moved, taken = field, torch.zeros_like(exact)
    for k in range(DOMINANT_MODES):
        if check_interrupt is not None:
            check_interrupt()
        has = torch.tensor([len(d) > k for d in dominant], device=field.device)
        if not bool(has.any()):
            tracker.advance(DOMINANT_MODES - k)  # no pair has another dominant displacement
            break
        disp = torch.stack([d[k] if len(d) > k else torch.zeros_like(base[0, 0]) for d in dominant]).view(-1, 1, 1, 2)
        candidate = torch.where(has.view(-1, 1, 1, 1), clamp_field(base + disp, target_hw), field)
        cost = _ncc_cost(src, tgt_lum, candidate, window)
        # a textured pixel takes it where it correlates clearly better, a pixel whose own match the
        # images do not confirm (a flat window included) where it correlates no worse
        better = (textured & (cost <= accept.max_cost) & (cost < now - accept.margin)) | (
            (now > accept.max_cost) & (cost <= now)
        )
        # never where the displacement leads out of the target (clamped, it would repeat its edge)
        better = better & has.view(-1, 1, 1) & ~taken & _lands_inside(base, disp, target_hw)
        moved = torch.where(better.unsqueeze(-1), candidate, moved)
        taken = taken | better
        tracker.advance(1)
    out = []
    for i, (values, counts) in enumerate(modes):
        # a displacement held by fewer pixels than a share of the smallest (corner) window never wins
        candidates = values[:_REGION_CANDIDATES][counts[:_REGION_CANDIDATES] >= REGION_SUPPORT * (REGION_RADIUS + 1) ** 2]
        if len(candidates) == 0:
            out.append(moved[i])
            continue
        # the share of the neighbourhood holding each candidate exactly, all candidates at once
        held = exact[i] & (whole[i].unsqueeze(0) == candidates.view(-1, 1, 1, 2)).all(dim=-1)
        # (box sums of a boolean map are exact counts)
        share, best = box_mean(held.float().unsqueeze(0), REGION_RADIUS)[0].max(dim=0)
        region = candidates[best]
        near = ~taken[i] & (share >= REGION_SUPPORT) & ((field[i] - base - region).abs().amax(dim=-1) <= REGION_REACH)
        near = near & _lands_inside(base, region, target_hw)
        out.append(torch.where(near.unsqueeze(-1), clamp_field(base + region, target_hw), moved[i]))
    return torch.stack(out)


def _lands_inside(base: torch.Tensor, disp: torch.Tensor, target_hw: Size) -> torch.Tensor:
    """Where the pixel positions ``base`` moved by ``disp`` lie inside a target of ``target_hw``
    (a displacement that leads out of it would be clamped onto its edge)."""
    x, y = (base + disp).unbind(-1)
    return (x >= 0) & (x <= target_hw[1] - 1) & (y >= 0) & (y <= target_hw[0] - 1)


def _confirmed_by_inverse(field: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """``field`` with a match moved to the whole pixel q it rounds to wherever the inverse
    field's match at q leads exactly back to the pixel along one of the inverse's dominant
    displacements (held exactly by at least ``DOMINANT_SHARE`` of its pixels)."""
    n, h, w, _ = field.shape
    ht, wt = int(inverse.shape[1]), int(inverse.shape[2])
    inv_whole, inv_exact = _exact_whole(inverse)
    on_dominant = []
    for i in range(n):
        dominant = _dominant(*_modes(inv_whole[i], inv_exact[i]), ht * wt)
        on_dominant.append(inv_exact[i] & (inv_whole[i].unsqueeze(-2) == dominant).all(dim=-1).any(dim=-1))
    base = pixel_grid(h, w, device=field.device, dtype=field.dtype)
    back = _at_nearest(inverse, field).round()
    confirmed = _at_nearest(torch.stack(on_dominant).unsqueeze(-1), field)[..., 0] & (back == base).all(dim=-1)
    return torch.where(confirmed.unsqueeze(-1), clamp_field(field.round(), (ht, wt)), field)


def exchange_work() -> int:
    """Progress units of one ``exchange_whole_pixels`` call.

    Example:
        >>> exchange_work()
        16
    """
    return EXCHANGE_ROUNDS * 2 * _region_work()


def exchange_whole_pixels(
    a: torch.Tensor,
    bp: torch.Tensor,
    field_ab: torch.Tensor,
    field_ba: torch.Tensor,
    *,
    window: int = 5,
    min_texture: float = 1e-4,
    max_cost: float = 0.5,
    margin: float = 0.01,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Let each direction's exact whole-pixel matches correct the other direction's.

    A posterised B' sampled between pixels is smoothed, and a smooth A window correlates
    better with that than with the exact copy, so the A→B' field of a region moved by
    whole pixels strays a few tenths from them and none of its matches is exact; the
    B'→A field, sampling the smooth A, is exact there. In each of ``EXCHANGE_ROUNDS``
    rounds, both directions at once: a match moves to the whole pixel it rounds to where
    the other field leads exactly back along one of its dominant displacements
    (``DOMINANT_SHARE``), and the direction so changed then spreads its region's
    whole-pixel displacement (``_whole_pixel_regions``). A pair without a dominant
    whole-pixel displacement (a warped view) is returned unchanged.

    Args:
        a: (N, 3, H, W) RGB 0..1.
        bp: (N, 3, H', W') RGB 0..1.
        field_ab: (N, H, W, 2) continuous coordinates into B' (``refine_pyramid``'s result).
        field_ba: (N, H', W', 2) continuous coordinates into A.
        window, min_texture, max_cost, margin: as in ``refine_field``.
        check_interrupt: called before every scored candidate.
        progress: ``progress(done, total, stage)``, ``exchange_work()`` units.

    Returns:
        ``(field_ab, field_ba)``.
    """
    check_shape(field_ab, f"{a.shape[0]} {a.shape[2]} {a.shape[3]} 2", "field_ab")
    check_shape(field_ba, f"{bp.shape[0]} {bp.shape[2]} {bp.shape[3]} 2", "field_ba")
    tracker = ProgressTracker(progress, exchange_work(), "pixel refinement")
    accept = _Accept(min_texture, max_cost, margin)
    lum = {"a": luminance(a.float()), "b": luminance(bp.float())}
    src = {side: _window_stats(lum[side], window) for side in lum}
    fields = {"ab": field_ab, "ba": field_ba}
    for _ in range(EXCHANGE_ROUNDS):
        current = dict(fields)
        for key, source, target, inverse in (("ab", "a", "b", "ba"), ("ba", "b", "a", "ab")):
            confirmed = _confirmed_by_inverse(current[key], current[inverse])
            if torch.equal(confirmed, current[key]):
                if check_interrupt is not None:
                    check_interrupt()
                tracker.advance(_region_work())  # nothing confirmed: nothing to spread
                continue
            fields[key] = _whole_pixel_regions(src[source], lum[target], confirmed, window, accept, check_interrupt,
                                               tracker)
    tracker.finish()
    return fields["ab"], fields["ba"]


def resample_field(
    field: torch.Tensor, source_hw: Size, target_hw_old: Size, target_hw_new: Size, *, tol: float = 1.0
) -> torch.Tensor:
    """Carry a continuous field to other source and target grid sizes.

    The displacement (target minus source position) is interpolated bilinearly at the new
    source pixels' centres, so a constant displacement stays exact up to the borders; the
    positions are then scaled to the new target grid (pixel centres aligned). Where the
    bilinear displacement differs from the nearest old pixel's by more than ``tol`` px (an
    edge between two pieces of a collage), the nearest one is kept: an average of two
    unrelated matches points at neither, and voting through it pastes stray content.

    Args:
        field: (N, h, w, 2) continuous coordinates into a ``target_hw_old`` grid.
        source_hw: (H, W) of the new source grid.
        target_hw_old: (H, W) of the target grid ``field`` points into.
        target_hw_new: (H, W) of the new target grid.
        tol: largest difference (px, on the old grid) between the interpolated and the
            nearest displacement for the interpolated one to be used.

    Returns:
        (N, H, W, 2) float32 coordinates inside ``target_hw_new``.

    Example:
        >>> f = pixel_grid(2, 2).unsqueeze(0) + 0.5  # half a pixel right and down
        >>> out = resample_field(f, (4, 4), (2, 2), (4, 4))  # one pixel at twice the size
        >>> torch.allclose(out[0, :3, :3], pixel_grid(3, 3) + 1.0), out[0, 3, 3].tolist()
        (True, [3.0, 3.0])
    """
    check_shape(field, "N H W 2", "field")
    n, h, w, _ = field.shape
    old_grid = pixel_grid(h, w, device=field.device)
    disp = (field.float() - old_grid).permute(0, 3, 1, 2)
    if (h, w) != tuple(source_hw):
        smooth = F.interpolate(disp, size=source_hw, mode="bilinear", align_corners=False)
        nearest = F.interpolate(disp, size=source_hw, mode="nearest")
        disp = torch.where((smooth - nearest).abs().amax(dim=1, keepdim=True) > tol, nearest, smooth)
    # a new source pixel p' sits at (p' + 0.5)·(old/new) − 0.5 on the old source grid;
    # its old target is there plus the displacement, which scales to the new target grid
    dev = field.device
    source_scale = torch.tensor((w / source_hw[1], h / source_hw[0]), device=dev)
    target_scale = torch.tensor(
        (target_hw_new[1] / target_hw_old[1], target_hw_new[0] / target_hw_old[0]), device=dev
    )
    position = (pixel_grid(*source_hw, device=dev) + 0.5) * source_scale - 0.5
    coords = (position + disp.permute(0, 2, 3, 1) + 0.5) * target_scale - 0.5
    return clamp_field(coords, target_hw_new)


def pyramid_sizes(start: Size, final: Size) -> list[Size]:
    """Sizes of the refinement levels from ``start`` up to ``final``, doubling each time.

    A final size not larger than the start is refined once, at the final size.

    Example:
        >>> pyramid_sizes((100, 150), (450, 600))
        [(100, 150), (200, 300), (450, 600)]
        >>> pyramid_sizes((300, 300), (200, 200))
        [(200, 200)]
    """
    if final[0] <= start[0] and final[1] <= start[1]:
        return [final]
    levels = [start]
    while levels[-1][0] * 2 < final[0] * 0.75 or levels[-1][1] * 2 < final[1] * 0.75:
        levels.append((levels[-1][0] * 2, levels[-1][1] * 2))
    if levels[-1] != final:
        levels.append(final)
    return levels


def coarse_start(size: Size) -> Size:
    """The first level's size: ``size`` halved ``COARSE_LEVELS`` times, sides >= ``MIN_LEVEL_SIDE``.

    Example:
        >>> coarse_start((224, 300)), coarse_start((100, 150)), coarse_start((40, 40))
        ((56, 75), (50, 75), (40, 40))
    """
    h, w = size
    for _ in range(COARSE_LEVELS):
        if min(h, w) // 2 < MIN_LEVEL_SIDE:
            break
        h, w = h // 2, w // 2
    return (h, w)


def refine_levels(field_hw: Size, final: Size) -> list[Size]:
    """Source sizes of ``refine_pyramid``'s levels for a field on a ``field_hw`` grid.

    Example:
        >>> refine_levels((224, 224), (224, 224))
        [(56, 56), (112, 112), (224, 224)]
    """
    return pyramid_sizes(coarse_start(field_hw), final)


def pyramid_work(field_hw: Size, final: Size) -> int:
    """Progress units of ``refine_pyramid`` for a field on a ``field_hw`` grid and this final source size."""
    n = len(refine_levels(field_hw, final))
    return sum(refine_work(*_level_plan(i, n)) for i in range(n))


def _level_plan(i: int, n: int) -> tuple[tuple[int, ...], tuple[int, ...], bool, int, bool]:
    """(radii, propagation steps, consensus, gradient steps, whole-pixel preference) of level ``i`` of ``n``."""
    first = (REFINE_RADII, PROPAGATION_STEPS) if i == 0 else (UPPER_RADII, ())
    last = i == n - 1
    return (*first, CONSENSUS_RADIUS > 0, GRADIENT_STEPS if last else 0, last and WHOLE_PIXEL_TOL is not None)


def _resized(image: torch.Tensor, size: Size) -> torch.Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def refine_pyramid(
    source: torch.Tensor,
    target: torch.Tensor,
    field: torch.Tensor,
    target_hw: Size,
    *,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Carry a field from the network's grid to the images' own sizes, refining it on the way.

    The field is carried down to ``COARSE_LEVELS`` halvings of its own grid and refined
    there (``PROPAGATION_STEPS``, then ``REFINE_RADII``), then at every doubling up to
    ``source``'s size (``UPPER_RADII``), on copies of the images resized to each level;
    every level ends with the neighbourhood consensus (``CONSENSUS_RADIUS``), the last
    with ``GRADIENT_STEPS`` sub-pixel steps and the whole-pixel preference
    (``WHOLE_PIXEL_TOL``). The result is expressed at ``source``'s and
    ``target``'s sizes.

    Args:
        source: (N, 3, H, W) RGB 0..1 at its final size (A for φ_a→b).
        target: (N, 3, Ht, Wt) RGB 0..1 at its final size (B').
        field: (N, h, w, 2) continuous coordinates into a ``target_hw`` grid (e.g. the
            relu1_1 field on the network-size images).
        target_hw: (H, W) of the grid ``field`` points into.
        check_interrupt: called before every scored offset.
        progress: ``progress(done, total, stage)``, ``pyramid_work`` units in all.

    Returns:
        ``(field, moved)`` at the final sizes: (N, H, W, 2) float32 coordinates inside
        ``target`` and (N, H, W) bool (moved at the last level).
    """
    check_shape(field, "N H W 2", "field")
    final_s = (int(source.shape[-2]), int(source.shape[-1]))
    final_t = (int(target.shape[-2]), int(target.shape[-1]))
    field_hw = (int(field.shape[1]), int(field.shape[2]))
    levels = refine_levels(field_hw, final_s)
    tracker = ProgressTracker(progress, pyramid_work(field_hw, final_s))
    current_t = target_hw
    moved = torch.zeros(0)
    for i, size in enumerate(levels):
        # the target's level size keeps its aspect ratio and scales with the source's
        t_size = (
            max(1, min(final_t[0], math.floor(final_t[0] * size[0] / final_s[0] + 0.5))),
            max(1, min(final_t[1], math.floor(final_t[1] * size[1] / final_s[1] + 0.5))),
        )
        if i == len(levels) - 1:
            t_size = final_t
        field = resample_field(field, size, current_t, t_size)
        current_t = t_size
        plan = _level_plan(i, len(levels))
        radii, steps, consensus, gradient_steps, whole_pixel = plan
        field, moved = refine_field(
            _resized(source, size), _resized(target, t_size), field, radii=radii, propagate=steps,
            consensus_radius=CONSENSUS_RADIUS if consensus else 0, gradient_steps=gradient_steps,
            whole_pixel_tol=WHOLE_PIXEL_TOL if whole_pixel else None,
            check_interrupt=check_interrupt, progress=tracker.share(refine_work(*plan)),
        )
    tracker.finish()
    return field, moved
