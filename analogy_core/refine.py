"""Edge-aware refinement of A' with the weighted-least-squares (WLS) filter.

The WLS filter (Farbman, Fattal, Lischinski, Szeliski, "Edge-preserving decompositions
for multi-scale tone and detail manipulation", SIGGRAPH 2008) smooths an image ``g``
everywhere except across edges of a guide: it solves

    (I + L_λ) u = g,    L_λ u(p) = Σ_{q ∈ N4(p)} w_pq (u(p) − u(q)),
    w_pq = λ / (|ℓ(p) − ℓ(q)|^α + ε),

where ℓ is the guide's log-luminance and N4 the 4-neighbourhood. The matrix is the
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
level, removes what the dropping got wrong. Guides with many thin (1–3 px) strongly
coupled structures, which no coarse grid of every other node can represent, take more
iterations. The plain Jacobi-preconditioned CG is kept as ``solver="cg-jacobi"``.

The follow-up refinement of Deep Image Analogy keeps A's fine detail and takes A''s
smoothed colours: A'_refined = A + WLS(A' | A) − WLS(A | A). Both filters share the
guide A, so by linearity this is A + WLS(A' − A | A): one solve.
"""

from __future__ import annotations

from collections.abc import Callable
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


def wls_weights(
    guide: torch.Tensor, *, lam: float = 0.8, alpha: float = 1.0, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge weights of the WLS system from a guide image.

    Args:
        guide: (N, 3, H, W) RGB or (N, 1, H, W) luminance in 0..1.
        lam: λ, overall smoothness (0 gives no smoothing).
        alpha: α, sensitivity to the guide's gradients (larger keeps edges sharper).
        eps: ε, keeps weights finite where the guide is flat.

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
    lum = luminance(guide) if guide.shape[1] == 3 else guide
    log_lum = torch.log(lum.clamp_min(0.0) + _LOG_EPS)
    gx = (log_lum[..., :, 1:] - log_lum[..., :, :-1]).abs()
    gy = (log_lum[..., 1:, :] - log_lum[..., :-1, :]).abs()
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
# Vectors on a black level are stacked as (N, C, 2, he, we): [:, :, 0] holds E and
# [:, :, 1] holds O, padded with one decoupled row and column.


@dataclass(frozen=True)
class _GridLevel:
    """A (sparsified) 5-point level; only the exact elimination of its red nodes is used."""

    size: tuple[int, int]  # (h, w) before padding to odd
    wx: torch.Tensor  # (Nw, 1, h', w' − 1) couplings to the right neighbour
    wy: torch.Tensor  # (Nw, 1, h' − 1, w') couplings to the neighbour below
    k_red: torch.Tensor  # (Nw, 1, h', w') 1 / diagonal on red nodes, 0 on black ones


@dataclass(frozen=True)
class _BlackLevel:
    """Schur complement on the black nodes of a grid level, and the interpolation to E.

    ``nw, ne, sw, se`` couple O(p, q) to E(p, q), E(p, q + 1), E(p + 1, q) and
    E(p + 1, q + 1), with shapes (he, we), (he, we − 1), (he − 1, we) and (he − 1, we − 1).
    ``q_*`` (same shapes) interpolate O from E after the O–O couplings are dropped.
    """

    mass: torch.Tensor  # (Nw, 1, 2, he, we) diagonal minus the couplings
    diag: torch.Tensor  # (Nw, 1, 2, he, we)
    inv_diag: torch.Tensor  # (Nw, 1, 2, he, we)
    axis_x: torch.Tensor  # (Nw, 1, 2, he, we − 1) E–E and O–O couplings two apart along x
    axis_y: torch.Tensor  # (Nw, 1, 2, he − 1, we) the same along y
    nw: torch.Tensor
    ne: torch.Tensor
    sw: torch.Tensor
    se: torch.Tensor
    q_nw: torch.Tensor
    q_ne: torch.Tensor
    q_sw: torch.Tensor
    q_se: torch.Tensor


@dataclass(frozen=True)
class _Hierarchy:
    """Grid levels 0..L−1, black levels 0..L−1 and the coarsest grid's Cholesky factor."""

    grids: list[_GridLevel]
    blacks: list[_BlackLevel]
    coarse_chol: torch.Tensor  # (Nw, n, n) with n = hc · wc
    coarse_size: tuple[int, int]


def _shift(t: torch.Tensor, di: int, dj: int) -> torch.Tensor:
    """``s[..., i, j] = t[..., i + di, j + dj]``, zero where that falls outside ``t``."""
    h, w = t.shape[-2:]
    p = F.pad(t, (max(-dj, 0), max(dj, 0), max(-di, 0), max(di, 0)))
    i0, j0 = max(di, 0), max(dj, 0)
    return p[..., i0 : i0 + h, j0 : j0 + w]


def _series(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Conductance of two couplings in series, a·b / (a + b) (0 where both are 0)."""
    return a * b / (a + b).clamp_min(torch.finfo(a.dtype).tiny)


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


def _black_couplings(
    dse: torch.Tensor, dsw: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """E–O couplings (nw, ne, sw, se) of a black level from full-size diagonal couplings.

    ``dse[i, j]`` couples pixel (i, j) to (i + 1, j + 1) and ``dsw[i, j]`` couples it to
    (i + 1, j − 1); O(p, q) sits at (2p + 1, 2q + 1) and E(p, q) at (2p, 2q).
    """
    nw = F.pad(dse[..., 0:-1:2, 0:-1:2], (0, 1, 0, 1))
    ne = F.pad(dsw[..., 0:-1:2, 2::2], (0, 0, 0, 1))
    sw = F.pad(dsw[..., 1::2, 1::2], (0, 1, 0, 0))
    se = dse[..., 1::2, 1::2]
    return nw, ne, sw, se


def _coarsen(
    m: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor, k_red: torch.Tensor, red_odd_even: tuple[torch.Tensor, ...]
) -> tuple[_BlackLevel, tuple[torch.Tensor, ...]]:
    """Eliminate the red nodes of an odd-sized 5-point level, then its O nodes.

    Returns the black level and the next grid level as ``(m, wx, wy, wx_exact, wy_exact,
    dd, da)``: mass (he, we), the sparsified 5-point couplings, and the exact 9-point ones
    before the diagonal couplings ``dd`` ((p, q)–(p + 1, q + 1)) and ``da``
    ((p, q + 1)–(p + 1, q)) were dropped.
    """
    _, even, odd = red_odd_even
    wl, wr = F.pad(wx, (1, 0)), F.pad(wx, (0, 1))  # coupling to the left / right neighbour
    wu, wd = F.pad(wy, (0, 0, 1, 0)), F.pad(wy, (0, 0, 0, 1))  # to the neighbour above / below
    # Schur complement of the red nodes, as couplings between the black pixels around them
    dse = _shift(wu * wr * k_red, 1, 0) + _shift(wl * wd * k_red, 0, 1)
    dsw = _shift(wu * wl * k_red, 1, 0) + _shift(wr * wd * k_red, 0, -1)
    x2 = _shift(wl * wr * k_red, 0, 1)  # (i, j)–(i, j + 2)
    y2 = _shift(wu * wd * k_red, 1, 0)  # (i, j)–(i + 2, j)
    mk = m * k_red
    mass = m + wr * _shift(mk, 0, 1) + wl * _shift(mk, 0, -1) + wd * _shift(mk, 1, 0) + wu * _shift(mk, -1, 0)

    he, we = (m.shape[-2] + 1) // 2, (m.shape[-1] + 1) // 2
    nw, ne, sw, se = _black_couplings(dse, dsw)
    axis_x = torch.stack((x2[..., 0::2, 0::2][..., :-1], _pad_to(x2[..., 1::2, 1::2][..., :-1], he, we - 1)), 2)
    axis_y = torch.stack((y2[..., 0::2, 0::2][..., :-1, :], _pad_to(y2[..., 1::2, 1::2][..., :-1, :], he - 1, we)), 2)
    mass_o = F.pad(mass[..., 1::2, 1::2], (0, 1, 0, 1), value=1.0)
    mass_black = torch.stack((mass[..., 0::2, 0::2], mass_o), 2)
    diag = mass_black.clone()
    diag[..., :, :-1] += axis_x
    diag[..., :, 1:] += axis_x
    diag[..., :-1, :] += axis_y
    diag[..., 1:, :] += axis_y
    for d in (diag[:, :, 0], diag[:, :, 1]):  # E–O couplings count on both sides
        d += nw
    diag[:, :, 1, :, :-1] += ne
    diag[:, :, 0, :, 1:] += ne
    diag[:, :, 1, :-1, :] += sw
    diag[:, :, 0, 1:, :] += sw
    diag[:, :, 1, :-1, :-1] += se
    diag[:, :, 0, 1:, 1:] += se

    # Drop the O–O couplings, each onto the two O–E–O paths beside it: the paths' couplings
    # grow by the same factor 1 + γ·w / (s1 + s2), s the paths' series conductances.
    a1, b1, a2, b2 = _shift(dsw, -1, 1), _shift(dse, -1, 1), dse, _shift(dsw, 0, 2)  # x2 at O (i, j)
    t = _GAMMA * x2 * odd / (_series(a1, b1) + _series(a2, b2)).clamp_min(torch.finfo(m.dtype).tiny)
    add_sw = _shift(t * a1, 1, -1) + _shift(t * b2, 0, -2)
    add_se = _shift(t * b1, 1, -1) + t * a2
    a1, b1, a2, b2 = dsw, _shift(dse, 1, -1), dse, _shift(dsw, 1, 1)  # y2 at O (i, j)
    t = _GAMMA * y2 * odd / (_series(a1, b1) + _series(a2, b2)).clamp_min(torch.finfo(m.dtype).tiny)
    dse = dse + add_se + _shift(t * b1, -1, 1) + t * a2
    dsw = dsw + add_sw + t * a1 + _shift(t * b2, -1, -1)
    p_nw, p_ne, p_sw, p_se = _black_couplings(dse, dsw)
    diag_o = mass_o + p_nw
    diag_o[..., :, :-1] += p_ne
    diag_o[..., :-1, :] += p_sw
    diag_o[..., :-1, :-1] += p_se
    black = _BlackLevel(
        mass=mass_black, diag=diag, inv_diag=1.0 / diag, axis_x=axis_x, axis_y=axis_y, nw=nw, ne=ne, sw=sw, se=se,
        q_nw=p_nw / diag_o, q_ne=p_ne / diag_o[..., :, :-1], q_sw=p_sw / diag_o[..., :-1, :],
        q_se=p_se / diag_o[..., :-1, :-1],
    )

    # Eliminate O: couplings of O (i, j) to its E neighbours, in full-size coordinates
    c_nw, c_ne, c_sw, c_se = _shift(dse, -1, -1), _shift(dsw, -1, 1), dsw, dse
    k_o = odd / (mass + c_nw + c_ne + c_sw + c_se)
    x2 = x2 * even + _shift(c_nw * c_ne * k_o, 1, 1) + _shift(c_sw * c_se * k_o, -1, 1)
    y2 = y2 * even + _shift(c_nw * c_sw * k_o, 1, 1) + _shift(c_ne * c_se * k_o, 1, -1)
    mk = mass * k_o
    mass = mass + _shift(c_nw * mk, 1, 1) + _shift(c_ne * mk, 1, -1) + _shift(c_sw * mk, -1, 1) + _shift(c_se * mk, -1, -1)
    diag_d, diag_a = c_nw * c_se * k_o, c_ne * c_sw * k_o  # E–E couplings across O (i, j)
    m_next = mass[..., 0::2, 0::2]
    wx_exact, wy_exact = x2[..., 0::2, 0::2][..., :-1], y2[..., 0::2, 0::2][..., :-1, :]
    dd, da = diag_d[..., 1::2, 1::2], diag_a[..., 1::2, 1::2]
    # Drop them onto the two E–E–E paths around the square; sides top, bottom, left, right
    top, bottom, left, right = _shift(x2, -1, -1), _shift(x2, 1, -1), _shift(y2, -1, -1), _shift(y2, -1, 1)
    tiny = torch.finfo(m.dtype).tiny
    t = _GAMMA * diag_d / (_series(top, right) + _series(left, bottom)).clamp_min(tiny)
    t = t + _GAMMA * diag_a / (_series(top, left) + _series(right, bottom)).clamp_min(tiny)
    x2 = x2 + _shift(t * top, 1, 1) + _shift(t * bottom, -1, 1)
    y2 = y2 + _shift(t * left, 1, 1) + _shift(t * right, 1, -1)
    return black, (m_next, x2[..., 0::2, 0::2][..., :-1], y2[..., 0::2, 0::2][..., :-1, :], wx_exact, wy_exact, dd, da)


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


def _build_hierarchy(wx: torch.Tensor, wy: torch.Tensor) -> _Hierarchy:
    """Multilevel hierarchy for diag(1) + L with couplings ``wx`` (Nw, 1, H, W − 1), ``wy``."""
    size = (wy.shape[-2] + 1, wx.shape[-1] + 1)
    m = torch.ones(wx.shape[0], 1, *size, device=wx.device, dtype=wx.dtype)
    grids: list[_GridLevel] = []
    blacks: list[_BlackLevel] = []
    while True:
        m, wx, wy = _pad_odd(m, wx, wy)
        h, w = m.shape[-2:]
        masks = _parity_masks(h, w, m)
        diag = m.clone()
        diag[..., :, :-1] += wx
        diag[..., :, 1:] += wx
        diag[..., :-1, :] += wy
        diag[..., 1:, :] += wy
        k_red = masks[0] / diag
        grids.append(_GridLevel(size=size, wx=wx, wy=wy, k_red=k_red))
        black, (m, wx, wy, wx_exact, wy_exact, dd, da) = _coarsen(m, wx, wy, k_red, masks)
        blacks.append(black)
        size = (m.shape[-2], m.shape[-1])
        if size[0] * size[1] <= _COARSEST:
            mat = _nine_point_matrix(m, wx_exact, wy_exact, dd, da)
            if m.device.type == "mps":  # no float64 there
                mat = mat.to(m.dtype)
            return _Hierarchy(grids, blacks, torch.linalg.cholesky(mat), size)


def _black_apply(lv: _BlackLevel, x: torch.Tensor) -> torch.Tensor:
    """The black level's operator on stacked (N, C, 2, he, we) vectors."""
    y = lv.diag * x
    y[..., :, :-1].addcmul_(lv.axis_x, x[..., :, 1:], value=-1)
    y[..., :, 1:].addcmul_(lv.axis_x, x[..., :, :-1], value=-1)
    y[..., :-1, :].addcmul_(lv.axis_y, x[..., 1:, :], value=-1)
    y[..., 1:, :].addcmul_(lv.axis_y, x[..., :-1, :], value=-1)
    xe, xo, ye, yo = x[:, :, 0], x[:, :, 1], y[:, :, 0], y[:, :, 1]
    yo.addcmul_(lv.nw, xe, value=-1)
    yo[..., :, :-1].addcmul_(lv.ne, xe[..., :, 1:], value=-1)
    yo[..., :-1, :].addcmul_(lv.sw, xe[..., 1:, :], value=-1)
    yo[..., :-1, :-1].addcmul_(lv.se, xe[..., 1:, 1:], value=-1)
    ye.addcmul_(lv.nw, xo, value=-1)
    ye[..., :, 1:].addcmul_(lv.ne, xo[..., :, :-1], value=-1)
    ye[..., 1:, :].addcmul_(lv.sw, xo[..., :-1, :], value=-1)
    ye[..., 1:, 1:].addcmul_(lv.se, xo[..., :-1, :-1], value=-1)
    return y


def _black_apply_accurate(lv: _BlackLevel, x: torch.Tensor) -> torch.Tensor:
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
    xe, xo, ye, yo = x[:, :, 0], x[:, :, 1], y[:, :, 0], y[:, :, 1]
    f = lv.nw * (xo - xe)
    yo += f
    ye -= f
    f = lv.ne * (xo[..., :, :-1] - xe[..., :, 1:])
    yo[..., :, :-1] += f
    ye[..., :, 1:] -= f
    f = lv.sw * (xo[..., :-1, :] - xe[..., 1:, :])
    yo[..., :-1, :] += f
    ye[..., 1:, :] -= f
    f = lv.se * (xo[..., :-1, :-1] - xe[..., 1:, 1:])
    yo[..., :-1, :-1] += f
    ye[..., 1:, 1:] -= f
    return y


def _to_black(g: _GridLevel, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def _from_black(g: _GridLevel, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
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


def _vcycle_black(hier: _Hierarchy, level: int, b: torch.Tensor) -> torch.Tensor:
    """One V-cycle for black level ``level`` from a zero guess: (N, C, 2, he, we)."""
    lv = hier.blacks[level]
    x = (_OMEGA * lv.inv_diag) * b
    r = b - _black_apply(lv, x)
    # restrict to the next grid level: fold each O residual onto its E neighbours
    ro = r[:, :, 1]
    rc = r[:, :, 0].clone()
    rc.addcmul_(lv.q_nw, ro)
    rc[..., :, 1:].addcmul_(lv.q_ne, ro[..., :, :-1])
    rc[..., 1:, :].addcmul_(lv.q_sw, ro[..., :-1, :])
    rc[..., 1:, 1:].addcmul_(lv.q_se, ro[..., :-1, :-1])
    e = _vcycle_grid(hier, level + 1, rc)
    x[:, :, 0] += e
    xo = x[:, :, 1]
    xo.addcmul_(lv.q_nw, e)
    xo[..., :, :-1].addcmul_(lv.q_ne, e[..., :, 1:])
    xo[..., :-1, :].addcmul_(lv.q_sw, e[..., 1:, :])
    xo[..., :-1, :-1].addcmul_(lv.q_se, e[..., 1:, 1:])
    return x.addcmul_(lv.inv_diag, b - _black_apply(lv, x), value=_OMEGA)


def _vcycle_grid(hier: _Hierarchy, level: int, b: torch.Tensor) -> torch.Tensor:
    """Approximate solve on grid level ``level`` (the coarsest one exactly): (N, C, h, w)."""
    if level == len(hier.grids):
        nb = hier.coarse_chol.shape[0]
        rhs = b.reshape(nb, -1, b.shape[-2] * b.shape[-1]).transpose(1, 2)
        x = torch.cholesky_solve(rhs.to(hier.coarse_chol.dtype), hier.coarse_chol)
        return x.transpose(1, 2).reshape(b.shape).to(b.dtype)
    g = hier.grids[level]
    rhs, b = _to_black(g, b)
    return _from_black(g, _vcycle_black(hier, level, rhs), b)


def _dot5(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=(-3, -2, -1), keepdim=True)


def _solve_multigrid(
    b: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    tol: float,
    max_iters: int,
    check_interrupt: Callable[[], None] | None,
    progress: Callable[[int], None] | None,
) -> torch.Tensor:
    """CG on the red-black Schur complement, preconditioned by one V-cycle per iteration.

    The full system's residual equals the Schur complement's once the red nodes are
    recovered exactly, so the stopping rule is the same as for plain CG.
    """
    hier = _build_hierarchy(wx, wy)
    top, lv = hier.grids[0], hier.blacks[0]
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
        z = _vcycle_black(hier, 0, r)
        rz_new = _dot5(r, z)
        p = z + (rz_new / rz.clamp_min(tiny)) * p
        rz = rz_new
        q = _black_apply_accurate(lv, p)
        step = rz / _dot5(p, q).clamp_min(tiny)
        x.add_(step * p)
        r.sub_(step * q)
        if progress is not None:
            progress(1)
    return _from_black(top, x, b_pad)


def _solve_cg_jacobi(
    b: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    tol: float,
    max_iters: int,
    check_interrupt: Callable[[], None] | None,
    progress: Callable[[int], None] | None,
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
    tracker.finish()
    return x


def wls_filter(
    image: torch.Tensor,
    guide: torch.Tensor,
    *,
    lam: float = 0.8,
    alpha: float = 1.0,
    eps: float = 1e-4,
    tol: float = 1e-4,
    max_iters: int = 2000,
    check_interrupt: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
    solver: Solver = "multigrid",
) -> torch.Tensor:
    """Edge-preserving smoothing of ``image`` along the edges of ``guide`` (WLS filter).

    Solves (I + L_λ) u = image per channel by preconditioned conjugate gradients until
    every channel's residual is at most ``tol`` times its right-hand side's norm or
    ``max_iters`` is reached. Since I + L_λ ≥ I, the error ‖u − u*‖ is then at most
    ``tol``·‖image‖ per channel too.

    Args:
        image: (N, C, H, W) float map to smooth (any range).
        guide: (N or 1, 1 or 3, H, W) guide in 0..1 (RGB or luminance).
        lam: λ, smoothness; 0 returns ``image``.
        alpha: α, edge sensitivity.
        eps: ε of the weights.
        tol: relative residual at which the solve stops.
        max_iters: cap on conjugate-gradient iterations.
        check_interrupt: called every iteration; raise from it to stop.
        progress: called with 1 per iteration.
        solver: ``"multigrid"`` (default): CG on the red-black Schur complement with a
            multilevel V-cycle as preconditioner, a few dozen iterations at most even on
            guides with hard edges; ``"cg-jacobi"``: plain Jacobi-preconditioned CG,
            which needs hundreds to thousands (kept for reference).

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
    if lam == 0:
        return image.clone()
    wx, wy = wls_weights(guide.to(image.dtype), lam=lam, alpha=alpha, eps=eps)
    solve = _solve_multigrid if solver == "multigrid" else _solve_cg_jacobi
    return solve(image, wx, wy, tol, max_iters, check_interrupt, progress)


def wls_refine(
    ap: torch.Tensor,
    a: torch.Tensor,
    *,
    lam: float = 0.8,
    alpha: float = 1.0,
    eps: float = 1e-4,
    tol: float = 1e-4,
    max_iters: int = 2000,
    check_interrupt: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
    solver: Solver = "multigrid",
) -> torch.Tensor:
    """A'_refined = A + WLS(A' | A) − WLS(A | A), clamped to [0, 1].

    Keeps A's fine structure exactly and takes the edge-aware smoothed colours of A'.

    Args:
        ap: (N, 3, H, W) A' in 0..1.
        a: (N or 1, 3, H, W) A in 0..1, same size as ``ap``; also the guide.
        lam, alpha, eps, tol, max_iters, check_interrupt, progress, solver: as in
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
        ap - a, a, lam=lam, alpha=alpha, eps=eps, tol=tol, max_iters=max_iters,
        check_interrupt=check_interrupt, progress=progress, solver=solver,
    )
    return (a + detail).clamp(0.0, 1.0)
