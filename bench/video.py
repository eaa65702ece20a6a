"""Known-answer clip benchmark: a slow pan and zoom over a photograph, painted after one frame.

The clip is made from a freely licensed photograph (scikit-image's CC0 ``chelsea`` by
default): frame t samples the photo through a known similarity transform (the view pans
and zooms in slowly), so the motion between any two frames is known exactly. B' is a
known appearance change of the first frame (as a user paints the first frame of a shot) (``bench.quality.appearance``) and the truth
A'_t is that change applied to frame t. For independent per-frame processing and for
temporal coherence (``analogy_core.video``) the report gives per-frame PSNR against the
truth, flicker (the mean absolute difference between A'_t and A'_{t−1} warped by the true
motion, over pixels visible in both), the time of cold and warm frames, and the peak
memory of a run of the whole clip and of one frame (each in a fresh subprocess).

    python -m bench.video                          # 16 frames of 96x128 px, photo2style
    python -m bench.video --frames 24 --height 128 --width 160 --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench.video")
Tensor = torch.Tensor


@dataclass(frozen=True)
class Clip:
    """A clip with known motion and known answers.

    Attributes:
        frames: (N, 3, H, W) A, RGB 0..1.
        truth: (N, 3, H, W) the true A' of every frame.
        bp: (1, 3, H, W) B' (the appearance change of frame ``key``).
        key: index of the frame B' was made from.
        backward: (N, H, W, 2) for t ≥ 1, the true (x, y) position in frame t − 1 of every
            pixel of frame t (entry 0 is the identity).
    """

    frames: Tensor
    truth: Tensor
    bp: Tensor
    key: int
    backward: Tensor


def make_clip(
    photo: Tensor,
    appearance: Any,
    *,
    frames: int = 16,
    height: int = 96,
    width: int = 128,
    pan: float = 0.25,
    zoom: float = 0.85,
    blur: float = 0.8,
) -> Clip:
    """A slow pan and zoom over ``photo`` with its known motion and painted truth.

    The camera move is the core's ``pan_zoom`` (the photo is resized so that its height
    is 1.4 × ``height``; the view pans right and zooms in slowly); the photo is blurred
    at that size first, and the truth is the same move over the painted photo.

    Args:
        photo: (1, 3, H, W) RGB 0..1.
        appearance: a pointwise change (N, 3, H, W) → (N, 3, H, W), e.g.
            ``bench.quality.appearance.hue_rotate``.
        frames: number of frames (at least 2).
        height, width: frame size in px.
        pan: horizontal travel of the view centre over the clip, as a fraction of the room.
        zoom: scale of the last frame's window relative to the first's (< 1 zooms in).
        blur: σ (photo px) of the Gaussian blur applied to the photo first.

    Returns:
        The ``Clip``.
    """
    from analogy_core import pan_zoom, pan_zoom_source

    from .quality.cases import gaussian_blur

    photo = pan_zoom_source(photo.double(), height, width)
    # a slight blur keeps the frames' detail below the Nyquist limit, so that warping by
    # the true motion (bilinear) nearly reproduces the next frame: the truth's own
    # flicker, the floor of the measure, stays small
    photo = gaussian_blur(photo, blur).clamp(0, 1)
    painted = appearance(photo.float()).double()
    move = dict(frames=frames, height=height, width=width, pan=pan, zoom=zoom, resize=False)
    clip = pan_zoom(photo, **move)
    truth = pan_zoom(painted, **move).frames
    key = 0
    frames_t = clip.frames.float().clamp(0, 1)
    bp = appearance(frames_t[key : key + 1]).clamp(0, 1)
    return Clip(frames=frames_t, truth=truth.float().clamp(0, 1), bp=bp, key=key, backward=clip.backward)


def visible(backward: Tensor) -> Tensor:
    """(H, W) bool: pixels whose true position in the previous frame lies inside it."""
    h, w = backward.shape[:2]
    x, y = backward[..., 0], backward[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def flicker(current: Tensor, previous: Tensor, backward: Tensor) -> float:
    """Mean |A'_t − warp(A'_{t−1})| (0..1 scale) over pixels visible in both frames.

    Args:
        current: (1, 3, H, W) A'_t.
        previous: (1, 3, H, W) A'_{t−1}.
        backward: (H, W, 2) true position in frame t − 1 of every pixel of frame t.
    """
    from analogy_core import sample_bilinear

    warped = sample_bilinear(previous.double(), backward.double().unsqueeze(0))
    diff = (current.double() - warped).abs().mean(1)[0]
    return float(diff[visible(backward)].mean())


def psnr(x: Tensor, y: Tensor) -> float:
    """PSNR in dB of images in 0..1 (peak 1)."""
    mse = float(((x.double() - y.double()) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _parser() -> argparse.ArgumentParser:
    from analogy_core.cli import add_config_arguments

    p = argparse.ArgumentParser(prog="python -m bench.video", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=16, help="clip length (default 16)")
    p.add_argument("--height", type=int, default=96, help="frame height in px (default 96)")
    p.add_argument("--width", type=int, default=128, help="frame width in px (default 128)")
    p.add_argument("--appearance", default="hue120", help="appearance change of B' and the truth (default hue120)")
    p.add_argument("--photo", type=Path, default=None, help="photo file (default scikit-image's chelsea)")
    p.add_argument("--photo-cache", type=Path, default=Path(".cache/bench"), help="where the sample photos are kept")
    p.add_argument("--weight", type=float, default=None, help="temporal weight (default TemporalConfig's)")
    p.add_argument("--blend", choices=("change", "output"), default=None,
                   help="temporal term on the change A' - A or on A' itself (default TemporalConfig's: change)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write all numbers here")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--memory-run", choices=("clip", "one"), help=argparse.SUPPRESS)
    add_config_arguments(p, ("pm_iters", "lbfgs_iters"))
    return p


def _setup(args: argparse.Namespace) -> tuple[Any, Clip, Any, Any]:
    from analogy_core import load_image, load_vgg19, resolve_device
    from analogy_core.cli import config_from_args
    from analogy_core.video import TemporalConfig

    from ._photos import skimage_photos
    from .quality.appearance import APPEARANCES

    path = args.photo or skimage_photos(("chelsea",), args.photo_cache)[0]
    clip = make_clip(load_image(path), APPEARANCES[args.appearance], frames=args.frames, height=args.height,
                     width=args.width)
    cfg = config_from_args(args, min_side=min(args.height, args.width), max_side=max(args.height, args.width))
    chosen = {"weight": args.weight, "compensate": None if args.blend is None else args.blend == "change"}
    temporal = TemporalConfig(**{k: v for k, v in chosen.items() if v is not None})
    vgg = load_vgg19(device=resolve_device(args.device))
    return vgg, clip, cfg, temporal


def _memory_run(args: argparse.Namespace) -> int:
    """In a fresh process: run the whole clip (or its first frame) and print the peak RSS."""
    from analogy_core import peak_memory_bytes
    from analogy_core.video import run_video

    vgg, clip, cfg, temporal = _setup(args)
    device = next(vgg.parameters()).device
    frames = clip.frames if args.memory_run == "clip" else clip.frames[:1]
    for _ in run_video(vgg, frames, clip.bp, cfg, temporal=temporal, seed=args.seed):
        pass
    print(json.dumps({"peak_memory_bytes": peak_memory_bytes(device)}))
    return 0


def _peak(args: argparse.Namespace, which: str, argv: list[str]) -> int | None:
    cmd = [sys.executable, "-m", "bench.video", *argv, "--memory-run", which]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        logger.warning("memory run %s failed: %s", which, proc.stderr.strip().splitlines()[-1:])
        return None
    value = json.loads(proc.stdout.strip().splitlines()[-1])["peak_memory_bytes"]
    return int(value) if value is not None else None


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the clip independently and with temporal coherence; all numbers."""
    from analogy_core.video import run_video

    vgg, clip, cfg, temporal = _setup(args)
    out: dict[str, Any] = {"frames": args.frames, "size": [args.width, args.height], "appearance": args.appearance,
                           "key_frame": clip.key, "temporal": dataclasses.asdict(temporal)}
    truth_flicker = [flicker(clip.truth[t : t + 1], clip.truth[t - 1 : t], clip.backward[t])
                     for t in range(1, args.frames)]
    out["truth_flicker"] = statistics.mean(truth_flicker)
    for mode, temp in (("independent", None), ("temporal", temporal)):
        outputs, seconds, warm, reliable = [], [], [], []
        t0 = time.perf_counter()
        for res in run_video(vgg, clip.frames, clip.bp, cfg, temporal=temp, seed=args.seed):
            seconds.append(time.perf_counter() - t0)
            outputs.append(res.ap.cpu())
            warm.append(res.warm)
            reliable.append(res.reliable)
            t0 = time.perf_counter()
        ps = [psnr(ap, clip.truth[t : t + 1]) for t, ap in enumerate(outputs)]
        fl = [flicker(outputs[t], outputs[t - 1], clip.backward[t]) for t in range(1, len(outputs))]
        cold = [s for s, w in zip(seconds, warm) if not w]
        hot = [s for s, w in zip(seconds, warm) if w]
        out[mode] = {
            "psnr": ps, "flicker": fl, "seconds": seconds, "warm": warm, "reliable": reliable,
            "mean_psnr": statistics.mean(ps), "mean_flicker": statistics.mean(fl),
            "cold_seconds": statistics.mean(cold) if cold else None,
            "warm_seconds": statistics.mean(hot) if hot else None,
        }
    if not args.no_memory:
        argv = list(args.argv)
        if "--json" in argv:
            i = argv.index("--json")
            del argv[i : i + 2]
        out["peak_memory_one_frame"] = _peak(args, "one", argv)
        out["peak_memory_clip"] = _peak(args, "clip", argv)
    return out


def markdown(r: dict[str, Any]) -> str:
    """The report as markdown tables."""
    ind, tmp = r["independent"], r["temporal"]
    lines = [
        f"Clip: {r['frames']} frames of {r['size'][0]}x{r['size'][1]} px, B' = {r['appearance']} of frame "
        f"{r['key_frame'] + 1}; truth's own flicker (resampling) {r['truth_flicker']:.4f}.",
        "",
        "| | mean PSNR (dB) | min PSNR (dB) | flicker | cold frame (s) | warm frame (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in (("independent", ind), ("temporal", tmp)):
        warm = f"{m['warm_seconds']:.2f}" if m["warm_seconds"] is not None else "–"
        lines.append(f"| {name} | {m['mean_psnr']:.2f} | {min(m['psnr']):.2f} | {m['mean_flicker']:.4f} | "
                     f"{m['cold_seconds']:.2f} | {warm} |")
    ratio = ind["mean_flicker"] / max(tmp["mean_flicker"], 1e-12)
    lines.append("")
    lines.append(f"Flicker {ratio:.2f}x lower with temporal coherence; PSNR {tmp['mean_psnr'] - ind['mean_psnr']:+.2f} dB; "
                 f"warm/cold frame time {tmp['warm_seconds'] / ind['cold_seconds']:.2f}." if tmp["warm_seconds"] else "")
    if r.get("peak_memory_clip") and r.get("peak_memory_one_frame"):
        lines.append(f"Peak memory: one frame {r['peak_memory_one_frame'] / 2**20:.0f} MiB, whole clip "
                     f"{r['peak_memory_clip'] / 2**20:.0f} MiB ({r['peak_memory_clip'] / r['peak_memory_one_frame']:.2f}x).")
    lines += ["", "| frame | PSNR indep. | PSNR temporal | flicker indep. | flicker temporal | reliable motion |",
              "|---:|---:|---:|---:|---:|---:|"]
    for t in range(r["frames"]):
        fi = f"{ind['flicker'][t - 1]:.4f}" if t else "–"
        ft = f"{tmp['flicker'][t - 1]:.4f}" if t else "–"
        rel = tmp["reliable"][t]
        lines.append(f"| {t + 1} | {ind['psnr'][t]:.2f} | {tmp['psnr'][t]:.2f} | {fi} | {ft} | "
                     f"{'–' if rel is None else f'{rel:.2f}'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.memory_run:
        return _memory_run(args)
    r = measure(args)
    print(markdown(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
