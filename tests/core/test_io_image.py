"""The core's edges (image files, device, peak memory) and its small image helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import analogy_core.io as core_io
from analogy_core import FlowField, warp_by_field
from analogy_core.image import contact_sheet, luminance, pixel_grid, sample_bilinear
from analogy_core.io import load_image, peak_memory_bytes, resolve_device, save_image

ROOT = Path(__file__).resolve().parents[2]


def test_save_then_load_round_trips_8_bit_values(tmp_path):
    img = torch.randint(0, 256, (3, 5, 7)).float() / 255.0
    save_image(img, tmp_path / "x.png")
    assert torch.equal(load_image(tmp_path / "x.png")[0], img)


def test_image_file_errors_are_value_errors_that_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.png: no such file"):
        load_image(tmp_path / "nope.png")


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device; use --device cpu"):
            resolve_device("cuda")


def test_peak_memory_sources(monkeypatch):
    peak = peak_memory_bytes(torch.device("cpu"))
    assert peak is not None and peak > 10 * 2**20  # torch alone takes more
    # without `resource` (Windows) and without psutil, the peak is unknown rather than wrong
    monkeypatch.setattr(core_io, "resource", None)
    monkeypatch.setitem(sys.modules, "psutil", None)
    assert peak_memory_bytes(torch.device("cpu")) is None


def test_cli_starts_without_the_unix_resource_module(tmp_path):
    code = "import sys; sys.modules['resource'] = None; from analogy_core.cli import main; main(['--help'])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and "--preset" in r.stdout, r.stderr


def test_sample_bilinear_is_the_warp_of_a_field():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 9, 11, generator=g)
    flow = (torch.rand(2, 6, 7, 2, generator=g) - 0.5) * 8
    field = FlowField(flow, (9, 11))
    assert torch.equal(sample_bilinear(img, field.targets()), warp_by_field(img, field))
    # integer points pick pixels; float64 points keep float32 images float32
    grid = pixel_grid(9, 11, dtype=torch.float64)
    out = sample_bilinear(img[:1], grid)
    assert out.dtype == torch.float32 and torch.allclose(out, img[:1], atol=1e-6)
    with pytest.raises(ValueError, match="batch"):
        sample_bilinear(img, flow[:1].expand(3, -1, -1, -1))


def test_luminance_and_contact_sheet():
    x = torch.rand(1, 3, 4, 4)
    assert torch.allclose(luminance(x), 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:], atol=1e-6)
    sheet = contact_sheet([torch.zeros(3, 4, 2), torch.zeros(1, 3, 8, 4)], gap=3, height=4)
    assert sheet.shape == (3, 4, 2 + 3 + 2) and bool((sheet[:, :, 2:5] == 1).all())
    with pytest.raises(ValueError, match="different heights"):
        contact_sheet([torch.zeros(3, 4, 2), torch.zeros(3, 5, 2)])
