"""Small image helpers shared by the core, the benchmarks and the scripts.

Pixel grids and bilinear sampling at pixel coordinates (pixel centres at integers, (x, y)
order, as fields use them), luminance, and contact sheets of images side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._check import check_shape

LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G and B."""


def pixel_grid(
    height: int, width: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Coordinates of every pixel centre of an H×W grid.

    Args:
        height: rows H.
        width: columns W.
        dtype: dtype of the result (float or integer).
        device: device of the result.

    Returns:
        (H, W, 2) tensor, ``[y, x] = (x, y)``.

    Example:
        >>> pixel_grid(2, 3)[1, 2].tolist()
        [2.0, 1.0]
    """
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack((xs, ys), dim=-1)


def sample_bilinear(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``image`` at pixel coordinates; points outside take the border.

    The samples are computed in the wider dtype of ``image`` and ``points`` (float64
    points give float64 arithmetic) and returned in ``image``'s dtype.

    Args:
        image: (N, C, H, W) float map.
        points: (N, H', W', 2) (x, y) pixel coordinates into ``image``; a (H', W', 2)
            tensor is used for every batch item.

    Returns:
        (N, C, H', W') samples.

    Raises:
        ValueError: bad shapes or batch sizes.

    Example:
        >>> img = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
        >>> sample_bilinear(img, torch.tensor([[0.5, 0.5], [5.0, 0.0]]).view(1, 1, 2, 2)).tolist()
        [[[[1.5, 1.0]]]]
    """
    check_shape(image, "N C H W", "image")
    if points.dim() == 3:
        points = points.unsqueeze(0).expand(image.shape[0], -1, -1, -1)
    check_shape(points, "N H W 2", "points")
    if points.shape[0] != image.shape[0]:
        raise ValueError(f"image has batch {image.shape[0]} but points have batch {points.shape[0]}")
    h, w = image.shape[-2:]
    work = torch.promote_types(image.dtype, points.dtype)
    grid = torch.stack(
        (2.0 * points[..., 0] / max(w - 1, 1) - 1.0, 2.0 * points[..., 1] / max(h - 1, 1) - 1.0), dim=-1
    ).to(work)
    out = F.grid_sample(image.to(work), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(image.dtype)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of an RGB image.

    Args:
        image: (N, 3, H, W) RGB.

    Returns:
        (N, 1, H, W) 0.299 R + 0.587 G + 0.114 B, in ``image``'s dtype.

    Example:
        >>> luminance(torch.ones(1, 3, 1, 1)).item()
        1.0
    """
    check_shape(image, "N 3 H W", "image")
    weights = torch.tensor(LUMA_WEIGHTS, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)


def contact_sheet(images: Sequence[torch.Tensor], *, gap: int = 4, height: int | None = None) -> torch.Tensor:
    """Images side by side, left to right, with white gaps between them.

    Args:
        images: (3, H_i, W_i) or (1, 3, H_i, W_i) RGB images in 0..1.
        gap: width of the white gaps in px.
        height: common height; images of another height are resized to it (bilinear,
            antialiased, aspect ratio kept). ``None`` requires all heights to be equal.

    Returns:
        (3, H, ΣW_i + gap·(n − 1)) RGB on the CPU.

    Raises:
        ValueError: no images, or different heights and ``height`` is ``None``.

    Example:
        >>> contact_sheet([torch.zeros(3, 2, 2), torch.zeros(1, 3, 2, 3)], gap=1).shape
        torch.Size([3, 2, 6])
    """
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    parts: list[torch.Tensor] = []
    for i, im in enumerate(images):
        im = im.detach().cpu()
        im = im[0] if im.dim() == 4 else im
        check_shape(im, "3 H W", f"images[{i}]")
        if height is not None and im.shape[-2] != height:
            size = (height, max(1, round(im.shape[-1] * height / im.shape[-2])))
            im = F.interpolate(im[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
        parts.append(im)
    heights = {int(p.shape[-2]) for p in parts}
    if len(heights) != 1:
        raise ValueError(f"images have different heights {sorted(heights)}; pass height= to resize them")
    white = torch.ones(3, parts[0].shape[-2], gap, dtype=parts[0].dtype)
    row: list[torch.Tensor] = []
    for p in parts:
        row += [p, white]
    return torch.cat(row[:-1], dim=-1)
