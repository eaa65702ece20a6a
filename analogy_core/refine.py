"""Edge-aware refinement of A' with the weighted-least-squares (WLS) filter.

The WLS filter (Farbman, Fattal, Lischinski, Szeliski, "Edge-preserving decompositions
for multi-scale tone and detail manipulation", SIGGRAPH 2008) smooths an image ``g``
everywhere except across edges of a guide: it solves

    (I + L_λ) u = g,    L_λ u(p) = Σ_{q ∈ N4(p)} w_pq (u(p) − u(q)),
    w_pq = λ / (|ℓ(p) − ℓ(q)|^α + ε),

where ℓ is the guide's log-luminance (``guide_scale="log"``, Farbman et al.'s choice) or
its plain luminance in 0..1 (``"linear"``, what the authors' release of Deep Image
Analogy uses in its photo mode), and N4 the 4-neighbourhood. The matrix is the
identity plus a weighted graph Laplacian: symmetric positive definite, solved here
matrix-free in plain torch.

The default solver is conjugate gradients preconditioned by a red-black multilevel
V-cycle. The red pixels (i + j odd) touch only black ones, so they are eliminated
exactly and CG runs on the Schur complement over the black pixels (half the unknowns,
same residual). Each coarser level eliminates every other node again, exactly, after
dropping the few couplings that would leave the grid pattern; a dropped coupling is
moved onto the two two-step paths beside it, each path's couplings scaled by one common
factor, so a path that crosses a guide edge (weak couplings) gains next to nothing. The
interpolation between levels is the elimination itself, x_fine = Σ w·x_coarse / diag, so
it follows the actual weights and never averages across an edge: guides with sharp
steps (couplings ~10⁴ beside ~1) take a handful of iterations. One damped-Jacobi sweep
before and after each coarse correction, with the exact (undropped) operator of its
level, removes what the dropping got wrong. Thin strongly coupled structures that no
coarse grid of every other node holds (1–3 px lines of equal pixels) are what costs
iterations; the finest level corrects on two interleaved coarse grids to catch the
thinnest. The plain Jacobi-preconditioned CG is kept as ``solver="cg-jacobi"``.

The follow-up refinement of Deep Image Analogy keeps A's fine detail and takes A''s
smoothed colours: A'_refined = A + WLS(A' | A) − WLS(A | A). Both filters share the
guide A, so by linearity this is A + WLS(A' − A | A): one solve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ._check import check_finite, check_shape
from .image import luminance
from .progress import InterruptFn, ProgressFn, ProgressTracker

_LOG_EPS = 1e-4  # keeps log-luminance finite on black pixels

Solver = Literal["multigrid", "cg-jacobi"]
"""``"multigrid"``: CG on the red-black Schur complement with a multilevel V-cycle
preconditioner (default). ``"cg-jacobi"``: plain CG with a Jacobi preconditioner."""
_SOLVERS: tuple[str, ...] = ("multigrid", "cg-jacobi")
_COARSEST = 256  # levels with at most this many nodes are solved directly
_OMEGA = 0.8  # damping of the Jacobi smoother
_GAMMA = 0.5  # share of a dropped connection moved onto its neighbouring paths
_TWIN_LEVELS = 1  # levels that also correct on the O grid (see ``_vcycle_black``)


GuideScale = Literal["log", "linear"]
"""How the guide's luminance enters the weights: ``"log"`` (log-luminance, the WLS paper's
default) or ``"linear"`` (luminance in 0..1, the authors' photo mode)."""
_GUIDE_SCALES: tuple[str, ...] = ("log", "linear")


def wls_weights(
    guide: torch.Tensor,
    *,
    lam: float = 0.8,
    alpha: float = 1.0,
    eps: float = 1e-4,
    guide_scale: GuideScale = "log",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge weights of the WLS system from a guide image.

    Args:
        guide: (N, 3, H, W) RGB or (N, 1, H, W) luminance in 0..1.
        lam: λ, overall smoothness (0 gives no smoothing).
        alpha: α, sensitivity to the guide's gradients (larger keeps edges sharper).
        eps: ε, keeps weights finite where the guide is flat.
        guide_scale: ``"log"`` (differences of log-luminance) or ``"linear"``
            (differences of luminance in 0..1, which smooths dark regions more).

    Returns:
        ``(wx, wy)``: (N, 1, H, W−1) weights between horizontal neighbours and
        (N, 1, H−1, W) between vertical neighbours, λ included.

    Raises:
        ValueError: bad shape or parameters out of range.
    """
    check_shape(guide, "N C H W", "guide")
    if guide.shape[1] not in (1, 3):
        raise ValueError(f"guide must have 1 or 3 channels, got shape {tuple(guide.shape)}")
    if lam < 0 or alpha <= 0 or eps <= 0:
        raise ValueError(f"need lam >= 0, alpha > 0 and eps > 0, got lam={lam}, alpha={alpha}, eps={eps}")
    if guide_scale not in _GUIDE_SCALES:
        raise ValueError(f"guide_scale must be one of {', '.join(_GUIDE_SCALES)}; got {guide_scale!r}")
    lum = luminance(guide) if guide.shape[1] == 3 else guide
    if guide_scale == "log":
        lum = torch.log(lum.clamp_min(0.0) + _LOG_EPS)
    gx = (lum[..., :, 1:] - lum[..., :, :-1]).abs()
    gy = (lum[..., 1:, :] - lum[..., :-1, :]).abs()
    return lam / (gx.pow(alpha) + eps), lam / (gy.pow(alpha) + eps)


def wls_apply(u: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
    """The WLS operator: (I + L) u.

    Args:
        u: (N, C, H, W) map.
        wx: (N or 1, 1, H, W−1) horizontal weights from ``wls_weights``.
        wy: (N or 1, 1, H−1, W) vertical weights.

    Returns:
        (N, C, H, W).

    Example:
        >>> wx, wy = torch.ones(1, 1, 3, 2), torch.ones(1, 1, 2, 3)
        >>> torch.equal(wls_apply(torch.full((1, 1, 3, 3), 2.0), wx, wy), torch.full((1, 1, 3, 3), 2.0))
        True
    """
    out = u.clone()
    fx = wx * (u[..., :, 1:] - u[..., :, :-1])
    out[..., :, :-1] -= fx
    out[..., :, 1:] += fx
    fy = wy * (u[..., 1:, :] - u[..., :-1, :])
    out[..., :-1, :] -= fy
    out[..., 1:, :] += fy
    return out


def _diagonal(wx: torch.Tensor, wy: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    d = torch.ones(wx.shape[0], 1, shape[-2], shape[-1], device=wx.device, dtype=wx.dtype)
    d[..., :, :-1] += wx
    d[..., :, 1:] += wx
    d[..., :-1, :] += wy
    d[..., 1:, :] += wy
    return d


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=(-2, -1), keepdim=True)


# --------------------------------------------------------- red-black multilevel solver
# A "grid level" is a 5-point operator diag(m) + L on an h×w grid, padded to odd h and w
# with decoupled unit-mass nodes. Its red nodes (i + j odd) only touch black ones, so they
# are eliminated exactly. The black nodes split into E (i, j even) and O (i, j odd); the
# Schur complement on them (a "black level") couples every O to its four diagonal E
# neighbours, and E to E and O to O two apart along the axes. Dropping the O–O couplings
# (each moved onto the two O–E–O paths beside it) makes the O nodes independent, so they
# are eliminated exactly in turn and the E nodes form the next, half-size grid level,
# whose diagonal E–E couplings are dropped and moved onto the E–E–E paths the same way.
# The finest black level also corrects on the O nodes (E–E couplings dropped, E
# eliminated) and averages both corrections: a thin strongly coupled structure (a 1-px
# line of equal pixels, common in the quantised dark areas of 8-bit photos) on odd rows
# or columns has no E node, so only the O grid can represent it.
# Vectors on a black level are stacked as (N, C, 2, he, we): [:, :, 0] holds E and
# [:, :, 1] holds O, padded with one decoupled row and column.


@dataclass(frozen=True)
class _DenseLeaf:
    """The coarsest level of a branch, solved directly."""

    chol: torch.Tensor  # (Nw, n, n) Cholesky factor of the level's exact matrix, n = h·w


@dataclass(frozen=True)
class _Branch:
    """One coarse correction of a black level.

    ``e_coarse``: the E nodes form the coarse grid and O is interpolated from them; else
    the reverse. ``w_nw, w_ne, w_sw, w_se``, (Nw, 1, he − 1, we − 1), are the
    interpolation weights between O(p, q) and E(p, q), E(p, q + 1), E(p + 1, q) and
    E(p + 1, q + 1), in whichever direction the branch interpolates.
    """

    e_coarse: bool
    w_nw: torch.Tensor
    w_ne: torch.Tensor
    w_sw: torch.Tensor
    w_se: torch.Tensor
    grid: _GridNode | _DenseLeaf


@dataclass(frozen=True)
class _BlackNode:
    """Exact Schur complement on the black nodes of a grid level, and its coarse corrections.

    ``nw, ne, sw, se``, (Nw, 1, he − 1, we − 1), couple O(p, q) to E(p, q), E(p, q + 1),
    E(p + 1, q) and E(p + 1, q + 1). Stacked arrays are (Nw, 1, 2, he, we), E first.
    """

    mass: torch.Tensor  # stacked: the diagonal minus the couplings
    diag: torch.Tensor  # stacked
    smoother: torch.Tensor  # stacked: ω / diag, the damped Jacobi step
    axis_x: torch.Tensor  # (Nw, 1, 2, he, we − 1) E–E and O–O couplings two apart along x
    axis_y: torch.Tensor  # (Nw, 1, 2, he − 1, we) the same along y
    nw: torch.Tensor
    ne: torch.Tensor
    sw: torch.Tensor
    se: torch.Tensor
    branches: tuple[_Branch, ...]


@dataclass(frozen=True)
class _GridNode:
    """A 5-point level padded to odd size; its red nodes are eliminated exactly."""

    size: tuple[int, int]  # (h, w) before padding
    wx: torch.Tensor  # (Nw, 1, h', w' − 1) couplings to the right neighbour
    wy: torch.Tensor  # (Nw, 1, h' − 1, w') couplings to the neighbour below
    k_red: torch.Tensor  # (Nw, 1, h', w') 1 / diagonal on red nodes, 0 on black ones
    black: _BlackNode


def _shift(t: torch.Tensor, di: int, dj: int) -> torch.Tensor:
    """``s[..., i, j] = t[..., i + di, j + dj]``, zero where that falls outside ``t``."""
    h, w = t.shape[-2:]
    p = F.pad(t, (max(-dj, 0), max(dj, 0), max(-di, 0), max(di, 0)))
    i0, j0 = max(di, 0), max(dj, 0)
    return p[..., i0 : i0 + h, j0 : j0 + w]


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den``, 0 where ``den`` is 0."""
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(num))


def _series(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Conductance of two couplings in series, a·b / (a + b) (0 where both are 0)."""
    return _ratio(a * b, a + b)


def _pad_odd(
    m: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a 5-point level to odd height and width with decoupled unit-mass nodes."""
    ph, pw = 1 - m.shape[-2] % 2, 1 - m.shape[-1] % 2
    if ph == 0 and pw == 0:
        return m, wx, wy
    return F.pad(m, (0, pw, 0, ph), value=1.0), F.pad(wx, (0, pw, 0, ph)), F.pad(wy, (0, pw, 0, ph))


def _pad_to(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Zero-pad ``t`` at the bottom and right to (h, w)."""
    return F.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]))


def _parity_masks(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Red (i + j odd), E (i, j even) and O (i, j odd) indicators, (h, w) in ``like``'s dtype."""
    i = torch.arange(h, device=like.device).view(-1, 1)
    j = torch.arange(w, device=like.device).view(1, -1)
    red = (i + j) % 2 == 1
    even = (i % 2 == 0) & (j % 2 == 0)
    odd = (i % 2 == 1) & (j % 2 == 1)
    return red.to(like.dtype), even.to(like.dtype), odd.to(like.dtype)


def _eliminate_red(
    m: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor, k_red: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Schur complement of the red nodes of an odd-sized 5-point level, on the black pixels.

    Returns full-size (Nw, 1, h, w) arrays, valid on black pixels: the mass, and the
    couplings of (i, j) to (i + 1, j + 1) (``dse``), to (i + 1, j − 1) (``dsw``), to
    (i, j + 2) (``x2``) and to (i + 2, j) (``y2``).
    """
    wl, wr = F.pad(wx, (1, 0)), F.pad(wx, (0, 1))  # coupling to the left / right neighbour
    wu, wd = F.pad(wy, (0, 0, 1, 0)), F.pad(wy, (0, 0, 0, 1))  # to the neighbour above / below
    dse = _shift(wu * wr * k_red, 1, 0) + _shift(wl * wd * k_red, 0, 1)
    dsw = _shift(wu * wl * k_red, 1, 0) + _shift(wr * wd * k_red, 0, -1)
    x2 = _shift(wl * wr * k_red, 0, 1)
    y2 = _shift(wu * wd * k_red, 1, 0)
    mk = m * k_red
    mass = m + wr * _shift(mk, 0, 1) + wl * _shift(mk, 0, -1) + wd * _shift(mk, 1, 0) + wu * _shift(mk, -1, 0)
    return mass, dse, dsw, x2, y2


def _black_operator(
    mass: torch.Tensor, dse: torch.Tensor, dsw: torch.Tensor, x2: torch.Tensor, y2: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The black level's exact operator, in the E/O layout, from ``_eliminate_red``'s arrays."""
    he, we = (mass.shape[-2] + 1) // 2, (mass.shape[-1] + 1) // 2
    nw, ne = dse[..., 0:-1:2, 0:-1:2], dsw[..., 0:-1:2, 2::2]
    sw, se = dsw[..., 1::2, 1::2], dse[..., 1::2, 1::2]
    axis_x = torch.stack((x2[..., 0::2, 0::2][..., :-1], _pad_to(x2[..., 1::2, 1::2][..., :-1], he, we - 1)), 2)
    axis_y = torch.stack((y2[..., 0::2, 0::2][..., :-1, :], _pad_to(y2[..., 1::2, 1::2][..., :-1, :], he - 1, we)), 2)
    mass_o = F.pad(mass[..., 1::2, 1::2], (0, 1, 0, 1), value=1.0)
    stacked_mass = torch.stack((mass[..., 0::2, 0::2], mass_o), 2)
    diag = stacked_mass.clone()
    diag[..., :, :-1] += axis_x
    diag[..., :, 1:] += axis_x
    diag[..., :-1, :] += axis_y
    diag[..., 1:, :] += axis_y
    diag[:, :, 1, :-1, :-1] += nw + ne + sw + se
    diag[:, :, 0, :-1, :-1] += nw
    diag[:, :, 0, :-1, 1:] += ne
    diag[:, :, 0, 1:, :-1] += sw
    diag[:, :, 0, 1:, 1:] += se
    return dict(
        mass=stacked_mass, diag=diag, smoother=_OMEGA / diag, axis_x=axis_x, axis_y=axis_y, nw=nw, ne=ne, sw=sw, se=se
    )


def _coarse_branch(
    mass: torch.Tensor,
    dse: torch.Tensor,
    dsw: torch.Tensor,
    x2: torch.Tensor,
    y2: torch.Tensor,
    fine: torch.Tensor,
    coarse: torch.Tensor,
    start: int,
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Coarsen a black level onto its E (``start`` 0) or O (``start`` 1) nodes.

    The couplings between two ``fine`` nodes are dropped, each moved onto the two
    fine–coarse–fine paths beside it: both paths' couplings grow by one factor
    1 + γ·w / (s₁ + s₂), s the paths' series conductances, so a path across a guide edge
    gains next to nothing. The fine nodes are then independent and are eliminated
    exactly; the diagonal couplings this leaves between coarse nodes are dropped onto the
    coarse paths around them the same way.

    Returns the interpolation weights (w_nw, w_ne, w_sw, w_se) as in ``_Branch`` and the
    coarse grid as ``(m, wx, wy, wx_exact, wy_exact, dd, da)``: mass, the sparsified
    couplings, and the exact ones before the diagonal couplings ``dd``
    ((p, q)–(p + 1, q + 1)) and ``da`` ((p, q + 1)–(p + 1, q)) were dropped.
    """
    t = _ratio(_GAMMA * x2 * fine, _series(_shift(dsw, -1, 1), _shift(dse, -1, 1)) + _series(dse, _shift(dsw, 0, 2)))
    add_sw = _shift(t * _shift(dsw, -1, 1), 1, -1) + _shift(t * _shift(dsw, 0, 2), 0, -2)
    add_se = _shift(t * _shift(dse, -1, 1), 1, -1) + t * dse
    t = _ratio(_GAMMA * y2 * fine, _series(dsw, _shift(dse, 1, -1)) + _series(dse, _shift(dsw, 1, 1)))
    add_sw = add_sw + t * dsw + _shift(t * _shift(dsw, 1, 1), -1, -1)
    add_se = add_se + _shift(t * _shift(dse, 1, -1), -1, 1) + t * dse
    dse, dsw = dse + add_se, dsw + add_sw

    # couplings of (i, j) to (i − 1, j − 1), (i − 1, j + 1), (i + 1, j − 1), (i + 1, j + 1)
    c_nw, c_ne, c_sw, c_se = _shift(dse, -1, -1), _shift(dsw, -1, 1), dsw, dse
    k = fine / (mass + c_nw + c_ne + c_sw + c_se)
    if start == 0:  # O(p, q) at (2p + 1, 2q + 1) interpolated from its four E neighbours
        interp = tuple((c * k)[..., 1::2, 1::2] for c in (c_nw, c_ne, c_sw, c_se))
    else:  # E nodes interpolated from O(p, q), their SE, SW, NE or NW neighbour
        interp = (
            (c_se * k)[..., 0:-1:2, 0:-1:2], (c_sw * k)[..., 0:-1:2, 2::2],
            (c_ne * k)[..., 2::2, 0:-1:2], (c_nw * k)[..., 2::2, 2::2],
        )
    x2 = x2 * coarse + _shift(c_nw * c_ne * k, 1, 1) + _shift(c_sw * c_se * k, -1, 1)
    y2 = y2 * coarse + _shift(c_nw * c_sw * k, 1, 1) + _shift(c_ne * c_se * k, 1, -1)
    mk = mass * k
    mass = mass + _shift(c_nw * mk, 1, 1) + _shift(c_ne * mk, 1, -1) + _shift(c_sw * mk, -1, 1) + _shift(c_se * mk, -1, -1)
    diag_d, diag_a = c_nw * c_se * k, c_ne * c_sw * k  # couplings across the fine node (i, j)
    m_next = mass[..., start::2, start::2]
    hn, wn = m_next.shape[-2:]
    wx_exact, wy_exact = x2[..., start::2, start::2][..., :-1], y2[..., start::2, start::2][..., :-1, :]
    dd = diag_d[..., start + 1 :: 2, start + 1 :: 2][..., : hn - 1, : wn - 1]
    da = diag_a[..., start + 1 :: 2, start + 1 :: 2][..., : hn - 1, : wn - 1]
    top, bottom, left, right = _shift(x2, -1, -1), _shift(x2, 1, -1), _shift(y2, -1, -1), _shift(y2, -1, 1)
    t = _ratio(_GAMMA * diag_d, _series(top, right) + _series(left, bottom))
    t = t + _ratio(_GAMMA * diag_a, _series(top, left) + _series(right, bottom))
    x2 = x2 + _shift(t * top, 1, 1) + _shift(t * bottom, -1, 1)
    y2 = y2 + _shift(t * left, 1, 1) + _shift(t * right, 1, -1)
    wx, wy = x2[..., start::2, start::2][..., :-1], y2[..., start::2, start::2][..., :-1, :]
    return interp, (m_next, wx, wy, wx_exact, wy_exact, dd, da)


def _nine_point_matrix(
    m: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor, dd: torch.Tensor, da: torch.Tensor
) -> torch.Tensor:
    """Dense (Nw, n, n) float64 matrix of diag(m) + L for a 9-point coupling pattern."""
    nb, h, w = m.shape[0], m.shape[-2], m.shape[-1]
    n = h * w
    idx = torch.arange(n, device=m.device).view(h, w)
    mat = torch.zeros(nb, n, n, device=m.device, dtype=torch.float64)
    for a, b, wt in (
        (idx[:, :-1], idx[:, 1:], wx),
        (idx[:-1, :], idx[1:, :], wy),
        (idx[:-1, :-1], idx[1:, 1:], dd),
        (idx[:-1, 1:], idx[1:, :-1], da),
    ):
        vals = -wt.reshape(nb, -1).to(torch.float64)
        mat[:, a.reshape(-1), b.reshape(-1)] = vals
        mat[:, b.reshape(-1), a.reshape(-1)] = vals
    diag = m.reshape(nb, n).to(torch.float64) - mat.sum(dim=-1)
    mat[:, idx.reshape(-1), idx.reshape(-1)] = diag
    return mat


def _build_grid(
    m: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    exact: tuple[torch.Tensor, ...] | None,
    depth: int,
) -> _GridNode | _DenseLeaf:
    """The multilevel tree below a 5-point level (mass ``m`` (Nw, 1, h, w), couplings).

    ``exact``: the level's exact 9-point couplings (wx, wy, dd, da), used if the level is
    small enough to solve directly; ``None`` for the top level, which never is.
    """
    size = (m.shape[-2], m.shape[-1])
    if exact is not None and size[0] * size[1] <= _COARSEST:
        mat = _nine_point_matrix(m, *exact)
        if m.device.type == "mps":  # no float64 there
            mat = mat.to(m.dtype)
        return _DenseLeaf(torch.linalg.cholesky(mat))
    m, wx, wy = _pad_odd(m, wx, wy)
    h, w = m.shape[-2:]
    red, even, odd = _parity_masks(h, w, m)
    diag = m.clone()
    diag[..., :, :-1] += wx
    diag[..., :, 1:] += wx
    diag[..., :-1, :] += wy
    diag[..., 1:, :] += wy
    k_red = red / diag
    mass, dse, dsw, x2, y2 = _eliminate_red(m, wx, wy, k_red)
    branches = []
    for start in (0, 1) if depth < _TWIN_LEVELS and min(h, w) >= 5 else (0,):
        fine, coarse = (odd, even) if start == 0 else (even, odd)
        interp, (m2, wx2, wy2, *exact2) = _coarse_branch(mass, dse, dsw, x2, y2, fine, coarse, start)
        child = _build_grid(m2, wx2, wy2, tuple(exact2), depth + 1)
        w_nw, w_ne, w_sw, w_se = interp
        branches.append(_Branch(start == 0, w_nw, w_ne, w_sw, w_se, child))
    black = _BlackNode(**_black_operator(mass, dse, dsw, x2, y2), branches=tuple(branches))
    return _GridNode(size=size, wx=wx, wy=wy, k_red=k_red, black=black)


def _black_apply(lv: _BlackNode, x: torch.Tensor) -> torch.Tensor:
    """The black level's operator on stacked (N, C, 2, he, we) vectors."""
    y = lv.diag * x
    y[..., :, :-1].addcmul_(lv.axis_x, x[..., :, 1:], value=-1)
    y[..., :, 1:].addcmul_(lv.axis_x, x[..., :, :-1], value=-1)
    y[..., :-1, :].addcmul_(lv.axis_y, x[..., 1:, :], value=-1)
    y[..., 1:, :].addcmul_(lv.axis_y, x[..., :-1, :], value=-1)
    _gather_to_o((lv.nw, lv.ne, lv.sw, lv.se), x[:, :, 0], y[:, :, 1, :-1, :-1], -1.0)
    _scatter_to_e((lv.nw, lv.ne, lv.sw, lv.se), x[:, :, 1, :-1, :-1], y[:, :, 0], -1.0)
    return y


def _black_apply_accurate(lv: _BlackNode, x: torch.Tensor) -> torch.Tensor:
    """``_black_apply`` summed as mass·x plus coupling·difference terms, as ``wls_apply``.

    Differences of neighbouring values lose far less to rounding than subtracting the
    couplings from the (up to 10⁴ times larger) diagonal, so this one is used for the
    residual that decides when to stop; twice the work of ``_black_apply``.
    """
    y = lv.mass * x
    f = lv.axis_x * (x[..., :, :-1] - x[..., :, 1:])
    y[..., :, :-1] += f
    y[..., :, 1:] -= f
    f = lv.axis_y * (x[..., :-1, :] - x[..., 1:, :])
    y[..., :-1, :] += f
    y[..., 1:, :] -= f
    xe, xo, ye, yo = x[:, :, 0], x[:, :, 1, :-1, :-1], y[:, :, 0], y[:, :, 1, :-1, :-1]
    for wt, (i, j) in zip((lv.nw, lv.ne, lv.sw, lv.se), ((0, 0), (0, 1), (1, 0), (1, 1))):
        h, w = wt.shape[-2:]
        f = wt * (xo - xe[..., i : i + h, j : j + w])
        yo += f
        ye[..., i : i + h, j : j + w] -= f
    return y


def _gather_to_o(w4: tuple[torch.Tensor, ...], xe: torch.Tensor, out: torch.Tensor, value: float = 1.0) -> None:
    """``out[p, q] += value · Σ w·xe`` over the four E neighbours of O(p, q), in place."""
    h, w = out.shape[-2:]
    for wt, (i, j) in zip(w4, ((0, 0), (0, 1), (1, 0), (1, 1))):
        out.addcmul_(wt, xe[..., i : i + h, j : j + w], value=value)


def _scatter_to_e(w4: tuple[torch.Tensor, ...], xo: torch.Tensor, out: torch.Tensor, value: float = 1.0) -> None:
    """``out += value · w·xo`` onto the four E neighbours of every O(p, q), in place."""
    h, w = xo.shape[-2:]
    for wt, (i, j) in zip(w4, ((0, 0), (0, 1), (1, 0), (1, 1))):
        out[..., i : i + h, j : j + w].addcmul_(wt, xo, value=value)


def _to_black(g: _GridNode, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eliminate the red nodes from a right-hand side (N, C, h, w).

    Returns the black right-hand side (N, C, 2, he, we) and ``b`` padded to odd size.
    """
    h, w = g.k_red.shape[-2:]
    b = F.pad(b, (0, w - b.shape[-1], 0, h - b.shape[-2]))
    t = g.k_red * b
    rb = b.clone()
    rb[..., :, :-1].addcmul_(g.wx, t[..., :, 1:])
    rb[..., :, 1:].addcmul_(g.wx, t[..., :, :-1])
    rb[..., :-1, :].addcmul_(g.wy, t[..., 1:, :])
    rb[..., 1:, :].addcmul_(g.wy, t[..., :-1, :])
    out = b.new_zeros(b.shape[0], b.shape[1], 2, (h + 1) // 2, (w + 1) // 2)
    out[:, :, 0] = rb[..., 0::2, 0::2]
    out[:, :, 1, :-1, :-1] = rb[..., 1::2, 1::2]
    return out, b


def _from_black(g: _GridNode, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Put black values back on the grid and solve for the red ones; crop the padding."""
    e = torch.zeros_like(b)
    e[..., 0::2, 0::2] = x[:, :, 0]
    e[..., 1::2, 1::2] = x[:, :, 1, :-1, :-1]
    t = b.clone()
    t[..., :, :-1].addcmul_(g.wx, e[..., :, 1:])
    t[..., :, 1:].addcmul_(g.wx, e[..., :, :-1])
    t[..., :-1, :].addcmul_(g.wy, e[..., 1:, :])
    t[..., 1:, :].addcmul_(g.wy, e[..., :-1, :])
    e.addcmul_(g.k_red, t)
    return e[..., : g.size[0], : g.size[1]]


def _vcycle_black(lv: _BlackNode, b: torch.Tensor) -> torch.Tensor:
    """One V-cycle for a black level from a zero guess: (N, C, 2, he, we).

    Damped Jacobi before and after; between them the corrections of all branches,
    averaged (each is a symmetric approximation of the same inverse).
    """
    x = lv.smoother * b
    r = _black_apply(lv, x)
    torch.sub(b, r, out=r)
    scale = 1.0 / len(lv.branches)
    re, ro = r[:, :, 0], r[:, :, 1, :-1, :-1]
    xe, xo = x[:, :, 0], x[:, :, 1, :-1, :-1]
    for br in lv.branches:
        w4 = (br.w_nw, br.w_ne, br.w_sw, br.w_se)
        if br.e_coarse:  # fold each O residual onto its E neighbours, solve, interpolate O
            rc = re.clone()
            _scatter_to_e(w4, ro, rc)
            e = _vcycle_grid(br.grid, rc)
            xe.add_(e, alpha=scale)
            _gather_to_o(w4, e, xo, scale)
        else:
            rc = ro.clone()
            _gather_to_o(w4, re, rc)
            e = _vcycle_grid(br.grid, rc)
            xo.add_(e, alpha=scale)
            _scatter_to_e(w4, e, xe, scale)
    r = _black_apply(lv, x)
    torch.sub(b, r, out=r)
    return x.addcmul_(lv.smoother, r)


def _vcycle_grid(g: _GridNode | _DenseLeaf, b: torch.Tensor) -> torch.Tensor:
    """Approximate solve on a grid level (the coarsest ones exactly): (N, C, h, w)."""
    if isinstance(g, _DenseLeaf):
        nb = g.chol.shape[0]
        rhs = b.reshape(nb, -1, b.shape[-2] * b.shape[-1]).transpose(1, 2)
        x = torch.cholesky_solve(rhs.to(g.chol.dtype), g.chol)
        return x.transpose(1, 2).reshape(b.shape).to(b.dtype)
    rhs, b = _to_black(g, b)
    return _from_black(g, _vcycle_black(g.black, rhs), b)


def _dot5(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=(-3, -2, -1), keepdim=True)


def _solve_multigrid(
    b: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    tol: float,
    max_iters: int,
    check_interrupt: InterruptFn | None,
    tracker: ProgressTracker,
) -> torch.Tensor:
    """CG on the red-black Schur complement, preconditioned by one V-cycle per iteration.

    The full system's residual equals the Schur complement's once the red nodes are
    recovered exactly, so the stopping rule is the same as for plain CG.
    """
    mass = torch.ones(wx.shape[0], 1, *b.shape[-2:], device=b.device, dtype=b.dtype)
    top = _build_grid(mass, wx, wy, None, 0)
    assert isinstance(top, _GridNode)  # the top level is never solved directly
    lv = top.black
    rhs, b_pad = _to_black(top, b)
    x = torch.zeros_like(rhs)  # start from the image, like plain CG
    x[:, :, 0] = b_pad[..., 0::2, 0::2]
    x[:, :, 1, :-1, :-1] = b_pad[..., 1::2, 1::2]
    r = rhs - _black_apply_accurate(lv, x)
    tiny = torch.finfo(b.dtype).tiny
    limit = (tol * b.norm(dim=(-2, -1), keepdim=True)).clamp_min(tiny).unsqueeze(-1)
    p = torch.zeros_like(r)
    rz = torch.ones_like(limit)
    for _ in range(max_iters):
        if bool((_dot5(r, r).sqrt() <= limit).all()):
            break
        if check_interrupt is not None:
            check_interrupt()
        z = _vcycle_black(lv, r)
        rz_new = _dot5(r, z)
        p = z + (rz_new / rz.clamp_min(tiny)) * p
        rz = rz_new
        q = _black_apply_accurate(lv, p)
        step = rz / _dot5(p, q).clamp_min(tiny)
        x.add_(step * p)
        r.sub_(step * q)
        tracker.advance()
    return _from_black(top, x, b_pad)


def _solve_cg_jacobi(
    b: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    tol: float,
    max_iters: int,
    check_interrupt: InterruptFn | None,
    tracker: ProgressTracker,
) -> torch.Tensor:
    """Plain conjugate gradients with a Jacobi preconditioner, starting from ``b``."""
    inv_diag = 1.0 / _diagonal(wx, wy, b.shape)
    x = b.clone()
    r = b - wls_apply(x, wx, wy)
    z = r * inv_diag
    p = z.clone()
    rz = _dot(r, z)
    limit = (tol * b.norm(dim=(-2, -1), keepdim=True)).clamp_min(torch.finfo(b.dtype).tiny)
    for _ in range(max_iters):
        if bool((r.norm(dim=(-2, -1), keepdim=True) <= limit).all()):
            break
        if check_interrupt is not None:
            check_interrupt()
        ap = wls_apply(p, wx, wy)
        step = rz / _dot(p, ap).clamp_min(torch.finfo(b.dtype).tiny)
        x = x + step * p
        r = r - step * ap
        z = r * inv_diag
        rz_new = _dot(r, z)
        p = z + (rz_new / rz.clamp_min(torch.finfo(b.dtype).tiny)) * p
        rz = rz_new
        tracker.advance()
    return x


def wls_filter(
    image: torch.Tensor,
    guide: torch.Tensor,
    *,
    lam: float = 0.8,
    alpha: float = 1.0,
    eps: float = 1e-4,
    guide_scale: GuideScale = "log",
    tol: float = 1e-4,
    max_iters: int = 2000,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
    solver: Solver = "multigrid",
) -> torch.Tensor:
    """Edge-preserving smoothing of ``image`` along the edges of ``guide`` (WLS filter).

    Solves (I + L_λ) u = image per channel by preconditioned conjugate gradients until
    every channel's residual is at most ``tol`` times its right-hand side's norm or
    ``max_iters`` is reached. Since I + L_λ ≥ I, the error ‖u − u*‖ is then at most
    ``tol``·‖image‖ per channel too (up to rounding).

    Args:
        image: (N, C, H, W) float map to smooth (any range).
        guide: (N or 1, 1 or 3, H, W) guide in 0..1 (RGB or luminance).
        lam: λ, smoothness; 0 returns ``image``.
        alpha: α, edge sensitivity.
        eps: ε of the weights.
        guide_scale: ``"log"`` or ``"linear"`` (see ``wls_weights``).
        tol: relative residual at which the solve stops.
        max_iters: cap on conjugate-gradient iterations.
        check_interrupt: called before every iteration; raise from it to stop.
        progress: ``progress(done, total, stage)`` with ``total = max_iters``, one unit
            per iteration (the rest at once when the solve converges earlier), stage
            ``"wls"``.
        solver: ``"multigrid"`` (default): CG on the red-black Schur complement with a
            multilevel V-cycle as preconditioner, typically 5–30 iterations whatever the
            size, more (up to ~60 seen) on guides full of 1–3 px structures of equal
            pixels; ``"cg-jacobi"``: plain Jacobi-preconditioned CG, hundreds to
            thousands of cheaper iterations, growing with the size (kept for reference).

    Returns:
        (N, C, H, W) filtered map, same dtype and device as ``image``.

    Raises:
        ValueError: shapes disagree, parameters out of range, unknown solver, or NaN in
            the inputs.

    Example:
        >>> img = torch.full((1, 3, 8, 8), 0.25)
        >>> torch.allclose(wls_filter(img, torch.rand(1, 3, 8, 8)), img)
        True
    """
    check_shape(image, "N C H W", "image")
    check_shape(guide, "N C H W", "guide")
    if tuple(guide.shape[-2:]) != tuple(image.shape[-2:]):
        raise ValueError(f"guide is {tuple(guide.shape)} but image is {tuple(image.shape)}; they need one size")
    if guide.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"guide has batch {guide.shape[0]}, image has batch {image.shape[0]}; use 1 or equal")
    if tol <= 0 or max_iters < 0:
        raise ValueError(f"need tol > 0 and max_iters >= 0, got tol={tol}, max_iters={max_iters}")
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(_SOLVERS)}; got {solver!r}")
    check_finite(image, "image")
    check_finite(guide, "guide")
    if lam < 0 or alpha <= 0 or eps <= 0:
        raise ValueError(f"need lam >= 0, alpha > 0 and eps > 0, got lam={lam}, alpha={alpha}, eps={eps}")
    tracker = ProgressTracker(progress, max_iters, "wls")
    if lam == 0:
        tracker.finish()
        return image.clone()
    wx, wy = wls_weights(guide.to(image.dtype), lam=lam, alpha=alpha, eps=eps, guide_scale=guide_scale)
    solve = _solve_multigrid if solver == "multigrid" else _solve_cg_jacobi
    out = solve(image, wx, wy, tol, max_iters, check_interrupt, tracker)
    tracker.finish()
    return out


def wls_refine(
    ap: torch.Tensor,
    a: torch.Tensor,
    *,
    lam: float = 0.8,
    alpha: float = 1.0,
    eps: float = 1e-4,
    guide_scale: GuideScale = "log",
    tol: float = 1e-4,
    max_iters: int = 2000,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
    solver: Solver = "multigrid",
) -> torch.Tensor:
    """A'_refined = A + WLS(A' | A) − WLS(A | A), clamped to [0, 1].

    Keeps A's fine structure exactly and takes the edge-aware smoothed colours of A'.

    Args:
        ap: (N, 3, H, W) A' in 0..1.
        a: (N or 1, 3, H, W) A in 0..1, same size as ``ap``; also the guide.
        lam, alpha, eps, guide_scale, tol, max_iters, check_interrupt, progress, solver: as in
            ``wls_filter``.

    Returns:
        (N, 3, H, W) refined A' in 0..1.

    Raises:
        ValueError: shapes or batch sizes disagree (the message shows both).
    """
    check_shape(ap, "N 3 H W", "A'")
    check_shape(a, "N 3 H W", "A")
    if tuple(ap.shape[-2:]) != tuple(a.shape[-2:]):
        raise ValueError(
            f"A' is {ap.shape[-1]}x{ap.shape[-2]} px but A is {a.shape[-1]}x{a.shape[-2]} px; "
            "refine A' with the A it was made from"
        )
    if a.shape[0] not in (1, ap.shape[0]):
        raise ValueError(f"A' has batch {ap.shape[0]} and A has batch {a.shape[0]}; use equal batches or one A")
    a = a.to(device=ap.device, dtype=ap.dtype)
    detail = wls_filter(
        ap - a, a, lam=lam, alpha=alpha, eps=eps, guide_scale=guide_scale, tol=tol, max_iters=max_iters,
        check_interrupt=check_interrupt, progress=progress, solver=solver,
    )
    return (a + detail).clamp(0.0, 1.0)
