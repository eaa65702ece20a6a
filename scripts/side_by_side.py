"""Paste images side by side at a common height: side_by_side.py IMG... OUT."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file from anywhere: find analogy_core

from analogy_core.image import contact_sheet  # noqa: E402
from analogy_core.io import load_image, save_image  # noqa: E402


def main(paths: list[str], out: str, height: int = 300) -> None:
    """Write ``paths`` side by side to ``out``, each resized to ``height`` px, with 8 px white gaps."""
    save_image(contact_sheet([load_image(p) for p in paths], gap=8, height=height), out)


if __name__ == "__main__":
    main(sys.argv[1:-1], sys.argv[-1])
