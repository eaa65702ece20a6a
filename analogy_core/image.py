"""Small image helpers shared by the core, the benchmarks and the scripts.

Pixel grids and bilinear sampling at pixel coordinates (pixel centres at integers, (x, y)
order, as fields use them), luminance, contact sheets of images side by side, and clips
made from a still by a slow pan and zoom (known motion: the video benchmark's clips and
the demo clip of the ComfyUI template).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    # 2·x / (W − 1) − 1 and 2·y / (H − 1) − 1, in place of a stack of the two
    span = torch.tensor((max(w - 1, 1), max(h - 1, 1)), device=points.device, dtype=points.dtype)
    grid = (2.0 * points).div_(span).sub_(1.0).to(work)
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


PAN_ZOOM_MARGIN = 1.4
"""How much larger than a frame the still is made for ``pan_zoom``: room to pan and zoom."""


@dataclass(frozen=True)
class PanZoomClip:
    """The frames of a camera move over a still, with their known motion.

    Attributes:
        frames: (N, C, H, W) the frames, in the still's dtype.
        backward: (N, H, W, 2) float32; for t ≥ 1 the (x, y) position in frame t − 1 of
            every pixel of frame t (it may lie outside frame t − 1); entry 0 is the
            identity grid.
    """

    frames: torch.Tensor
    backward: torch.Tensor


def pan_zoom_source(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A still resized for ``pan_zoom``: its height 1.4 × the frame height, or, for a
    still narrower than that leaves room to pan in, its width 1.4 × the frame width.

    At that size the first frame shows one still pixel per frame pixel.

    Args:
        image: (1, C, H, W) float still.
        height: frame height H' in px.
        width: frame width W' in px.

    Returns:
        (1, C, H'', W'') the still resized (bilinear, antialiased), in its dtype.

    Raises:
        ValueError: bad shape or frame size.

    Example:
        >>> pan_zoom_source(torch.zeros(1, 3, 100, 200), 50, 60).shape
        torch.Size([1, 3, 70, 140])
    """
    check_shape(image, "1 C H W", "image")
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be at least 1x1 px, got {width}x{height}")
    h, w = image.shape[-2:]
    ph = round(PAN_ZOOM_MARGIN * height)
    pw = round(w * ph / h)
    if pw < 1.2 * width:
        pw = round(PAN_ZOOM_MARGIN * width)
        ph = round(h * pw / w)
    return F.interpolate(image, size=(ph, pw), mode="bilinear", antialias=True, align_corners=False)


def pan_zoom(
    image: torch.Tensor,
    *,
    frames: int,
    height: int,
    width: int,
    pan: float = 0.25,
    zoom: float = 0.85,
    resize: bool = True,
) -> PanZoomClip:
    """A slow pan and zoom over a still: a clip whose motion is known exactly.

    The still is first brought to ``pan_zoom_source``'s size (unless ``resize`` is
    False: a still prepared with ``pan_zoom_source``, then blurred or painted, is used
    as it is, so two such stills give frames with the same motion). Frame t (f = t / (N − 1))
    shows a window of scale s_t = 1 + (``zoom`` − 1)·f (1 still px per frame px at the
    start, < 1 zooms in) centred on the still's middle row; its centre moves right by
    ``pan`` of the horizontal room the window leaves. Each frame pixel averages 4
    bilinear samples at ±¼ px (less aliasing, so warping a frame by the true motion
    nearly gives the next). Deterministic: the same arguments give the same frames.

    Args:
        image: (1, C, H, W) float still, e.g. RGB in 0..1.
        frames: number of frames N (at least 2).
        height: frame height in px.
        width: frame width in px.
        pan: horizontal travel of the window centre over the clip, 0..1 of the room.
        zoom: scale of the last window relative to the first, in (0, 1].
        resize: bring the still to ``pan_zoom_source``'s size first.

    Returns:
        The ``PanZoomClip``: (N, C, height, width) frames in the still's dtype and
        their backward motion.

    Raises:
        ValueError: bad shape, fewer than 2 frames, or ``pan``/``zoom`` out of range.

    Example:
        >>> clip = pan_zoom(torch.rand(1, 3, 40, 60), frames=3, height=16, width=20)
        >>> tuple(clip.frames.shape), tuple(clip.backward.shape)
        ((3, 3, 16, 20), (3, 16, 20, 2))
    """
    check_shape(image, "1 C H W", "image")
    if frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {frames}")
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be at least 1x1 px, got {width}x{height}")
    if not 0.0 <= pan <= 1.0:
        raise ValueError(f"pan must lie in [0, 1], got {pan}")
    if not 0.0 < zoom <= 1.0:
        raise ValueError(f"zoom must lie in (0, 1], got {zoom}")
    still = pan_zoom_source(image, height, width) if resize else image
    ph, pw = still.shape[-2:]
    dev = image.device
    centre = torch.tensor(((width - 1) / 2, (height - 1) / 2), dtype=torch.float64, device=dev)
    grid = pixel_grid(height, width, dtype=torch.float64, device=dev)
    fine = (pixel_grid(2 * height, 2 * width, dtype=torch.float64, device=dev) - 0.5) / 2
    views: list[tuple[float, torch.Tensor]] = []
    for t in range(frames):
        f = t / (frames - 1)
        s = 1.0 + (zoom - 1.0) * f
        x0, x1 = s * width / 2 + 1, pw - s * width / 2 - 2
        cx = x0 + (x1 - x0) * (0.5 - pan / 2 + pan * f) if x1 > x0 else pw / 2
        views.append((s, torch.tensor((cx, (ph - 1) / 2), dtype=torch.float64, device=dev)))
    out: list[torch.Tensor] = []
    backward: list[torch.Tensor] = []
    for t, (s, c) in enumerate(views):
        out.append(F.avg_pool2d(sample_bilinear(still, (c + s * (fine - centre)).unsqueeze(0)), 2))
        if t == 0:
            backward.append(grid)
        else:
            s0, c0 = views[t - 1]
            backward.append((c + s * (grid - centre) - c0) / s0 + centre)
    return PanZoomClip(frames=torch.cat(out), backward=torch.stack(backward).float())
