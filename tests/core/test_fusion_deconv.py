from __future__ import annotations

import pytest
import torch

from analogy_core import deconvolve, feature_mask, fuse
from analogy_core.config import AnalogyConfig
from analogy_core.deconv import TILE_ELEMENTS, _largest_map, receptive_radius
from analogy_core.pipeline import deconv_start


def test_fusion_alpha_extremes_return_each_side(device):
    c, r = torch.rand(1, 8, 5, 5, device=device), torch.rand(1, 8, 5, 5, device=device)
    m = feature_mask(c)
    assert torch.equal(fuse(c, r, 0.0 * m), r)
    assert torch.allclose(fuse(c, r, torch.ones_like(m)), c)


def test_mask_sigmoid_and_step(device):
    f = torch.zeros(1, 2, 1, 3, device=device)
    f[0, 0, 0, 1] = 1.0
    f[0, 0, 0, 2] = 2.0  # normalised squared norms: 0, 0.25, 1
    step = feature_mask(f, tau=0.5, mode="step").flatten().tolist()
    assert step == [0.0, 0.0, 1.0]
    sig = feature_mask(f, kappa=300, tau=0.05).flatten()
    assert sig[0] < 1e-5 and sig[1] > 0.999 and sig[2] > 0.999
    flat = feature_mask(torch.ones(1, 2, 3, 3, device=device), mode="step")
    assert torch.isfinite(flat).all() and flat.sum() == 0


def test_fuse_rejects_shape_mismatch(device):
    with pytest.raises(ValueError, match="must match"):
        fuse(torch.rand(1, 2, 3, 3, device=device), torch.rand(1, 2, 3, 4, device=device), 0.5)


def _perturbed_relu1_1(vgg, device, *, seed, coarse, size, end, noise):
    """A random ``coarse`` image upsampled to ``size``: its features at ``end`` (the target),
    and its relu1_1 plus Gaussian noise of ``noise`` × their std (the start)."""
    g = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.interpolate(torch.rand(1, 3, *coarse, generator=g), size=size, mode="bilinear")
    feats = vgg.extract(img.to(device))
    truth = feats["relu1_1"]
    init = (truth + noise * truth.std() * torch.randn(truth.shape, generator=g).to(device)).clamp_min(0)
    return feats[end], init


def test_deconvolution_recovers_given_features(vgg, device):
    """relu2_1 of an image is matched by optimising its relu1_1 from a perturbed start."""
    target, init = _perturbed_relu1_1(vgg, device, seed=0, coarse=(8, 8), size=(32, 32), end="relu2_1", noise=0.5)
    net = vgg.subnet("relu1_1", "relu2_1")
    err0 = (net(init) - target).norm() / target.norm()
    x = deconvolve(vgg, "relu1_1", "relu2_1", target, init, lbfgs_iters=100)
    err = (net(x) - target).norm() / target.norm()
    assert err < 0.05 and err < 0.2 * err0


def test_deconvolution_recovers_the_image_behind_relu1_1(vgg, device):
    """conv1_1 is injective on images (3 → 64 channels, no pooling): the input comes back."""
    g = torch.Generator().manual_seed(1)
    img = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=(24, 24), mode="bilinear")
    x_true = vgg.preprocess(img.to(device))
    target = vgg.extract(img.to(device))["relu1_1"]
    init = torch.zeros_like(x_true)
    x = deconvolve(vgg, "input", "relu1_1", target, init, lbfgs_iters=100)
    assert (x - x_true).norm() / x_true.norm() < 0.02


def test_deconvolution_reports_progress_and_honours_interrupt(vgg, device):
    feats = vgg.extract(torch.rand(1, 3, 32, 32, device=device))
    calls = []
    deconvolve(vgg, "relu4_1", "relu5_1", feats["relu5_1"], torch.zeros_like(feats["relu4_1"]), lbfgs_iters=5,
               progress=lambda *c: calls.append(c))
    assert calls == [(k, 5, "deconvolution") for k in range(1, 6)]

    class Stop(Exception):
        pass

    def stop():
        raise Stop

    with pytest.raises(Stop):
        deconvolve(vgg, "relu4_1", "relu5_1", feats["relu5_1"], feats["relu4_1"], lbfgs_iters=5, check_interrupt=stop)


def test_deconvolution_works_under_inference_mode(vgg, device):
    with torch.inference_mode():
        feats = vgg.extract(torch.rand(1, 3, 32, 32, device=device))
        x = deconvolve(vgg, "relu4_1", "relu5_1", feats["relu5_1"], torch.zeros_like(feats["relu4_1"]), lbfgs_iters=3)
    assert torch.isfinite(x).all()


def test_deconvolution_makes_progress_on_real_feature_magnitudes(vgg, device):
    """The first deconvolution of the demo pair (warped relu5_1 target, warped relu4_1
    start): VGG maps reach 1e3 while the gradient is tiny, and an unscaled float32 L-BFGS
    stalls at its first line search. The optimisation must cut the error."""
    from pathlib import Path

    from analogy_core import deconvolve_layer, get_preset, patch_vote, prepare, search_layer
    from analogy_core.io import load_image

    demo = Path(__file__).resolve().parents[2] / "demo"
    st = prepare(vgg, load_image(demo / "a.png").to(device), load_image(demo / "bp.png").to(device), get_preset("paper"))
    st = search_layer(st, "relu5_1", patch_size=3, pm_iters=10, search_radius=None)
    target = patch_vote(st.feat_bp["relu5_1"], st.nnf_ab["relu5_1"], 3)
    net = vgg.subnet("relu4_1", "relu5_1")
    before = deconvolve_layer(vgg, st, "relu5_1", patch_size=3, lbfgs_iters=0).recon_bp["relu4_1"]
    after = deconvolve_layer(vgg, st, "relu5_1", patch_size=3, lbfgs_iters=8).recon_bp["relu4_1"]
    assert (net(after) - target).norm() < 0.85 * (net(before) - target).norm()


@pytest.mark.parametrize(("start", "end"), [("input", "relu2_1"), ("relu1_1", "relu3_1"), ("relu3_1", "relu5_1")])
def test_receptive_radius_matches_the_gradient_footprint(vgg, device, start, end):
    """The radius that sizes the tiles' halos is exactly how far one output's gradient reaches."""
    net = vgg.subnet(start, end)
    c_in = net[0].in_channels  # every sub-network starts with a convolution
    size = 96
    x = torch.rand(1, c_in, size, size, device=device, requires_grad=True)
    with torch.enable_grad():
        y = net(x)
        oy, ox = y.shape[-2] // 2, y.shape[-1] // 2
        y[0, :, oy, ox].sum().backward()
    hit = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    scale = size // y.shape[-1]
    centre_lo, centre_hi = oy * scale, oy * scale + scale - 1  # the output's own input cell
    r = receptive_radius(net)
    assert max(centre_lo - int(rows.min()), int(rows.max()) - centre_hi) == r
    assert max(ox * scale - int(cols.min()), int(cols.max()) - (ox * scale + scale - 1)) == r


def test_tiled_deconvolution_matches_the_one_piece_solve(vgg, device):
    """Forcing tiles on a small map changes the result by under 2 % and matches as well."""
    target, init = _perturbed_relu1_1(vgg, device, seed=2, coarse=(12, 12), size=(96, 128), end="relu3_1", noise=0.3)
    net = vgg.subnet("relu1_1", "relu3_1")
    whole = deconvolve(vgg, "relu1_1", "relu3_1", target, init, lbfgs_iters=20)
    calls = []
    tiled = deconvolve(vgg, "relu1_1", "relu3_1", target, init, lbfgs_iters=20, tile_elements=init.numel() // 2,
                       progress=lambda *c: calls.append(c))
    assert calls[-1] == (20, 20, "deconvolution") and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    err = lambda x: float((net(x) - target).norm() / target.norm())  # noqa: E731
    assert err(tiled) < 0.3 * err(init)
    assert err(tiled) < 1.5 * err(whole)
    assert float((tiled - whole).norm() / whole.norm()) < 0.02


def test_tile_size_leaves_default_limit_images_whole_and_tiles_1024_px(vgg):
    """Every release deconvolution of an image at the default area limit fits one piece;
    at 1024×1024 px the relu4_1 one (L-BFGS's largest untiled map before) does not."""
    channels = {"input": 3, "relu1_1": 64, "relu2_1": 128, "relu3_1": 256}
    stride = {"input": 1, "relu1_1": 1, "relu2_1": 2, "relu3_1": 4}

    def largest(layer: str, h: int, w: int) -> int:
        start = deconv_start(layer, "release")
        shape = (1, channels[start], h // stride[start], w // stride[start])
        return _largest_map(vgg.subnet(start, layer), shape)

    area = AnalogyConfig().max_area
    for h, w in ((500, 700), (591, 592), (350, 1000)):
        assert h * w <= area
        assert all(largest(layer, h, w) <= TILE_ELEMENTS for layer in ("relu5_1", "relu4_1", "relu3_1", "relu2_1"))
    assert largest("relu4_1", 1024, 1024) > TILE_ELEMENTS
    assert largest("relu5_1", 1024, 1024) <= TILE_ELEMENTS
