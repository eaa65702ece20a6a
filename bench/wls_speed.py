"""Speed of the WLS filter's solvers: multigrid-preconditioned CG against plain CG.

Both solve the same system, (I + L_λ) u = g, to the same rule (every channel's residual
at most ``tol``·‖g‖); the table gives, per size, each solver's iterations (deterministic)
and its best wall time over ``--repeats`` runs, and the largest difference between the
two results. The default problem filters a photograph along its own edges, WLS(A | A),
with the default λ 0.8, α 1, ε 1e-4.

    python -m bench.wls_speed                                 # 256², 512², 700×500, 1400×1000
    python -m bench.wls_speed --sizes 700x500 --guide blocks  # flat blocks: hard edges
    python -m bench.wls_speed --threads 2 --repeats 5

Timings on a shared CPU are noisy: one thread by default for comparability, the best of
``--repeats`` runs, and the load average printed beside them. The plain CG is slow (tens
of seconds at 1400×1000), so it runs ``--old-repeats`` times, once by default, with its
iteration cap raised to ``--old-max-iters`` so that it is not cut short.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from analogy_core import wls_filter
from analogy_core.io import load_image
from analogy_core.refine import Solver
from bench._photos import DEFAULT_CACHE, SKIMAGE_PHOTOS, PhotoError, skimage_photos

logger = logging.getLogger("bench.wls_speed")

DEFAULT_SIZES = ("256", "512", "700x500", "1400x1000")


def _parse_size(text: str) -> tuple[int, int]:
    """``"512"`` → (512, 512); ``"700x500"`` → (700, 500) as (width, height)."""
    if "x" in text:
        w, h = text.lower().split("x")
        return int(w), int(h)
    return int(text), int(text)


def blocks(h: int, w: int, seed: int = 0, n: int = 12) -> torch.Tensor:
    """(1, 3, h, w): flat grey with ``n`` flat-coloured rectangles placed relative to the
    size, so the picture is the same at every size; the flat areas couple at λ/ε = 8000,
    the block edges at about 1."""
    g = torch.Generator().manual_seed(seed)
    img = torch.full((1, 3, h, w), 0.5)
    for _ in range(n):
        y0, x0 = torch.rand(2, generator=g).tolist()
        dy, dx = (torch.rand(2, generator=g) * 0.35 + 0.15).tolist()
        colour = torch.rand(3, 1, 1, generator=g) * 0.9 + 0.05
        img[0, :, int(y0 * h) : int(min(y0 + dy, 1) * h), int(x0 * w) : int(min(x0 + dx, 1) * w)] = colour
    return img


def step(h: int, w: int) -> torch.Tensor:
    """(1, 3, h, w): two flat halves, 0.2 | 0.8, split one pixel right of the middle."""
    img = torch.full((1, 3, h, w), 0.2)
    img[..., w // 2 + 1 :] = 0.8
    return img


def _photo_guide(name: str, cache: Path) -> Callable[[int, int], torch.Tensor]:
    photo = load_image(skimage_photos((name,), cache)[0])

    def resized(h: int, w: int) -> torch.Tensor:
        return F.interpolate(photo, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)

    return resized


def _timed(image: torch.Tensor, solver: Solver, repeats: int, tol: float, max_iters: int) -> tuple[torch.Tensor, int, float]:
    """Best wall time of ``repeats`` solves of WLS(image | image), with the result and iterations."""
    best, out, iters = float("inf"), image, 0
    for _ in range(repeats):
        ticks: list[int] = []
        start = time.perf_counter()
        out = wls_filter(image, image, tol=tol, max_iters=max_iters, solver=solver, progress=ticks.append)
        best = min(best, time.perf_counter() - start)
        iters = len(ticks)
    return out, iters, best


def run(args: argparse.Namespace) -> str:
    """Run the comparison and return the report (markdown)."""
    torch.set_num_threads(args.threads)
    guide: Callable[[int, int], torch.Tensor]
    notes = []
    if args.guide == "photo":
        try:
            guide = _photo_guide(args.photo, args.photo_cache)
            what = f"scikit-image photo `{args.photo}`, resized"
        except PhotoError as e:
            logger.warning("%s; using the synthetic blocks guide instead", e)
            notes.append(f"photo `{args.photo}` unavailable, fell back to `blocks`")
            guide, what = blocks, "synthetic flat blocks"
    else:
        guide, what = (blocks, "synthetic flat blocks") if args.guide == "blocks" else (step, "a sharp step")
    lines = [
        f"WLS(A | A), A = {what}; λ 0.8, α 1, ε 1e-4, tol {args.tol:g}; torch {torch.__version__}, "
        f"{args.threads} thread(s), cpu; best of {args.repeats} (plain CG: {args.old_repeats}) runs; "
        f"load average before {os.getloadavg()[0]:.1f}",
        *notes,
        "",
        "| size | plain CG iterations | plain CG s | multigrid iterations | multigrid s | speed-up | max abs diff |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for text in args.sizes:
        w, h = _parse_size(text)
        image = guide(h, w)
        old, old_iters, old_s = _timed(image, "cg-jacobi", args.old_repeats, args.tol, args.old_max_iters)
        new, new_iters, new_s = _timed(image, "multigrid", args.repeats, args.tol, 2000)
        capped = " (cap)" if old_iters >= args.old_max_iters else ""
        diff = (old - new).abs().max().item()
        lines.append(
            f"| {w}×{h} | {old_iters}{capped} | {old_s:.2f} | {new_iters} | {new_s:.2f} | {old_s / new_s:.1f}× "
            f"| {diff:.1e} |"
        )
        logger.info("%s done", text)
    lines.append(f"\nload average after {os.getloadavg()[0]:.1f}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="WIDTHxHEIGHT or SIDE (default: %(default)s)")
    p.add_argument("--guide", choices=("photo", "blocks", "step"), default="photo",
                   help="photo: a scikit-image sample photo (fetched once, see bench._photos); blocks: flat "
                   "rectangles; step: two flat halves (default: %(default)s)")
    p.add_argument("--photo", choices=SKIMAGE_PHOTOS, default="coffee", help="which photo (default: %(default)s)")
    p.add_argument("--photo-cache", type=Path, default=DEFAULT_CACHE, help="photo cache folder (default: %(default)s)")
    p.add_argument("--tol", type=float, default=1e-4, help="relative residual to reach (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="multigrid runs per size, best kept (default: %(default)s)")
    p.add_argument("--old-repeats", type=int, default=1, help="plain CG runs per size (default: %(default)s)")
    p.add_argument("--old-max-iters", type=int, default=20000, help="plain CG iteration cap (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints the table and returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
