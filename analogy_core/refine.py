"""Edge-aware refinement of A' with the weighted-least-squares (WLS) filter.

The WLS filter (Farbman, Fattal, Lischinski, Szeliski, "Edge-preserving decompositions
for multi-scale tone and detail manipulation", SIGGRAPH 2008) smooths an image ``g``
everywhere except across edges of a guide: it solves

    (I + L_λ) u = g,    L_λ u(p) = Σ_{q ∈ N4(p)} w_pq (u(p) − u(q)),
    w_pq = λ / (|ℓ(p) − ℓ(q)|^α + ε),

where ℓ is the guide's log-luminance and N4 the 4-neighbourhood. The matrix is the
identity plus a weighted graph Laplacian: symmetric positive definite, so it is solved
here matrix-free by conjugate gradients with a Jacobi preconditioner, in plain torch.

The follow-up refinement of Deep Image Analogy keeps A's fine detail and takes A''s
smoothed colours: A'_refined = A + WLS(A' | A) − WLS(A | A). Both filters share the
guide A, so by linearity this is A + WLS(A' − A | A): one solve.
"""

from __future__ import annotations

import torch

from ._check import check_finite, check_shape
from .image import luminance
from .progress import InterruptFn, ProgressFn, ProgressTracker

_LOG_EPS = 1e-4  # keeps log-luminance finite on black pixels


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


def wls_filter(
    image: torch.Tensor,
    guide: torch.Tensor,
    *,
    lam: float = 0.8,
    alpha: float = 1.0,
    eps: float = 1e-4,
    tol: float = 1e-4,
    max_iters: int = 2000,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Edge-preserving smoothing of ``image`` along the edges of ``guide`` (WLS filter).

    Solves (I + L_λ) u = image per channel by preconditioned conjugate gradients,
    starting from ``image``, until every channel's residual is at most ``tol`` times its
    right-hand side's norm or ``max_iters`` is reached.

    Args:
        image: (N, C, H, W) float map to smooth (any range).
        guide: (N or 1, 1 or 3, H, W) guide in 0..1 (RGB or luminance).
        lam: λ, smoothness; 0 returns ``image``.
        alpha: α, edge sensitivity.
        eps: ε of the weights.
        tol: relative residual at which the solve stops.
        max_iters: cap on conjugate-gradient iterations.
        check_interrupt: called before every iteration; raise from it to stop.
        progress: ``progress(done, total, stage)`` with ``total = max_iters``, one unit
            per iteration (the rest at once when the solve converges earlier), stage
            ``"wls"``.

    Returns:
        (N, C, H, W) filtered map, same dtype and device as ``image``.

    Raises:
        ValueError: shapes disagree, parameters out of range, or NaN in the inputs.

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
    check_finite(image, "image")
    check_finite(guide, "guide")
    if lam < 0 or alpha <= 0 or eps <= 0:
        raise ValueError(f"need lam >= 0, alpha > 0 and eps > 0, got lam={lam}, alpha={alpha}, eps={eps}")
    b = image
    tracker = ProgressTracker(progress, max_iters, "wls")
    if lam == 0:
        tracker.finish()
        return image.clone()
    wx, wy = wls_weights(guide.to(image.dtype), lam=lam, alpha=alpha, eps=eps)
    inv_diag = 1.0 / _diagonal(wx, wy, image.shape)
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


def wls_refine(
    ap: torch.Tensor,
    a: torch.Tensor,
    *,
    lam: float = 0.8,
    alpha: float = 1.0,
    eps: float = 1e-4,
    tol: float = 1e-4,
    max_iters: int = 2000,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """A'_refined = A + WLS(A' | A) − WLS(A | A), clamped to [0, 1].

    Keeps A's fine structure exactly and takes the edge-aware smoothed colours of A'.

    Args:
        ap: (N, 3, H, W) A' in 0..1.
        a: (N or 1, 3, H, W) A in 0..1, same size as ``ap``; also the guide.
        lam, alpha, eps, tol, max_iters, check_interrupt, progress: as in ``wls_filter``.

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
        check_interrupt=check_interrupt, progress=progress,
    )
    return (a + detail).clamp(0.0, 1.0)
