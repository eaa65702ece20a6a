"""Make docs/regions.png: the demo pair's analogy unguided beside the same run guided
face to face (Region Pairs) and limited to the head (a feathered limit mask).

Runs the core on the CPU at a small working size (max side 160 px); takes about a
minute. Usage: ``.venv/bin/python scripts/make_region_images.py``
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analogy_core import Regions, contact_sheet, guide_from_masks, load_vgg19, resolve_config, run_analogy  # noqa: E402
from analogy_core.io import load_image, save_image  # noqa: E402

OUT = REPO / "docs" / "regions.png"


def box(x0: float, y0: float, x1: float, y1: float) -> torch.Tensor:
    """A mask on a 100×100 canvas (resized to the image), white inside the box (percent)."""
    m = torch.zeros(1, 1, 100, 100)
    m[..., int(y0) : int(y1), int(x0) : int(x1)] = 1
    return m


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    a, bp = load_image(REPO / "demo" / "a.png"), load_image(REPO / "demo" / "bp.png")
    cfg = resolve_config("photo2style", min_side=64, max_side=160)
    vgg = load_vgg19()
    plain = run_analogy(vgg, a, bp, cfg, seed=0)
    regions = Regions(guide=guide_from_masks([box(33, 13, 75, 52)], [box(23, 20, 62, 62)]),
                      limit_a=box(15, 0, 85, 65), feather=8)
    guided = run_analogy(vgg, a, bp, cfg, seed=0, regions=regions)
    save_image(contact_sheet([a, bp, plain.ap, guided.ap], height=240), OUT)
    logging.info("wrote %s", OUT.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
