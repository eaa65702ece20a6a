"""Per-stage time and peak memory of a full analogy at several sizes.

Each size runs in a fresh subprocess so that its peak memory is its own. In the same
subprocess, on the same device, one VGG19 forward pass to relu5_1 on one input is timed,
so results can be compared across machines as a ratio (total / VGG forward).

    python -m bench.speed                        # demo pair, 224 and 448, photo2style
    python -m bench.speed --sizes 224 448 1024 2048x1536 --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench.speed")


def _parse_size(text: str) -> tuple[int, int]:
    """``"448"`` → (448, 448); ``"2048x1536"`` → (2048, 1536) as (width, height)."""
    if "x" in text:
        w, h = text.lower().split("x")
        return int(w), int(h)
    return int(text), int(text)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """Run one size in this process and return its measurements."""
    import torch

    from analogy_core import load_vgg19, run_analogy
    from analogy_core.cli import config_from_args
    from analogy_core.io import peak_memory_bytes, resolve_device
    from bench._pair import load_pair

    w, h = _parse_size(args.one)
    device = resolve_device(args.device)
    # lift the size limits so the network sees exactly the requested size
    cfg = config_from_args(args, min_side=min(16, w, h), max_side=max(w, h), max_area=w * h)
    a, bp = (x.to(device) for x in load_pair(args.a, args.bp, h, w))
    vgg = load_vgg19(device=device)
    with torch.no_grad():
        vgg.extract(a)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        vgg.extract(a)
        _sync(device)
        vgg_forward = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def peak_now() -> int:
        return peak_memory_bytes(device) or 0

    # the running peak at each stage boundary shows which stage set it
    peaks: dict[str, int] = {}
    stage_now = ""

    def on_progress(done: int, total: int, stage: str) -> None:
        nonlocal stage_now
        if stage != stage_now:
            if stage_now:
                peaks[stage_now] = peak_now()
            stage_now = stage

    t0 = time.perf_counter()
    res = run_analogy(vgg, a, bp, cfg, seed=0, progress=on_progress, lean=args.state == "lean")
    _sync(device)
    total = time.perf_counter() - t0
    peak = peak_now()
    peaks[stage_now] = peak
    return {"size": f"{w}x{h}", "device": str(device), "timings": res.timings, "total": total,
            "peak_memory_bytes": int(peak), "peak_by_stage": peaks, "vgg_forward": vgg_forward,
            "settings": dataclasses.asdict(cfg), "threads": torch.get_num_threads(), "state": args.state}


_GROUPS = {"features": "features", "nnf": "nnf", "deconv": "deconv", "fusion": "fusion", "pixel": "refine",
           "wls": "refine", "vote": "vote"}
"""First word of a progress stage → its column: the pixel and WLS refinements share one."""


def _group(timings: dict[str, float]) -> dict[str, float]:
    out = dict.fromkeys(_GROUPS.values(), 0.0)
    for stage, t in timings.items():
        out[_GROUPS[stage.split()[0]]] += t
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the measurements: grouped stages, then per-layer detail."""
    head = ("| size | device | features s | NNF s | deconv s | fusion s | refine s | vote s | total s | peak memory | "
            "VGG fwd s | total / VGG fwd | refine / VGG fwd |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        g = _group(r["timings"])
        lines.append(
            f"| {r['size']} | {r['device']} | {g['features']:.2f} | {g['nnf']:.1f} | {g['deconv']:.1f} | "
            f"{g['fusion']:.2f} | {g['refine']:.2f} | {g['vote']:.2f} | {r['total']:.1f} | "
            f"{r['peak_memory_bytes'] / 2**30:.2f} GiB | {r['vgg_forward']:.3f} | {r['total'] / r['vgg_forward']:.0f} | "
            f"{g['refine'] / r['vgg_forward']:.2f} |"
        )
    layers = [k for k in rows[0]["timings"] if k.startswith(("nnf", "deconv"))] if rows else []
    if layers:
        lines += ["", "| size | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
        for r in rows:
            lines.append(f"| {r['size']} | " + " | ".join(f"{r['timings'].get(k, 0.0):.1f}" for k in layers) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from analogy_core.cli import add_config_arguments

    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", default=str(ROOT / "demo" / "a.png"), help="image A (default: demo/a.png)")
    p.add_argument("--bp", default=str(ROOT / "demo" / "bp.png"), help="image B' (default: demo/bp.png)")
    p.add_argument("--sizes", nargs="+", default=["224", "448"], help="sizes, N or WxH (default 224 448)")
    add_config_arguments(p, ("pm_iters", "lbfgs_iters"))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--state", choices=("lean", "full"), default="lean",
                   help="lean: free each map once no later step reads it, as the CLI and the one-node analogy "
                        "do (default); full: keep every layer's maps, as the step nodes do")
    p.add_argument("--json", default=None, help="also write all measurements to this file")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.one:
        print(json.dumps(run_one(args)))
        return 0
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, "-m", "bench.speed", "--one", size, "--a", args.a, "--bp", args.bp,
               "--preset", args.preset, "--device", args.device, "--state", args.state]
        for flag in ("pm_iters", "lbfgs_iters"):
            if getattr(args, flag) is not None:
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        logger.info("running %s ...", size)
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
            logger.error("size %s failed: %s", size, tail[0])
            rows.append({"size": size, "error": tail[0]})
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    ok = [r for r in rows if "error" not in r]
    print(f"preset {args.preset}; {args.state} state; pair {args.a} / {args.bp}")
    print(table(ok))
    for r in rows:
        if "error" in r:
            print(f"{r['size']}: FAILED — {r['error']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
