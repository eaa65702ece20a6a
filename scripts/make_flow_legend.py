"""Draw docs/flow_colours.png: the legend of Visualise NNF's three modes, with our own code.

- middlebury and direction: a disc whose every pixel shows the colour of a flow that
  points from the centre to that pixel, as long as its distance from the centre (the
  circle is ``max_flow``; beyond it middlebury darkens);
- coordinates: the colour given to each matched point of the other image.

Usage: ``PYTHONPATH=. .venv/bin/python scripts/make_flow_legend.py [OUT]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from analogy_core import FlowField, flow_to_colour  # noqa: E402

SIDE, RADIUS, OUTER, LABEL_H, NOTE_H, GAP = 220, 80, 92, 40, 62, 12
BACKGROUND, TEXT = (255, 255, 255), (30, 30, 30)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans where the system has it, else Pillow's own font."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def to_image(rgb: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) float 0..1 → PIL RGB."""
    arr = (rgb[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    return Image.fromarray(arr)


def disc(mode: str) -> Image.Image:
    """Flow (x − c, y − c) at every pixel, coloured with ``max_flow`` = RADIUS."""
    ys, xs = torch.meshgrid(torch.arange(SIDE, dtype=torch.float32), torch.arange(SIDE, dtype=torch.float32),
                            indexing="ij")
    centre = (SIDE - 1) / 2
    flow = torch.stack((xs - centre, ys - centre), dim=-1).unsqueeze(0)
    rgb = flow_to_colour(FlowField(flow, (SIDE, SIDE)), mode=mode, max_flow=float(RADIUS))  # type: ignore[arg-type]
    outside = flow.norm(dim=-1) > OUTER  # white margin for the labels; the ring inside it is beyond max_flow
    rgb = torch.where(outside.unsqueeze(1), torch.ones_like(rgb), rgb)
    image = to_image(rgb)
    draw = ImageDraw.Draw(image)
    c = centre
    draw.ellipse((c - RADIUS, c - RADIUS, c + RADIUS, c + RADIUS), outline=(60, 60, 60))
    for label, (dx, dy) in (("\u2192", (1, 0)), ("\u2193", (0, 1)), ("\u2190", (-1, 0)), ("\u2191", (0, -1))):
        draw.text((c + dx * (OUTER + 10), c + dy * (OUTER + 10)), label, fill=TEXT, font=font(16), anchor="mm")
    return image


def coordinates() -> Image.Image:
    """Zero flow into an image of the same size: the colour of each target point."""
    flow = torch.zeros(1, SIDE, SIDE, 2)
    return to_image(flow_to_colour(FlowField(flow, (SIDE, SIDE)), mode="coordinates"))


def main(out: Path) -> None:
    panels = [
        ("middlebury", disc("middlebury"), "flow direction and length;\ncircle = max_flow,\nlonger flows darker"),
        ("direction", disc("direction"), "flow direction and length;\ncircle = max_flow"),
        ("coordinates", coordinates(), "where the match lies in the\nother image: x \u2192 more red,\ny \u2193 more green"),
    ]
    sheet = Image.new("RGB", (len(panels) * (SIDE + GAP) - GAP, SIDE + LABEL_H + NOTE_H), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, (title, image, note) in enumerate(panels):
        x = i * (SIDE + GAP)
        draw.text((x + SIDE // 2, LABEL_H // 2), f"mode: {title}", fill=TEXT, font=font(17), anchor="mm")
        sheet.paste(image, (x, LABEL_H))
        draw.multiline_text((x + SIDE // 2, LABEL_H + SIDE + 4), note, fill=TEXT, font=font(13), anchor="ma",
                            align="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "flow_colours.png")
