"""Paste images side by side at a common height: side_by_side.py IMG... OUT."""

from __future__ import annotations

import sys

from PIL import Image


def main(paths: list[str], out: str, height: int = 300) -> None:
    ims = [Image.open(p).convert("RGB") for p in paths]
    ims = [im.resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS) for im in ims]
    sheet = Image.new("RGB", (sum(im.width for im in ims) + 8 * (len(ims) - 1), height), "white")
    x = 0
    for im in ims:
        sheet.paste(im, (x, 0))
        x += im.width + 8
    sheet.save(out)


if __name__ == "__main__":
    main(sys.argv[1:-1], sys.argv[-1])
