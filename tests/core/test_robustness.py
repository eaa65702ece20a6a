"""Bad inputs, odd images and interruptions get clear answers (issue: robustness)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from analogy_core import load_vgg19, resolve_config, run_analogy
from analogy_core.cli import main
from analogy_core.vgg import default_weights_path

ROOT = Path(__file__).resolve().parents[2]
TINY = resolve_config("paper", min_side=32, max_side=96, pm_iters=2, lbfgs_iters=3)
FAST = ["--preset", "paper", "--min-side", "32", "--max-side", "96", "--pm-iters", "2", "--lbfgs-iters", "3", "--quiet"]


def test_flat_images_give_finite_results(vgg, device):
    a = torch.full((1, 3, 48, 64), 0.5, device=device)
    bp = torch.zeros(1, 3, 40, 40, device=device)
    res = run_analogy(vgg, a, bp, TINY)
    for t in (res.ap, res.b, res.flow_ab, res.flow_ba):
        assert torch.isfinite(t).all()


def test_small_images_are_upscaled_with_a_notice(vgg, device, caplog):
    a = torch.rand(1, 3, 12, 20, device=device)
    with caplog.at_level(logging.INFO, logger="analogy_core"):
        res = run_analogy(vgg, a, a, TINY)
    assert res.ap.shape == a.shape
    assert any("resized to" in r.getMessage() for r in caplog.records)
    assert tuple(res.state.a_net.shape[-2:]) == (32, 53)


def test_large_images_are_limited_with_a_notice(vgg, device, caplog):
    a = torch.rand(1, 3, 150, 200, device=device)
    with caplog.at_level(logging.INFO, logger="analogy_core"):
        res = run_analogy(vgg, a, a, TINY)
    assert max(res.state.a_net.shape[-2:]) == 96 and res.ap.shape == a.shape
    assert any("200x150 px resized to 96x72" in r.getMessage() for r in caplog.records)


def test_extreme_aspect_ratio_is_refused_clearly(vgg, device):
    with pytest.raises(ValueError, match="aspect ratio cannot fit"):
        run_analogy(vgg, torch.rand(1, 3, 20, 400, device=device), torch.rand(1, 3, 64, 64, device=device), TINY)


def test_wrong_image_types_are_refused(vgg, device):
    with pytest.raises(ValueError, match=r"A must have shape \(N 3 H W\)"):
        run_analogy(vgg, torch.rand(1, 4, 32, 32, device=device), torch.rand(1, 3, 32, 32, device=device), TINY)
    with pytest.raises(TypeError, match="float image"):
        run_analogy(vgg, torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.rand(1, 3, 32, 32), TINY)
    nan = torch.rand(1, 3, 32, 32, device=device)
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="B' contains NaN"):
        run_analogy(vgg, torch.rand(1, 3, 32, 32, device=device), nan, TINY)


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    a = str(ROOT / "demo" / "a.png")
    assert main([a, a, "--out", str(blocker / "sub"), *FAST]) == 1
    assert "cannot write to output folder" in capsys.readouterr().err


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch, capsys):
    import analogy_core.cli as cli

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli.np, "save", broken)
    small = tmp_path / "s.png"
    Image.open(ROOT / "demo" / "a.png").resize((48, 32)).save(small)
    out = tmp_path / "out"
    with pytest.raises(OSError):
        main([str(small), str(small), "--out", str(out), *FAST])
    assert list(out.iterdir()) == []


def test_truncated_and_foreign_weights(tmp_path):
    data = default_weights_path().read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="cut.bin: cannot be read"):
        load_vgg19(tmp_path / "cut.bin")
    resnet = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 512)}
    torch.save(resnet, tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="resnet.pth: missing 'features.0.weight'; this is not a VGG19"):
        load_vgg19(tmp_path / "resnet.pth")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, tmp_path / "vgg16.pth")
    with pytest.raises(ValueError, match="not a VGG19"):
        load_vgg19(tmp_path / "vgg16.pth")


def test_ctrl_c_stops_and_writes_nothing(tmp_path):
    """Ctrl-C inside the analogy: exit code 130, one line, no outputs. It is sent once the
    progress bar shows the first NNF search (so inside the analogy, however slow the
    machine); how soon the run stops is a wall-clock figure, in ``python -m bench.latency``."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIA_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "analogy_core", str(ROOT / "demo" / "a.png"), str(ROOT / "demo" / "bp.png"),
         "--out", str(out), "--preset", "paper"],
        stderr=subprocess.PIPE, env=env,
        # a suite started in the background (nohup, `&`) inherits an ignored SIGINT, and
        # Python keeps it ignored; give the CLI the disposition of a foreground command
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    err = _read_until(proc, b"nnf relu5_1")
    proc.send_signal(signal.SIGINT)
    err += proc.communicate(timeout=600)[1]  # a generous smoke bound
    text = err.decode(errors="replace")
    assert proc.returncode == 130 and "interrupted; no outputs written" in text, text[-2000:]
    assert list(out.iterdir()) == []


def _read_until(proc: subprocess.Popen, marker: bytes) -> bytes:
    """Read ``proc``'s stderr until ``marker`` appears (the bar writes no newlines)."""
    seen = b""
    while marker not in seen:
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, f"the CLI ended before {marker!r}: {seen.decode(errors='replace')[-2000:]}"
        seen += chunk
    return seen
