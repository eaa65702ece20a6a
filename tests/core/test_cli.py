"""The command-line contract, run in-process and as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analogy_core.cli import main
from analogy_core.io import load_image

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--preset", "paper", "--min-side", "32", "--max-side", "96", "--pm-iters", "2", "--lbfgs-iters", "3", "--quiet"]


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    Image.open(ROOT / "demo" / "a.png").resize((90, 60)).save(d / "a.png")
    Image.open(ROOT / "demo" / "bp.png").resize((72, 64)).save(d / "bp.png")
    return d / "a.png", d / "bp.png"


def test_cli_writes_the_contract_outputs(small_pair, tmp_path):
    a, bp = small_pair
    out = tmp_path / "out"
    assert main([str(a), str(bp), "--out", str(out), *FAST, "--device", "cpu"]) == 0
    assert Image.open(out / "a_prime.png").size == (90, 60)
    assert Image.open(out / "b.png").size == (72, 64)
    fab, fba = np.load(out / "flow_ab.npy"), np.load(out / "flow_ba.npy")
    assert fab.shape == (60, 90, 2) and fba.shape == (64, 72, 2) and fab.dtype == np.float32
    ys, xs = np.mgrid[0:60, 0:90]
    assert (xs + fab[..., 0]).min() >= 0 and (xs + fab[..., 0]).max() <= 71
    assert (ys + fab[..., 1]).min() >= 0 and (ys + fab[..., 1]).max() <= 63
    report = json.loads((out / "report.json").read_text())
    assert {"timings", "total_seconds", "peak_memory_bytes", "settings"} <= set(report)
    assert report["settings"]["pm_iters"] == 2 and report["settings"]["preset"] == "paper"
    assert report["peak_memory_bytes"] > 0 and "nnf relu1_1" in report["timings"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_cli_refuses_to_overwrite_without_flag(small_pair, tmp_path, capsys):
    a, bp = small_pair
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_prime.png").write_bytes(b"precious")
    assert main([str(a), str(bp), "--out", str(out), *FAST]) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert (out / "a_prime.png").read_bytes() == b"precious"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.png", "no such file"),
        (lambda d: (d / "notes.png").write_text("hello") and d / "notes.png", "not an image file"),
    ],
)
def test_cli_bad_inputs_give_one_line_errors(small_pair, tmp_path, capsys, make, message):
    bad = make(tmp_path)
    assert main([str(bad), str(small_pair[1]), "--out", str(tmp_path / "o"), *FAST]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_truncated_png_is_reported(tmp_path, small_pair):
    data = small_pair[0].read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match="truncated or corrupt"):
        load_image(tmp_path / "cut.png")


def test_image_modes_load_as_rgb(tmp_path):
    Image.new("L", (8, 6), 128).save(tmp_path / "g.png")
    Image.new("RGBA", (8, 6), (255, 0, 0, 0)).save(tmp_path / "t.png")
    Image.fromarray(np.full((6, 8), 65535, dtype=np.uint16)).save(tmp_path / "w.png")
    g, t, w = (load_image(tmp_path / n) for n in ("g.png", "t.png", "w.png"))
    assert g.shape == (1, 3, 6, 8) and abs(float(g.mean()) - 128 / 255) < 1e-6
    assert float(t.min()) == 1.0  # fully transparent composites over white
    assert float(w.min()) == 1.0


def test_cli_subprocess_no_traceback_on_error(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "analogy_core", "nope.png", "nope2.png", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert r.returncode == 1 and r.stderr.strip() == "error: nope.png: no such file"


def test_cli_invalid_setting_is_one_line(small_pair, tmp_path, capsys):
    a, bp = small_pair
    assert main([str(a), str(bp), "--out", str(tmp_path / "o"), *FAST, "--ratio", "1.5"]) == 1
    assert capsys.readouterr().err.strip() == "error: invalid settings: ratio must lie in (0, 1], got 1.5"
