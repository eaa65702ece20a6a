"""PatchMatch time alone and beside copies of itself: how the search shares a busy CPU.

PatchMatch scores candidates in many small chunks. When each chunk is a parallel torch
operation, every one ends in a barrier at which torch's threads wait for each other, and
on a CPU that another process also uses, a thread waits for one that is not running.
This benchmark runs the same search (relu1_1 features of the demo pair, the sizes and
settings of the release presets' last layer) once alone and then as several processes at
once, each with the same thread count, and prints the time of each and the slowdown
against the ideal (copies × threads sharing the cores).

    python -m bench.contention                     # 224 px, 2 copies, torch's thread count
    python -m bench.contention --size 448 --copies 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_one(size: int, threads: int, pm_iters: int) -> float:
    """Seconds of one relu1_1-sized PatchMatch (both directions) in this process."""
    import torch

    from analogy_core import load_vgg19, patchmatch
    from bench._pair import load_pair

    torch.set_num_threads(threads)
    images = load_pair(ROOT / "demo" / "a.png", ROOT / "demo" / "bp.png", size, size)
    vgg = load_vgg19()
    with torch.no_grad():
        fa, fb = (vgg.extract(x)["relu1_1"] for x in images)
    t0 = time.perf_counter()
    for src, tgt in (((fa, fa), (fb, fb)), ((fb, fb), (fa, fa))):
        patchmatch(src, tgt, patch_size=5, pm_iters=pm_iters, search_radius=4, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0


def _spawn(args: argparse.Namespace, copies: int) -> list[float]:
    cmd = [sys.executable, "-m", "bench.contention", "--child", "--size", str(args.size),
           "--threads", str(args.threads), "--pm-iters", str(args.pm_iters)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a benchmark process failed with exit code {p.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1])["seconds"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contention", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="side of the square images in px (default 224)")
    parser.add_argument("--copies", type=int, default=2, help="processes run at once (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process (default torch's own)")
    parser.add_argument("--pm-iters", type=int, default=4, help="PatchMatch iterations (default 4, as the presets)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is None:
        import torch

        args.threads = torch.get_num_threads()
    if args.child:
        print(json.dumps({"seconds": run_one(args.size, args.threads, args.pm_iters)}))
        return 0
    cores = os.cpu_count() or 1
    alone = _spawn(args, 1)[0]
    together = _spawn(args, args.copies)
    ideal = alone * max(1.0, args.copies * args.threads / cores)
    rows: list[dict[str, Any]] = [{"run": "alone", "seconds": alone, "ideal": alone}]
    rows += [{"run": f"{args.copies} at once, #{i + 1}", "seconds": s, "ideal": ideal} for i, s in enumerate(together)]
    print(f"PatchMatch relu1_1 at {args.size}×{args.size} px, both directions, {args.pm_iters} iterations, "
          f"{args.threads} torch thread(s) per process, {cores} cores\n")
    print("| run | seconds | ideal | slowdown against ideal |")
    print("|---|--:|--:|--:|")
    for row in rows:
        print(f"| {row['run']} | {row['seconds']:.1f} | {row['ideal']:.1f} | {row['seconds'] / row['ideal']:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
