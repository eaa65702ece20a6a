"""End-to-end runs on the real VGG19 weights at small sizes."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from analogy_core import (
    LAYERS,
    AnalogyState,
    deconvolve_layer,
    fuse_layer,
    pixel_grid,
    prepare,
    reconstruct,
    refine_pixels,
    release_layer,
    resolve_config,
    run_analogy,
    sample_bilinear,
    search_layer,
    total_work,
)
from analogy_core.io import load_image

DEMO = Path(__file__).resolve().parents[2] / "demo"
# scikit-image's CC0 photo "chelsea" (the earlier demo A): textured all over, so a shift of
# it is recoverable everywhere, which the demo photograph's plain backdrop is not
CHELSEA = Path(__file__).resolve().parents[1] / "data" / "chelsea.png"
FAST = resolve_config("paper", min_side=32, max_side=128, pm_iters=4, lbfgs_iters=15)


def _demo(device, size=(64, 96)):
    a = F.interpolate(load_image(DEMO / "a.png"), size=size, mode="bilinear", antialias=True)
    bp = F.interpolate(load_image(DEMO / "bp.png"), size=size, mode="bilinear", antialias=True)
    return a.to(device), bp.to(device)


def test_run_shapes_ranges_and_bounds(vgg, device):
    a, bp = _demo(device)
    bp = bp[:, :, :56, :80]  # different sizes on the two sides
    seen = []
    res = run_analogy(vgg, a, bp, FAST, progress=lambda d, t, s: seen.append((d, t, s)))
    assert res.ap.shape == a.shape and res.b.shape == bp.shape
    assert res.ap.min() >= 0 and res.ap.max() <= 1 and torch.isfinite(res.b).all()
    for flow, (hs, ws), (ht, wt) in ((res.flow_ab, (64, 96), (56, 80)), (res.flow_ba, (56, 80), (64, 96))):
        assert flow.shape == (1, hs, ws, 2) and flow.dtype == torch.float32
        ys, xs = torch.meshgrid(torch.arange(hs), torch.arange(ws), indexing="ij")
        tx, ty = xs.to(device) + flow[0, ..., 0], ys.to(device) + flow[0, ..., 1]
        assert tx.min() >= 0 and tx.max() <= wt - 1 and ty.min() >= 0 and ty.max() <= ht - 1
    assert seen[-1][0] == seen[-1][1] == total_work(FAST)
    assert {"features", "vote"} | {f"nnf {name}" for name in LAYERS} <= set(res.timings)


def test_same_seed_same_fields(vgg, device):
    a, bp = _demo(device, (48, 64))
    cfg = dataclasses.replace(FAST, lbfgs_iters=3)
    r1 = run_analogy(vgg, a, bp, cfg, seed=7)
    r2 = run_analogy(vgg, a, bp, cfg, seed=7)
    assert torch.equal(r1.flow_ab, r2.flow_ab) and torch.equal(r1.flow_ba, r2.flow_ba)


def test_identical_images_give_identity_and_reproduce_a(vgg, device):
    a, _ = _demo(device)
    res = run_analogy(vgg, a, a, dataclasses.replace(FAST, lbfgs_iters=5))
    still = (res.flow_ab.abs().sum(-1) == 0).float().mean()
    assert still > 0.95
    assert (res.ap - a).abs().mean() < 0.01


def test_known_shift_and_colour_change_are_recovered(vgg, device):
    """B' = colour-mapped copy of A shifted by (6, 4): the field finds the shift and A'
    takes B''s colours far better than A itself does."""
    a_big = F.interpolate(load_image(CHELSEA), size=(84, 112), mode="bilinear", antialias=True).to(device)
    a = a_big[:, :, :72, :96]
    shifted = a_big[:, :, 4:76, 6:102]
    mix = torch.tensor([[0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.7, 0.1, 0.2]], device=device)

    def appearance(x):
        return torch.einsum("ij,njhw->nihw", mix, x).clamp(0, 1) ** 0.8

    bp = appearance(shifted)
    res = run_analogy(vgg, a, bp, dataclasses.replace(FAST, lbfgs_iters=30, pm_iters=6))
    inner = (slice(8, 64), slice(8, 88))
    err = (res.flow_ab[0, inner[0], inner[1]] - torch.tensor([-6.0, -4.0], device=device)).norm(dim=-1)
    assert (err <= 1.0).float().mean() > 0.8
    truth = appearance(a)
    mse_ap = F.mse_loss(res.ap[..., inner[0], inner[1]], truth[..., inner[0], inner[1]])
    mse_a = F.mse_loss(a[..., inner[0], inner[1]], truth[..., inner[0], inner[1]])
    assert mse_ap < 0.25 * mse_a


def test_pixel_refinement_makes_the_known_shift_subpixel_accurate(vgg, device):
    """A pair like the one above, shifted by a non-integer (6.5, 4.5) px: an integer
    field cannot get closer than 0.7 px; the pixel refinement removes that floor, and A'
    comes much closer to the truth."""
    a_big = F.interpolate(load_image(CHELSEA), size=(84, 112), mode="bilinear", antialias=True).to(device)
    a = a_big[:, :, :72, :96]
    mix = torch.tensor([[0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.7, 0.1, 0.2]], device=device)

    def appearance(x):
        return torch.einsum("ij,njhw->nihw", mix, x).clamp(0, 1) ** 0.8

    shifted = sample_bilinear(a_big, pixel_grid(72, 96, device=device) + torch.tensor([6.5, 4.5], device=device))
    bp = appearance(shifted)
    cfg = dataclasses.replace(FAST, lbfgs_iters=30, pm_iters=6)
    plain = run_analogy(vgg, a, bp, cfg)
    refined = run_analogy(vgg, a, bp, dataclasses.replace(cfg, pixel_refine=True))
    inner = (slice(8, 64), slice(8, 88))
    truth = torch.tensor([-6.5, -4.5], device=device)
    err_plain = (plain.flow_ab[0, inner[0], inner[1]] - truth).norm(dim=-1)
    err = (refined.flow_ab[0, inner[0], inner[1]] - truth).norm(dim=-1)
    assert err_plain.median() >= 0.7
    assert err.median() < 0.3
    target = appearance(a)[..., inner[0], inner[1]]
    assert F.mse_loss(refined.ap[..., inner[0], inner[1]], target) < 0.5 * F.mse_loss(
        plain.ap[..., inner[0], inner[1]], target
    )
    assert set(refined.state.moved) == {*LAYERS, "pixel"}
    assert all(0.0 <= m <= 1.0 for pair in refined.state.moved.values() for m in pair)
    assert refined.state.moved["pixel"][0] > 0.5  # the refinement moved most of A's pixels
    assert "pixel refinement" in refined.timings


def test_pixel_refinement_runs_on_a_posterised_view(vgg, device):
    """B' = A shifted by (6.5, 4.5) px and posterised to three levels per channel: its
    windows correlate only moderately with A's (the earlier gate, which counted r ≥ 0.89,
    saw 0.10 of the pixels and skipped the pair), but sharply, and the fields lead back:
    the pair gate lets it through and the refinement takes the field from 1.6 px off to
    sub-pixel, and A' much closer to the truth."""
    a_big = F.interpolate(load_image(CHELSEA), size=(84, 112), mode="bilinear", antialias=True).to(device)
    a = a_big[:, :, :72, :96]

    def posterise(x):
        return (x * 3).floor().clamp(max=2) / 2

    shifted = sample_bilinear(a_big, pixel_grid(72, 96, device=device) + torch.tensor([6.5, 4.5], device=device))
    cfg = dataclasses.replace(FAST, lbfgs_iters=30, pm_iters=6, pixel_refine=True)
    refined = run_analogy(vgg, a, posterise(shifted), cfg)
    inner = (slice(8, 64), slice(8, 88))
    truth = torch.tensor([-6.5, -4.5], device=device)
    plain = refined.state.nnf_ab[LAYERS[-1]].float() - pixel_grid(72, 96, device=device)  # the deep field, same grid
    err_plain = (plain[0, inner[0], inner[1]] - truth).norm(dim=-1)
    err = (refined.flow_ab[0, inner[0], inner[1]] - truth).norm(dim=-1)
    assert refined.state.moved["pixel"][0] > 0.5 and refined.state.moved["pixel"][1] > 0.5
    assert err_plain.median() >= 1.0
    assert err.median() < 0.3
    plain_ap = reconstruct(dataclasses.replace(refined.state, field_ab=None, field_ba=None), vote_patch=cfg.vote_patch)[0]
    target = posterise(a)[..., inner[0], inner[1]]
    assert F.mse_loss(refined.ap[..., inner[0], inner[1]], target) < 0.5 * F.mse_loss(
        plain_ap[..., inner[0], inner[1]], target
    )


def _one_scene(device, size=(48, 64), shift=(3.5, 2.0)):
    """A (chelsea) and B' = A shifted by a non-integer offset, with its colours mixed."""
    h, w = size
    big = F.interpolate(load_image(CHELSEA), size=(h + 8, w + 8), mode="bilinear", antialias=True).to(device)
    mix = torch.tensor([[0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.7, 0.1, 0.2]], device=device)
    shifted = sample_bilinear(big, pixel_grid(h, w, device=device) + torch.tensor(shift, device=device))
    return big[:, :, :h, :w], torch.einsum("ij,njhw->nihw", mix, shifted).clamp(0, 1)


def test_step_functions_compose_to_run_analogy(vgg, device):
    a, bp = _one_scene(device)
    cfg = dataclasses.replace(FAST, lbfgs_iters=4, pm_iters=2, pixel_refine=True)
    whole = run_analogy(vgg, a, bp, cfg, seed=3)
    st = prepare(vgg, a, bp, cfg)
    for i, layer in enumerate(LAYERS):
        if i:
            st = fuse_layer(st, layer, alpha=cfg.alphas[i], kappa=cfg.kappa, tau=cfg.tau, mask=cfg.mask)
        st = search_layer(st, layer, patch_size=cfg.patch_sizes[i], pm_iters=cfg.pm_iters, search_radius=cfg.search_radii[i], seed=3)
        if i + 1 < len(LAYERS):
            st = deconvolve_layer(vgg, st, layer, patch_size=cfg.patch_sizes[i], lbfgs_iters=cfg.lbfgs_iters, deconv=cfg.deconv)
    st = refine_pixels(st)
    assert st.field_ab is not None and st.moved["pixel"][0] > 0  # one scene: the refinement ran
    ap, b, fab, fba = reconstruct(st, vote_patch=cfg.vote_patch)
    assert torch.equal(ap, whole.ap) and torch.equal(b, whole.b) and torch.equal(fab, whole.flow_ab)


def test_pixel_refinement_leaves_a_photo_and_a_painting_exactly_alone(vgg, device):
    """The demo's photograph and painting do not correlate near the deep field: the pair
    gate skips the refinement, and A', B and the fields equal the plain run's bit for bit."""
    a, bp = _demo(device, (64, 96))
    cfg = dataclasses.replace(FAST, lbfgs_iters=4, pm_iters=2)
    plain = run_analogy(vgg, a, bp, cfg, seed=1)
    gated = run_analogy(vgg, a, bp, dataclasses.replace(cfg, pixel_refine=True), seed=1)
    assert gated.state.field_ab is None and gated.state.moved["pixel"] == (0.0, 0.0)
    for x, y in ((plain.ap, gated.ap), (plain.b, gated.b), (plain.flow_ab, gated.flow_ab), (plain.flow_ba, gated.flow_ba)):
        assert torch.equal(x, y)


def test_release_deconvolution_mode_runs(vgg, device):
    a, bp = _demo(device, (48, 64))
    res = run_analogy(vgg, a, bp, dataclasses.replace(FAST, deconv="release", mask="step", lbfgs_iters=3))
    assert torch.isfinite(res.ap).all()


def test_steps_out_of_order_raise(vgg, device):
    a, bp = _demo(device, (48, 64))
    st = prepare(vgg, a, bp, FAST)
    with pytest.raises(ValueError, match="not computed yet"):
        search_layer(st, "relu4_1", patch_size=3, pm_iters=1, search_radius=6)
    with pytest.raises(ValueError, match="not computed yet"):
        deconvolve_layer(vgg, st, "relu5_1", patch_size=3, lbfgs_iters=1)


def test_interrupt_stops_the_run(vgg, device):
    a, bp = _demo(device, (48, 64))

    class Cancelled(Exception):
        pass

    calls = []

    def check():
        calls.append(1)
        if len(calls) > 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        run_analogy(vgg, a, bp, FAST, check_interrupt=check)


def test_batches_pair_and_broadcast(vgg, device):
    a, bp = _demo(device, (48, 64))
    a2 = torch.cat([a, a.flip(-1)])
    res = run_analogy(vgg, a2, bp, dataclasses.replace(FAST, lbfgs_iters=3, pm_iters=2))
    assert res.ap.shape == (2, 3, 48, 64) and res.b.shape == (2, 3, 48, 64)
    with pytest.raises(ValueError, match="batch 2 and B' has batch 3"):
        run_analogy(vgg, a2, torch.cat([bp] * 3), FAST)


def test_batch_items_are_independent_and_solved_one_at_a_time(vgg, device):
    """Each pair of a batch of three gives bit for bit what it gives alone (CPU), and
    while the third pair runs no state of the first two is alive."""
    if device.type != "cpu":
        pytest.skip("bit-identity across batch sizes is a CPU guarantee")
    big = F.interpolate(load_image(CHELSEA), size=(64, 96), mode="bilinear", antialias=True).to(device)
    a3 = torch.cat([big[..., :48, :64], big[..., 16:, 32:], big[..., 8:56, 16:80].flip(-1)])
    _, bp = _demo(device, (48, 64))
    cfg = dataclasses.replace(FAST, lbfgs_iters=3, pm_iters=2, pixel_refine=True)
    alive: set[int] = set()

    def progress(done: int, total: int, stage: str) -> None:
        if stage.startswith("pair 3 of 3: nnf"):
            alive.update(o.a.data_ptr() for o in gc.get_objects() if type(o) is AnalogyState)

    batch = run_analogy(vgg, a3, bp, cfg, seed=5, progress=progress)
    for i in range(3):
        alone = run_analogy(vgg, a3[i : i + 1], bp, cfg, seed=5)
        for got, want in ((batch.ap, alone.ap), (batch.b, alone.b), (batch.flow_ab, alone.flow_ab),
                          (batch.flow_ba, alone.flow_ba)):
            assert torch.equal(got[i : i + 1], want)
    assert alive == {a3[2:3].data_ptr()}


@pytest.mark.parametrize("deconv", ["direct", "release"])
def test_lean_run_gives_the_same_result_and_keeps_one_layer_of_maps(vgg, device, deconv):
    """``lean=True`` frees each map after its last reader and computes the relu2_1 and
    relu1_1 features only when first read: the outputs are unchanged, while relu5_1 is
    searched no live state holds the two finest layers' maps, while relu3_1 is
    deconvolved none holds them either (the deconvolution's start is recomputed for it
    alone), and while relu1_1 is searched none holds a map of a coarser layer."""
    a, bp = _demo(device, (48, 64))
    cfg = dataclasses.replace(FAST, lbfgs_iters=3, pm_iters=2, pixel_refine=True, deconv=deconv)
    held: dict[str, set[str]] = {}
    early: set[str] = set()
    deconv3: dict[str, set[str]] = {}

    def live_maps(names: tuple[str, ...], into: dict[str, set[str]]) -> None:
        for o in gc.get_objects():
            if type(o) is AnalogyState:
                for name in names:
                    into.setdefault(name, set()).update(k for k, t in getattr(o, name).items() if t.device.type != "meta")

    def progress(done: int, total: int, stage: str) -> None:
        if stage.startswith("nnf relu5_1") and not early:
            found: dict[str, set[str]] = {}
            live_maps(("feat_a", "feat_bp"), found)
            early.update(found["feat_a"] | found["feat_bp"])
        if stage.startswith("deconv relu3_1") and not deconv3:
            live_maps(("feat_a", "feat_bp"), deconv3)
        if stage.startswith("nnf relu1_1") and not held:
            live_maps(("feat_a", "feat_bp", "feat_ap", "feat_b", "recon_bp", "recon_a"), held)

    lean = run_analogy(vgg, a, bp, cfg, seed=3, progress=progress, lean=True)
    full = run_analogy(vgg, a, bp, cfg, seed=3)
    for got, want in ((lean.ap, full.ap), (lean.b, full.b), (lean.flow_ab, full.flow_ab), (lean.flow_ba, full.flow_ba)):
        assert torch.equal(got, want)
    assert early == {"relu5_1", "relu4_1", "relu3_1"}
    assert deconv3["feat_a"] | deconv3["feat_bp"] == {"relu3_1"}
    assert held["feat_a"] == held["feat_bp"] == held["feat_ap"] == held["feat_b"] == {"relu1_1"}
    assert held["recon_bp"] == held["recon_a"] == set()  # spent by the relu1_1 fusion
    maps = [t for name in ("feat_a", "feat_bp", "feat_ap", "feat_b") for t in getattr(lean.state, name).values()]
    assert all(t.device.type == "meta" for t in maps)
    assert lean.state.size("a", "relu3_1") == full.state.size("a", "relu3_1")
    with pytest.raises(ValueError, match="unknown map group"):
        release_layer(full.state, "relu3_1", "fields")
