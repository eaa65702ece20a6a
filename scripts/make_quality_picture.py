"""Make docs/quality.png: one known-answer case of bench.quality, A' without and with the
pixel refinement beside the truth, and each A''s error against the truth (×4).

The case is built by the benchmark itself (scikit-image's CC0 photo of a coffee cup,
warped and recoloured); the analogy runs once on the CPU at 224 px (preset photo2style)
and the refinement is applied to the same deep fields, so the two A' differ by the
refinement alone. Takes about a minute. Usage:
``.venv/bin/python scripts/make_quality_picture.py [--case coffee/elastic+hue120]``
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analogy_core import contact_sheet, get_preset, load_vgg19, reconstruct, refine_pixels, run_analogy  # noqa: E402
from analogy_core.io import load_image, save_image  # noqa: E402
from bench._photos import SKIMAGE_PHOTOS, skimage_photos  # noqa: E402
from bench.quality.cases import build_cases  # noqa: E402

OUT = REPO / "docs" / "quality.png"


ERROR_GAIN = 4.0
"""The error maps show |A' − truth| times this (so 1/4 of the range is white)."""


def error_map(image: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """|image − truth| per channel, scaled by ``ERROR_GAIN`` and inverted (white = exact)."""
    return 1.0 - ((image - truth).abs() * ERROR_GAIN).clamp(0, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", default="coffee/elastic+hue120", help="bench.quality case name")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    photos = [(path.stem, load_image(path)) for path in skimage_photos(SKIMAGE_PHOTOS)]
    (case,) = build_cases(photos, 224, select=[args.case])
    cfg = dataclasses.replace(get_preset("photo2style"), pixel_refine=False, min_side=min(case.bp.shape[-2:]))
    result = run_analogy(load_vgg19(), case.a.float(), case.bp.float(), cfg, seed=0)
    plain = result.ap
    refined, _, _, _ = reconstruct(refine_pixels(result.state), vote_patch=cfg.vote_patch)
    truth = case.ap_true.float()
    sheet = contact_sheet([case.a.float(), case.bp.float(), plain, refined, truth, error_map(plain, truth),
                           error_map(refined, truth)], gap=4)
    save_image(sheet, Path(args.out))
    logging.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
