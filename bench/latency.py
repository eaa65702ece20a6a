"""Wall-clock cancel latency: how long a run takes to stop once it is asked to.

The tests count what the code controls (at most one work unit between two interrupt
checks, tests/core/test_progress.py and tests/nodes); the seconds that unit takes depend
on the machine and on what else runs there, so they are measured here, never asserted.

- ``check_interrupt``: ``run_analogy`` in this process; a timer sets a flag after
  ``--after`` seconds and ``check_interrupt`` raises once it is set, as in ComfyUI.
- ``Ctrl-C (CLI)``: ``python -m analogy_core`` in a subprocess, on the pair limited to
  ``--size`` px (aspect ratio kept); SIGINT ``--after`` seconds after its progress bar
  shows the first NNF search.

    python -m bench.latency                     # demo pair at 224 px, photo2style, 3 repeats
    python -m bench.latency --after 1 5 --repeats 5 --preset paper
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from analogy_core import load_vgg19, run_analogy
from analogy_core.cli import add_config_arguments, config_from_args
from analogy_core.io import resolve_device
from bench._pair import load_pair

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench.latency")


class _Cancelled(Exception):
    pass


def in_process(args: argparse.Namespace, after: float) -> float:
    """Seconds from setting the cancel flag to ``run_analogy`` raising."""
    device = resolve_device(args.device)
    cfg = config_from_args(args)
    a, bp = load_pair(args.a, args.bp, args.size, args.size)
    vgg = load_vgg19(device=device)
    flagged: list[float] = []

    def check() -> None:
        if flagged:
            raise _Cancelled

    timer = threading.Timer(after, lambda: flagged.append(time.perf_counter()))
    timer.start()
    try:
        run_analogy(vgg, a.to(device), bp.to(device), cfg, check_interrupt=check)
    except _Cancelled:
        return time.perf_counter() - flagged[0]
    finally:
        timer.cancel()
    raise RuntimeError(f"the run finished before the flag was set after {after} s; use a smaller --after")


def cli(args: argparse.Namespace, after: float) -> float:
    """Seconds from SIGINT to the CLI's exit (code 130)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "analogy_core", args.a, args.bp, "--out", out, "--preset", args.preset,
               "--device", args.device, "--max-side", str(args.size), "--min-side", "16"]
        for name in ("pm_iters", "lbfgs_iters"):
            if getattr(args, name) is not None:
                cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "DIA_PROGRESS": "1"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        assert proc.stderr is not None
        seen = b""
        while b"nnf relu5_1" not in seen:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the CLI ended early: {seen.decode(errors='replace')[-500:]}")
            seen += chunk
        time.sleep(after)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.communicate()
        stopped = time.perf_counter() - sent
        if proc.returncode != 130:
            raise RuntimeError(f"the CLI exited with {proc.returncode}, not 130; use a smaller --after")
        return stopped


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints a markdown table of latencies and returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", default=str(ROOT / "demo" / "a.png"), help="image A (default: demo/a.png)")
    p.add_argument("--bp", default=str(ROOT / "demo" / "bp.png"), help="image B' (default: demo/bp.png)")
    p.add_argument("--size", type=int, default=224, help="side of the square working size in px (default 224)")
    add_config_arguments(p, ("pm_iters", "lbfgs_iters"))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--after", type=float, nargs="+", default=[2.0, 6.0], help="seconds into the run (default 2 6)")
    p.add_argument("--repeats", type=int, default=3, help="runs per cell (default 3)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"preset {args.preset}, {args.size} px, device {args.device}, torch threads {torch.get_num_threads()}\n")
    print("| cancel via | after s | latency min s | median s | max s |\n|---|--:|--:|--:|--:|")
    for name, measure in (("check_interrupt", in_process), ("Ctrl-C (CLI)", cli)):
        for after in args.after:
            times = [measure(args, after) for _ in range(args.repeats)]
            print(f"| {name} | {after:g} | {min(times):.3f} | {statistics.median(times):.3f} | {max(times):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
