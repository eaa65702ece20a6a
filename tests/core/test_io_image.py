"""The core's edges (image files, device, peak memory) and its small image helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import analogy_core.io as core_io
from analogy_core import FlowField, warp_by_field
from analogy_core.image import contact_sheet, luminance, pan_zoom, pan_zoom_source, pixel_grid, sample_bilinear
from analogy_core.io import load_image, peak_memory_bytes, resolve_device, save_image

ROOT = Path(__file__).resolve().parents[2]


def test_save_then_load_round_trips_8_bit_values(tmp_path):
    img = torch.randint(0, 256, (3, 5, 7)).float() / 255.0
    save_image(img, tmp_path / "x.png")
    assert torch.equal(load_image(tmp_path / "x.png")[0], img)
    save_image(img[None], tmp_path / "y.png")  # a batch of one, as load_image returns
    assert torch.equal(load_image(tmp_path / "y.png")[0], img)
    with pytest.raises(ValueError, match="image to save"):
        save_image(torch.zeros(2, 3, 5, 7), tmp_path / "z.png")


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


def test_pan_zoom_without_a_move_is_the_centre_crop_a_little_blurred():
    """pan 0, zoom 1: every frame is the still's centre crop, each pixel the mean of 4
    bilinear samples at ±¼ px, which is the kernel (1/8, 3/4, 1/8) along x and along y."""
    g = torch.Generator().manual_seed(0)
    still = torch.rand(1, 3, 14, 16, generator=g, dtype=torch.float64)
    clip = pan_zoom(still, frames=3, height=10, width=12, pan=0.0, zoom=1.0, resize=False)
    k = torch.tensor([0.125, 0.75, 0.125], dtype=torch.float64)
    window = still[:, :, 1:13, 1:15]  # the (14 - 10) / 2 = 2 px offset, with a 1 px rim for the kernel
    want = F.conv2d(F.conv2d(window, (k.view(1, 1, 1, 3)).expand(3, 1, 1, 3), groups=3),
                    k.view(1, 1, 3, 1).expand(3, 1, 3, 1), groups=3)
    for t in range(3):
        assert torch.allclose(clip.frames[t : t + 1], want, atol=1e-12)
    assert torch.equal(clip.backward, pixel_grid(10, 12).expand(3, -1, -1, -1))


def test_pan_zoom_pans_by_the_known_shift():
    """zoom 1: frame t is frame t − 1 moved left by pan × room / (N − 1) px, the room being
    still width − frame width − 3; here 0.5 × 8 / 2 = 2 px, and the backward motion says so."""
    g = torch.Generator().manual_seed(1)
    still = torch.rand(1, 3, 14, 23, generator=g, dtype=torch.float64)
    clip = pan_zoom(still, frames=3, height=10, width=12, pan=0.5, zoom=1.0, resize=False)
    for t in (1, 2):
        assert torch.allclose(clip.frames[t, :, :, :-2], clip.frames[t - 1, :, :, 2:], atol=1e-12)
        assert torch.equal(clip.backward[t], pixel_grid(10, 12) + torch.tensor([2.0, 0.0]))
    assert not torch.allclose(clip.frames[1], clip.frames[0], atol=0.01)


def test_pan_zoom_motion_is_exact_on_a_linear_ramp():
    """Bilinear sampling reproduces a linear image exactly, so frame t − 1 sampled at the
    backward motion is frame t wherever that motion stays inside frame t − 1."""
    ys, xs = torch.meshgrid(torch.arange(70.0, dtype=torch.float64), torch.arange(90.0, dtype=torch.float64),
                            indexing="ij")
    ramp = (0.004 * xs + 0.009 * ys + 0.1).view(1, 1, 70, 90)
    clip = pan_zoom(ramp, frames=4, height=50, width=60, resize=False)
    assert clip.frames.dtype == torch.float64 and clip.frames.shape == (4, 1, 50, 60)
    for t in range(1, 4):
        back = clip.backward[t].double()
        inside = (back[..., 0] >= 0) & (back[..., 0] <= 59) & (back[..., 1] >= 0) & (back[..., 1] <= 49)
        assert inside.float().mean() > 0.9  # a slow move
        warped = sample_bilinear(clip.frames[t - 1 : t], back.unsqueeze(0))[0, 0]
        assert (warped - clip.frames[t, 0])[inside].abs().max() < 1e-6  # backward is float32
    scale = (clip.frames[3, 0, 0, -1] - clip.frames[3, 0, 0, 0]) / (clip.frames[0, 0, 0, -1] - clip.frames[0, 0, 0, 0])
    assert abs(float(scale) - 0.85) < 1e-9  # the last window is 0.85 of the first


def test_pan_zoom_source_size_and_the_resized_move():
    assert pan_zoom_source(torch.zeros(1, 3, 100, 200), 50, 60).shape == (1, 3, 70, 140)  # height 1.4 x 50
    assert pan_zoom_source(torch.zeros(1, 3, 200, 100), 50, 60).shape == (1, 3, 168, 84)  # too narrow: width 1.4 x 60
    still = torch.rand(1, 3, 100, 200, generator=torch.Generator().manual_seed(2))
    clip = pan_zoom(still, frames=2, height=50, width=60)
    again = pan_zoom(pan_zoom_source(still, 50, 60), frames=2, height=50, width=60, resize=False)
    assert clip.frames.dtype == torch.float32 and torch.equal(clip.frames, again.frames)
    assert torch.equal(clip.frames, pan_zoom(still, frames=2, height=50, width=60).frames)  # deterministic


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(frames=1), "a clip needs at least 2 frames, got 1"),
    (dict(height=0), "frame size must be at least 1x1 px, got 8x0"),
    (dict(pan=1.5), r"pan must lie in \[0, 1\], got 1.5"),
    (dict(zoom=0.0), r"zoom must lie in \(0, 1\], got 0.0"),
])
def test_pan_zoom_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pan_zoom(torch.zeros(1, 3, 20, 20), **{"frames": 3, "height": 8, "width": 8, **kwargs})
    with pytest.raises(ValueError, match=r"image must have shape \(1 C H W\), got \(3, 20, 20\)"):
        pan_zoom(torch.zeros(3, 20, 20), frames=3, height=8, width=8)
