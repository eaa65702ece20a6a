"""Nearest-neighbour fields: creation, resampling between grids, and flow export.

A field (NNF) maps every pixel of a source grid to a pixel of a target grid. Inside the
core it is an int64 tensor of shape (N, H_src, W_src, 2) holding absolute target
coordinates in (x, y) order. It becomes relative (dx, dy) flow only at export.
"""

from __future__ import annotations

import torch

from ._check import check_shape


def identity_nnf(n: int, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The field mapping every pixel to itself.

    Returns:
        (n, height, width, 2) int64, ``[..., 0] = x``, ``[..., 1] = y``.

    Example:
        >>> identity_nnf(1, 2, 3)[0, 1, 2].tolist()
        [2, 1]
    """
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
    )
    return torch.stack((xs, ys), dim=-1).unsqueeze(0).expand(n, -1, -1, -1).contiguous()


def clamp_nnf(nnf: torch.Tensor, target_hw: tuple[int, int]) -> torch.Tensor:
    """Clamp field coordinates into a target grid of size ``target_hw = (H, W)``."""
    x = nnf[..., 0].clamp(0, target_hw[1] - 1)
    y = nnf[..., 1].clamp(0, target_hw[0] - 1)
    return torch.stack((x, y), dim=-1)


def _resample_coords(
    nnf: torch.Tensor,
    src_hw: tuple[int, int],
    tgt_hw_old: tuple[int, int],
    tgt_hw_new: tuple[int, int],
) -> torch.Tensor:
    """Continuous target coordinates of ``nnf`` carried to new source/target grids.

    Every new source pixel takes the match of the nearest old source pixel, shifted by its
    sub-pixel offset from that pixel, then scaled to the new target grid (pixel centres
    aligned). For exact ×2 grids this is ``2·φ(p // 2) + p mod 2``.
    """
    check_shape(nnf, "N H W 2", "nnf")
    n, h_old, w_old, _ = nnf.shape
    dev = nnf.device
    h_new, w_new = src_hw
    sy, sx = h_old / h_new, w_old / w_new
    u_y = (torch.arange(h_new, device=dev, dtype=torch.float64) + 0.5) * sy - 0.5
    u_x = (torch.arange(w_new, device=dev, dtype=torch.float64) + 0.5) * sx - 0.5
    c_y = torch.round(u_y).clamp(0, h_old - 1).long()
    c_x = torch.round(u_x).clamp(0, w_old - 1).long()
    picked = nnf[:, c_y][:, :, c_x].double()  # (N, h_new, w_new, 2)
    off_x = (u_x - c_x.double()).view(1, 1, -1)
    off_y = (u_y - c_y.double()).view(1, -1, 1)
    ty, tx = tgt_hw_new[0] / tgt_hw_old[0], tgt_hw_new[1] / tgt_hw_old[1]
    x = (picked[..., 0] + off_x + 0.5) * tx - 0.5
    y = (picked[..., 1] + off_y + 0.5) * ty - 0.5
    return torch.stack((x, y), dim=-1)


def upsample_nnf(
    nnf: torch.Tensor,
    src_hw: tuple[int, int],
    tgt_hw_old: tuple[int, int],
    tgt_hw_new: tuple[int, int],
) -> torch.Tensor:
    """Carry a field to finer (or any) source and target grids.

    Args:
        nnf: (N, h, w, 2) int64 field from a source grid (h, w) into ``tgt_hw_old``.
        src_hw: (H, W) of the new source grid.
        tgt_hw_old: (H, W) of the target grid ``nnf`` points into.
        tgt_hw_new: (H, W) of the new target grid.

    Returns:
        (N, H, W, 2) int64 field into ``tgt_hw_new``, coordinates clamped inside it.

    Example:
        >>> f = identity_nnf(1, 2, 2)
        >>> torch.equal(upsample_nnf(f, (4, 4), (2, 2), (4, 4)), identity_nnf(1, 4, 4))
        True
    """
    coords = _resample_coords(nnf, src_hw, tgt_hw_old, tgt_hw_new)
    return clamp_nnf(torch.round(coords).long(), tgt_hw_new)


def nnf_to_flow(
    nnf: torch.Tensor,
    src_hw: tuple[int, int] | None = None,
    tgt_hw_old: tuple[int, int] | None = None,
    tgt_hw_new: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Relative flow of a field, optionally carried to other source/target sizes.

    Args:
        nnf: (N, h, w, 2) int64 field into a target grid ``tgt_hw_old``.
        src_hw: (H, W) of the output grid (default: the field's own grid).
        tgt_hw_old: target grid of ``nnf`` (needed when resizing).
        tgt_hw_new: target grid the flow should point into (default ``tgt_hw_old``).

    Returns:
        (N, H, W, 2) float32 flow: ``[..., 0] = dx``, ``[..., 1] = dy`` in pixels, so
        pixel (x, y) of the source matches (x + dx, y + dy) of the target (OpenCV's
        optical-flow convention). Target points lie inside the new target grid.
    """
    check_shape(nnf, "N H W 2", "nnf")
    n, h, w, _ = nnf.shape
    if src_hw is None or (tuple(src_hw) == (h, w) and tgt_hw_new in (None, tgt_hw_old)):
        coords = nnf.double()
        src_hw = (h, w)
    else:
        if tgt_hw_old is None:
            raise ValueError("nnf_to_flow needs tgt_hw_old to resample a field")
        new = tgt_hw_new if tgt_hw_new is not None else tgt_hw_old
        coords = _resample_coords(nnf, src_hw, tgt_hw_old, new)
        coords[..., 0] = coords[..., 0].clamp(0, new[1] - 1)
        coords[..., 1] = coords[..., 1].clamp(0, new[0] - 1)
    base = identity_nnf(n, src_hw[0], src_hw[1], nnf.device).double()
    return (coords - base).float()


def flow_to_nnf(flow: torch.Tensor, target_hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of ``nnf_to_flow`` on the same grid: rounds and clamps into ``target_hw``."""
    check_shape(flow, "N H W 2", "flow")
    n, h, w, _ = flow.shape
    base = identity_nnf(n, h, w, flow.device)
    return clamp_nnf(torch.round(flow).long() + base, target_hw)
