"""Draw docs/icon.png, the pack's registry icon (256x256), with our own code.

The optical-flow colour wheel of Visualise NNF (mode middlebury) on a dark rounded
square, with "A′" over it: the image the analogy builds, and the fields it comes from.

Usage: ``PYTHONPATH=. .venv/bin/python scripts/make_icon.py [OUT]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from analogy_core import FlowField, flow_to_colour  # noqa: E402

SIZE, RADIUS, SCALE = 256, 104, 4  # drawn at SCALE x, then reduced: smooth edges


def main(out: Path) -> None:
    big, radius = SIZE * SCALE, RADIUS * SCALE
    ys, xs = torch.meshgrid(torch.arange(big, dtype=torch.float32), torch.arange(big, dtype=torch.float32),
                            indexing="ij")
    centre = (big - 1) / 2
    flow = torch.stack((xs - centre, ys - centre), dim=-1).unsqueeze(0)
    rgb = flow_to_colour(FlowField(flow, (big, big)), mode="middlebury", max_flow=float(radius))
    wheel = Image.fromarray((rgb[0].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy())

    icon = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=40 * SCALE, fill=(30, 30, 38, 255))
    disc = Image.new("L", (big, big), 0)
    ImageDraw.Draw(disc).ellipse((centre - radius, centre - radius, centre + radius, centre + radius), fill=255)
    icon.paste(wheel, (0, 0), disc)
    try:
        face = ImageFont.truetype("DejaVuSans-Bold.ttf", 118 * SCALE)
    except OSError:
        face = ImageFont.load_default(size=118 * SCALE)
    draw.text((centre, centre + 6 * SCALE), "A\u2032", font=face, anchor="mm", fill=(255, 255, 255, 255),
              stroke_width=7 * SCALE, stroke_fill=(30, 30, 38, 255))
    out.parent.mkdir(parents=True, exist_ok=True)
    icon.resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "icon.png")
