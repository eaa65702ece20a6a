"""Dense correspondence fields as values: a flow between two images of known sizes,
its colour coding, and warping images or masks through it.

A ``FlowField`` is the exported form of an NNF (see ``nnf.nnf_to_flow``): relative
(dx, dy) in pixels at the images' own sizes, so pixel (x, y) of the source image
matches (x + dx, y + dy) of the target image (OpenCV's optical-flow convention, the
same as the CLI's ``flow_*.npy``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ._check import check_shape
from .image import pixel_grid, sample_bilinear

logger = logging.getLogger(__name__)

ColourMode = Literal["direction", "coordinates", "middlebury"]
WarpMode = Literal["bilinear", "nearest"]
Size = tuple[int, int]


@dataclass(frozen=True)
class FlowField:
    """A dense correspondence from a source image to a target image.

    Attributes:
        flow: (N, H_s, W_s, 2) float32 (dx, dy) in pixels of the target image: source
            pixel (x, y) matches target point (x + dx, y + dy).
        target_hw: (H_t, W_t) of the target image the flow points into.

    Raises:
        ValueError/TypeError: bad flow shape or dtype, or a non-positive target size.

    Example:
        >>> f = FlowField(torch.zeros(1, 4, 6, 2), (4, 6))
        >>> f.source_hw, f.batch
        ((4, 6), 1)
    """

    flow: torch.Tensor
    target_hw: Size

    def __post_init__(self) -> None:
        check_shape(self.flow, "N H W 2", "flow")
        if self.flow.dtype != torch.float32:
            raise TypeError(f"flow must be float32, got {self.flow.dtype}")
        if len(self.target_hw) != 2 or min(self.target_hw) < 1:
            raise ValueError(f"target_hw must be (H, W) with positive sides, got {self.target_hw}")
        object.__setattr__(self, "target_hw", (int(self.target_hw[0]), int(self.target_hw[1])))

    @property
    def source_hw(self) -> Size:
        """(H_s, W_s) of the source image."""
        return (int(self.flow.shape[1]), int(self.flow.shape[2]))

    @property
    def batch(self) -> int:
        """Number of fields in the batch."""
        return int(self.flow.shape[0])

    def targets(self) -> torch.Tensor:
        """Absolute target coordinates.

        Returns:
            (N, H_s, W_s, 2) float32 (x, y) in the target image's pixels.
        """
        return self.flow + pixel_grid(*self.source_hw, device=self.flow.device)

    def to(self, device: torch.device | str) -> FlowField:
        """The same field with its flow on ``device``."""
        return FlowField(self.flow.to(device), self.target_hw)


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(…) hue in [0, 1), saturation and value in [0, 1] → (…, 3) RGB in [0, 1]."""
    k = torch.stack([(5.0 + h * 6.0) % 6.0, (3.0 + h * 6.0) % 6.0, (1.0 + h * 6.0) % 6.0], dim=-1)
    weight = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return v.unsqueeze(-1) - v.unsqueeze(-1) * s.unsqueeze(-1) * weight


# The Middlebury colour wheel (Baker, Scharstein, Lewis, Roth, Black, Szeliski: "A Database
# and Evaluation Methodology for Optical Flow", IJCV 2011): 55 hues in six ramps, each
# ramp's length chosen so perceptually similar steps get similar room. Each entry:
# (steps, start RGB, end RGB); step i of n is start + (end - start) * floor(255 i / n) / 255.
_WHEEL_RAMPS: tuple[tuple[int, tuple[int, int, int], tuple[int, int, int]], ...] = (
    (15, (1, 0, 0), (1, 1, 0)),  # red → yellow
    (6, (1, 1, 0), (0, 1, 0)),  # yellow → green
    (4, (0, 1, 0), (0, 1, 1)),  # green → cyan
    (11, (0, 1, 1), (0, 0, 1)),  # cyan → blue
    (13, (0, 0, 1), (1, 0, 1)),  # blue → magenta
    (6, (1, 0, 1), (1, 0, 0)),  # magenta → red
)


def middlebury_wheel(device: torch.device | str = "cpu") -> torch.Tensor:
    """The 55 colours of the Middlebury optical-flow colour wheel.

    Returns:
        (55, 3) float32 RGB in [0, 1], in wheel order (red, yellow, green, cyan, blue,
        magenta, back towards red).

    Example:
        >>> wheel = middlebury_wheel()
        >>> wheel.shape, wheel[0].tolist()
        (torch.Size([55, 3]), [1.0, 0.0, 0.0])
    """
    rows = []
    for steps, start, end in _WHEEL_RAMPS:
        for i in range(steps):
            t = math.floor(255 * i / steps) / 255.0
            rows.append([a + (b - a) * t for a, b in zip(start, end)])
    return torch.tensor(rows, dtype=torch.float32, device=device)


def _middlebury(dx: torch.Tensor, dy: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """(…) flow and its length relative to the scale → (…, 3) RGB in [0, 1], Middlebury coding.

    The angle of the flow picks a place on the wheel (linear between its two nearest
    colours); the colour fades to white towards zero length; lengths beyond the scale
    (``radius`` > 1) keep the full colour at 75 % brightness.
    """
    wheel = middlebury_wheel(dx.device)
    n = wheel.shape[0]
    position = (torch.atan2(-dy, -dx) / math.pi + 1.0) / 2.0 * (n - 1)  # 0 … n − 1
    k0 = position.floor().long().clamp(0, n - 1)
    frac = (position - k0).unsqueeze(-1)
    colour = (1.0 - frac) * wheel[k0] + frac * wheel[(k0 + 1) % n]
    r = radius.unsqueeze(-1)
    return torch.where(r <= 1.0, 1.0 - r * (1.0 - colour), colour * 0.75)


def flow_to_colour(
    field: FlowField, *, mode: ColourMode = "direction", max_flow: float | None = None
) -> torch.Tensor:
    """Colour-code a field for display.

    ``"direction"``: hue is the direction of (dx, dy) (0° = +x red, 90° = +y, i.e.
    downwards, yellow-green, 180° = −x cyan, 270° = −y violet), saturation the length
    relative to ``max_flow``; zero flow is white. ``"middlebury"``: the standard
    optical-flow colour wheel of the Middlebury benchmark (Baker et al. 2011), as most
    optical-flow papers and tools (e.g. ``torchvision.utils.flow_to_image``) draw flow:
    the direction picks the colour (+x, right, red; +y, down, orange-yellow; down-left
    green; −x, left, cyan-blue; −y, up, violet; up-right magenta), the length relative
    to ``max_flow`` its strength, zero flow is white, and flows longer than
    ``max_flow`` keep the full colour at 75 % brightness. ``"coordinates"``: the colour of
    the matched target point, R = x / (W_t − 1), G = y / (H_t − 1), B = 1 − R, so a
    field that keeps pixels in place shows a smooth gradient and copied regions show as
    patches of one colour ramp.

    Args:
        field: the field to show.
        mode: ``"direction"``, ``"middlebury"`` or ``"coordinates"``.
        max_flow: length in pixels that gets the full colour (``"direction"`` and
            ``"middlebury"``); ``None`` uses each batch item's largest length.

    Returns:
        (N, 3, H_s, W_s) float32 RGB in [0, 1].

    Raises:
        ValueError: unknown mode or ``max_flow`` <= 0.

    Example:
        >>> f = FlowField(torch.tensor([[[[1.0, 0.0]]]]), (1, 2))
        >>> flow_to_colour(f, max_flow=1.0)[0, :, 0, 0].tolist()
        [1.0, 0.0, 0.0]
    """
    if mode in ("direction", "middlebury"):
        if max_flow is not None and max_flow <= 0:
            raise ValueError(f"max_flow must be > 0 or None (automatic), got {max_flow}")
        dx, dy = field.flow[..., 0], field.flow[..., 1]
        length = torch.sqrt(dx * dx + dy * dy)
        if max_flow is None:
            scale = length.flatten(1).amax(dim=1).clamp_min(1e-6).view(-1, 1, 1)
        else:
            scale = torch.full_like(length[:, :1, :1], float(max_flow))
        if mode == "middlebury":
            rgb = _middlebury(dx, dy, length / scale)
        else:
            hue = torch.remainder(torch.atan2(dy, dx) / (2 * math.pi), 1.0)
            sat = (length / scale).clamp(0.0, 1.0)
            rgb = _hsv_to_rgb(hue, sat, torch.ones_like(sat))
    elif mode == "coordinates":
        t = field.targets()
        ht, wt = field.target_hw
        r = (t[..., 0] / max(wt - 1, 1)).clamp(0.0, 1.0)
        g = (t[..., 1] / max(ht - 1, 1)).clamp(0.0, 1.0)
        rgb = torch.stack((r, g, 1.0 - r), dim=-1)
    else:
        raise ValueError(f"mode must be 'direction', 'middlebury' or 'coordinates', got {mode!r}")
    return rgb.permute(0, 3, 1, 2).contiguous()


def _pair_batches(source: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ns, nf = source.shape[0], flow.shape[0]
    if ns == nf:
        return source, flow
    if ns == 1:
        return source.expand(nf, -1, -1, -1), flow
    if nf == 1:
        return source, flow.expand(ns, -1, -1, -1)
    raise ValueError(f"image has batch {ns} but the field has batch {nf}; pass equal batches or 1 on a side")


def warp_by_field(
    source: torch.Tensor, field: FlowField, *, mode: WarpMode = "bilinear", resize: bool = False
) -> torch.Tensor:
    """Pull an image (or mask) of the target through the field: out(p) = source(p + flow(p)).

    Warping B' through the A→B' field gives an image on A's grid (a rough A'), and so on.

    Args:
        source: (N or 1, C, H_t, W_t) float map at the field's target size.
        field: the field, batch N or 1 (a batch of 1 on either side broadcasts).
        mode: ``"bilinear"`` samples between pixels; ``"nearest"`` picks the nearest one.
        resize: if ``source`` is not at the field's target size, resize it there
            (bilinear) and log a notice instead of raising.

    Returns:
        (N, C, H_s, W_s) warped map on the field's source grid, in ``source``'s dtype.

    Raises:
        ValueError: size mismatch (and ``resize`` is False), batch mismatch, or an
            unknown mode.

    Example:
        >>> img = torch.arange(6.0).view(1, 1, 2, 3)
        >>> shift = FlowField(torch.tensor([1.0, 0.0]).expand(1, 2, 3, 2).contiguous(), (2, 3))
        >>> warp_by_field(img, shift, mode="nearest")[0, 0].tolist()
        [[1.0, 2.0, 2.0], [4.0, 5.0, 5.0]]
    """
    check_shape(source, "N C H W", "image")
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    if not source.is_floating_point():
        raise TypeError(f"image must be a float tensor, got {source.dtype}")
    ht, wt = field.target_hw
    if tuple(source.shape[-2:]) != (ht, wt):
        if not resize:
            raise ValueError(
                f"image is {source.shape[-1]}x{source.shape[-2]} px but the field points into a "
                f"{wt}x{ht} px image; warp an image of the field's target size"
            )
        logger.info(
            "warp: image is %dx%d px, the field's target is %dx%d px; resizing the image to the target size",
            source.shape[-1], source.shape[-2], wt, ht,
        )
        source = F.interpolate(source, size=(ht, wt), mode="bilinear", align_corners=False, antialias=True)
    flow = field.flow.to(source.device)
    t = FlowField(flow, field.target_hw).targets()
    source, t = _pair_batches(source, t)
    n, c = source.shape[:2]
    if mode == "nearest":
        x = torch.round(t[..., 0]).long().clamp(0, wt - 1)
        y = torch.round(t[..., 1]).long().clamp(0, ht - 1)
        idx = (y * wt + x).reshape(n, 1, -1).expand(n, c, -1)
        out = torch.gather(source.reshape(n, c, ht * wt), 2, idx)
        return out.reshape(n, c, *t.shape[1:3])
    return sample_bilinear(source, t)
