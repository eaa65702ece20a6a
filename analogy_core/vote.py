"""Warping and patch voting through a field, for features and for pixels."""

from __future__ import annotations

import torch

from ._check import check_shape
from .image import sample_bilinear


def patch_vote(source: torch.Tensor, nnf: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Rebuild a map on the field's source grid from patches of ``source``.

    Output pixel p is the mean over x ∈ N(p) of ``source(φ(x) + p − x)``: every patch the
    field places over p votes with the value it carries there. Votes that fall outside
    either grid are skipped (partial patches at borders). An integer field picks whole
    pixels; a continuous (floating-point) field, such as the pixel refinement's, samples
    ``source`` bilinearly, and a vote counts as inside when it lies within half a pixel
    of the target grid.

    Args:
        source: (N, C, Ht, Wt) map on the target grid (e.g. B' pixels or features).
        nnf: (N, Hs, Ws, 2) int64 field from the output grid into ``source``'s grid, or a
            float field of continuous (x, y) coordinates.
        patch_size: odd patch width; 1 is a plain warp.

    Returns:
        (N, C, Hs, Ws) map on the field's source grid.

    Raises:
        ValueError: shapes or batch sizes disagree, or the patch size is even.

    Example:
        >>> from analogy_core.nnf import identity_nnf
        >>> img = torch.rand(1, 3, 8, 8)
        >>> torch.allclose(patch_vote(img, identity_nnf(1, 8, 8), 5), img)
        True
    """
    check_shape(source, "N C H W", "source")
    check_shape(nnf, "N H W 2", "nnf")
    if source.shape[0] != nnf.shape[0]:
        raise ValueError(f"source has batch {source.shape[0]} but nnf has batch {nnf.shape[0]}")
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd and >= 1, got {patch_size}")
    if nnf.is_floating_point():
        return _patch_vote_bilinear(source, nnf, patch_size // 2)
    n, c, ht, wt = source.shape
    hs, ws = nnf.shape[1:3]
    r = patch_size // 2
    # Pad the field with an invalid marker so that x = p − d outside the source grid is skipped.
    fx = torch.nn.functional.pad(nnf[..., 0], (r, r, r, r), value=-(10**9))
    fy = torch.nn.functional.pad(nnf[..., 1], (r, r, r, r), value=-(10**9))
    flat = source.reshape(n, c, ht * wt)
    out = torch.zeros(n, c, hs * ws, device=source.device, dtype=source.dtype)
    count = torch.zeros(n, 1, hs * ws, device=source.device, dtype=source.dtype)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            # neighbour x = p − d; its patch carries source(φ(x) + d) to p
            tx = fx[:, r - dy : r - dy + hs, r - dx : r - dx + ws] + dx
            ty = fy[:, r - dy : r - dy + hs, r - dx : r - dx + ws] + dy
            ok = (tx >= 0) & (tx < wt) & (ty >= 0) & (ty < ht)
            idx = (ty.clamp(0, ht - 1) * wt + tx.clamp(0, wt - 1)).reshape(n, 1, -1)
            okf = ok.reshape(n, 1, -1).to(source.dtype)
            out += torch.gather(flat, 2, idx.expand(n, c, -1)) * okf
            count += okf
    return (out / count.clamp_min(1.0)).reshape(n, c, hs, ws)


def _patch_vote_bilinear(source: torch.Tensor, field: torch.Tensor, r: int) -> torch.Tensor:
    n, c, ht, wt = source.shape
    hs, ws = field.shape[1:3]
    field = field.to(source.dtype)
    # NaN marks neighbours outside the source grid; they fail the inside test below
    padded = torch.nn.functional.pad(field.permute(0, 3, 1, 2), (r, r, r, r), value=float("nan"))
    out = torch.zeros(n, c, hs, ws, device=source.device, dtype=source.dtype)
    count = torch.zeros(n, 1, hs, ws, device=source.device, dtype=source.dtype)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            t = padded[:, :, r - dy : r - dy + hs, r - dx : r - dx + ws].permute(0, 2, 3, 1)
            t = t + torch.tensor((dx, dy), device=source.device, dtype=source.dtype)
            ok = (t[..., 0] >= -0.5) & (t[..., 0] <= wt - 0.5) & (t[..., 1] >= -0.5) & (t[..., 1] <= ht - 0.5)
            okf = ok.unsqueeze(1).to(source.dtype)
            out += sample_bilinear(source, torch.nan_to_num(t)) * okf
            count += okf
    return out / count.clamp_min(1.0)


def warp(source: torch.Tensor, nnf: torch.Tensor) -> torch.Tensor:
    """Pull ``source`` through the field: ``out(p) = source(φ(p))``.

    Args:
        source: (N, C, Ht, Wt) map on the target grid.
        nnf: (N, Hs, Ws, 2) int64 field (whole pixels) or continuous float field
            (bilinear samples).

    Returns:
        (N, C, Hs, Ws).
    """
    return patch_vote(source, nnf, 1)
