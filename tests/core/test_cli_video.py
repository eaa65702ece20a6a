"""The command line on a folder of frames: names, report, resume, atomic frames, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import analogy_core.cli_video as cli_video
from analogy_core.cli import main
from analogy_core.io import load_image, save_image
from bench.quality.appearance import hue_rotate
from bench.video import make_clip

CHELSEA = Path(__file__).resolve().parents[1] / "data" / "chelsea.png"
FAST = ["--preset", "photo2style", "--min-side", "32", "--max-side", "96", "--pm-iters", "2", "--lbfgs-iters", "3",
        "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    clip = make_clip(load_image(CHELSEA), hue_rotate, frames=3, height=48, width=64)
    (d / "frames").mkdir()
    for t in (2, 0, 1):  # frames go in name order, not in the order the files were made
        save_image(clip.frames[t], d / "frames" / f"shot_{t:02d}.png")
    save_image(clip.bp[0], d / "bp.png")
    return d / "frames", d / "bp.png"


def test_clip_writes_numbered_frames_and_a_report(clip_dir, tmp_path):
    frames, bp = clip_dir
    out = tmp_path / "out"
    assert main([str(frames), str(bp), "--out", str(out), *FAST, "--temporal-weight", "0.5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_prime_0001.png", "a_prime_0002.png", "a_prime_0003.png",
                                                     "report.json"]
    assert Image.open(out / "a_prime_0002.png").size == (64, 48)
    report = json.loads((out / "report.json").read_text())
    assert [f["warm"] for f in report["frames"]] == [False, True, True]
    assert report["frames"][0]["source"].endswith("shot_00.png") and report["temporal"]["weight"] == 0.5
    # a glob works too, and existing frames are not overwritten silently
    assert main([str(frames / "shot_0[01].png"), str(bp), "--out", str(out), *FAST]) == 1


def test_resume_skips_finished_frames(clip_dir, tmp_path):
    frames, bp = clip_dir
    out = tmp_path / "out"
    assert main([str(frames), str(bp), "--out", str(out), *FAST, "--temporal", "off"]) == 0
    (out / "a_prime_0003.png").unlink()
    stamp = (out / "a_prime_0001.png").stat().st_mtime_ns
    assert main([str(frames), str(bp), "--out", str(out), *FAST, "--resume"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["skipped"] == ["a_prime_0001.png", "a_prime_0002.png"]
    assert [f["frame"] for f in report["frames"]] == ["a_prime_0003.png"]
    assert (out / "a_prime_0001.png").stat().st_mtime_ns == stamp and (out / "a_prime_0003.png").is_file()
    assert report["frames"][0]["reliable_motion"] > 0.5  # temporal on: blended with the written frame 2


def test_interrupted_run_leaves_only_whole_frames(clip_dir, tmp_path, monkeypatch, capsys):
    frames, bp = clip_dir
    out = tmp_path / "out"
    real = cli_video.save_image
    calls = []

    def save_then_stop(image, path):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"\x89PNG half")  # a half-written file, then Ctrl-C
            raise KeyboardInterrupt
        real(image, path)

    monkeypatch.setattr(cli_video, "save_image", save_then_stop)
    assert main([str(frames), str(bp), "--out", str(out), *FAST, "--temporal", "off"]) == 130
    assert "--resume" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a_prime_0001.png"]
    load_image(out / "a_prime_0001.png")  # whole


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: None, "no frames"),
        (lambda d: (d / "notes.txt").write_text("x") and None, "no frames"),
        (lambda d: (save_image(load_image(CHELSEA)[0, :, :48, :64], d / "f1.png"),
                    save_image(load_image(CHELSEA)[0, :, :40, :64], d / "f2.png")), "frame 2 is 64x40 px"),
        (lambda d: (save_image(load_image(CHELSEA)[0, :, :48, :64], d / "f1.png"),
                    (d / "f2.png").write_text("not an image")), "not an image file"),
    ],
)
def test_bad_clips_give_one_line_errors(tmp_path, capsys, make, message):
    d = tmp_path / "frames"
    d.mkdir()
    make(d)
    assert main([str(d), str(CHELSEA), "--out", str(tmp_path / "out"), *FAST, "--temporal", "off"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
