"""Re-create demo/a.png and demo/bp.png from scikit-image's CC0 photo "chelsea".

A is the photo. B' is our own painterly rendering of the mirrored photo: a mode filter
(flat brush areas), a gradient map to a warm palette, and dark outlines. Run it with
the scikit-image wheel unpacked somewhere:

    pip download --no-deps scikit-image==0.26.0 -d /tmp/sk && unzip -q /tmp/sk/*.whl -d /tmp/sk
    python scripts/make_demo_images.py /tmp/sk/skimage/data/chelsea.png demo
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

PALETTE = np.array([[20, 24, 82], [40, 90, 160], [200, 90, 40], [245, 190, 70], [255, 245, 215]], dtype=np.float32)


def paint(photo: Image.Image) -> Image.Image:
    """A flat, poster-like painting of ``photo`` in a blue-to-cream palette."""
    flat = ImageOps.mirror(photo).filter(ImageFilter.ModeFilter(9)).filter(ImageFilter.SMOOTH_MORE)
    lum = np.asarray(flat.convert("L"), dtype=np.float32) / 255.0
    lum = np.clip((lum - lum.min()) / (np.ptp(lum) + 1e-6), 0, 1) * (len(PALETTE) - 1)
    lo = np.floor(lum).astype(int).clip(0, len(PALETTE) - 2)
    t = (lum - lo)[..., None]
    rgb = PALETTE[lo] * (1 - t) + PALETTE[lo + 1] * t
    edges = np.asarray(flat.convert("L").filter(ImageFilter.FIND_EDGES), dtype=np.float32)[..., None] / 255.0
    rgb = rgb * (1 - np.clip(edges * 3, 0, 0.8))
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8))


def main(src: str, out: str) -> None:
    photo = Image.open(src).convert("RGB")
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    photo.save(outdir / "a.png")
    paint(photo).save(outdir / "bp.png")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
