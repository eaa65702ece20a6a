"""Region control: limit, guide and ignore masks (analogy_core.masks), on the real weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from analogy_core import (
    LAYERS,
    Regions,
    feather_weights,
    guide_from_label_images,
    guide_from_masks,
    prepare,
    resolve_config,
    run_analogy,
)
from analogy_core.io import load_image
from analogy_core.masks import FREE, IGNORED, check_regions, forbidden, search_constraint

DEMO = Path(__file__).resolve().parents[2] / "demo"
H, W, HALF = 64, 96, 48
FAST = resolve_config("paper", min_side=32, max_side=128, pm_iters=4, lbfgs_iters=5)


def _a(device):
    return F.interpolate(load_image(DEMO / "a.png"), size=(H, W), mode="bilinear", antialias=True).to(device)


def _swapped(a):
    """A with its halves swapped, the new left half dark and warm, the right half inverted and cool."""
    bp = torch.cat([a[..., HALF:], a[..., :HALF]], dim=-1).clone()
    bp[..., :HALF] = bp[..., :HALF] ** 2 * torch.tensor([1.0, 0.6, 0.3], device=a.device).view(1, 3, 1, 1)
    bp[..., HALF:] = (1 - bp[..., HALF:]) * torch.tensor([0.4, 0.8, 1.0], device=a.device).view(1, 3, 1, 1)
    return bp


def _halves(device):
    left = torch.zeros(1, 1, H, W, device=device)
    left[..., :HALF] = 1
    return left, 1 - left


def _targets(flow):
    """Nearest target pixel (x, y) of every pixel of a (1, h, w, 2) flow."""
    _, h, w, _ = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device), torch.arange(w, device=flow.device), indexing="ij")
    return torch.round(xs + flow[0, ..., 0]).long(), torch.round(ys + flow[0, ..., 1]).long()


def _in_region(flow, source_region, target_region):
    """Fraction of the source region's pixels whose target lies in the target region."""
    tx, ty = _targets(flow)
    hit = target_region[0, 0][ty, tx] > 0.5
    inside = source_region[0, 0] > 0.5
    return float(hit[inside].float().mean())


# ---- limit ------------------------------------------------------------------------------------


def test_feather_weights_are_exact_outside_and_deep_inside():
    m = torch.zeros(1, 1, 20, 30)
    m[..., 5:15, 8:25] = 1
    w = feather_weights(m, 3)
    assert torch.equal(w[m < 0.5], torch.zeros_like(w[m < 0.5]))
    assert torch.equal(w[..., 7:13, 10:23], torch.ones(1, 1, 6, 13))
    assert 0 < w[0, 0, 5, 12] < 1
    assert torch.equal(feather_weights(m * 0.7, 0), m * 0.7)  # no feather: the soft mask as it is


@pytest.mark.parametrize("wls", [False, True])
def test_limit_keeps_a_outside_and_the_plain_result_inside(vgg, device, wls):
    a = _a(device)
    bp = _swapped(a)
    cfg = dataclasses.replace(FAST, wls_refine=wls, pixel_refine=True)
    mask = torch.zeros(1, 1, H // 2, W // 2, device=device)  # half size: resized to A
    mask[..., 4:28, 6:30] = 1
    plain = run_analogy(vgg, a, bp, cfg, seed=5)
    limited = run_analogy(vgg, a, bp, cfg, seed=5, regions=Regions(limit_a=mask, limit_bp=mask, feather=4))
    full = F.interpolate(mask, size=(H, W), mode="bilinear", align_corners=False)
    outside = (full < 0.5).expand_as(a)
    assert torch.equal(limited.ap[outside], a[outside])  # bit for bit
    assert torch.equal(limited.b[outside], bp[outside])
    deep = torch.zeros_like(outside)
    deep[..., 12:52, 16:56] = True  # 4 px and more inside the mask's 8..56 x 12..60 box
    assert torch.equal(limited.ap[deep], plain.ap[deep])
    assert torch.equal(limited.b[deep], plain.b[deep])
    assert torch.equal(limited.flow_ab, plain.flow_ab)  # the limit does not touch the search
    band = ~outside & ~deep
    assert not torch.equal(limited.ap[band], plain.ap[band])


# ---- guide ------------------------------------------------------------------------------------


def test_guide_keeps_each_region_on_its_pair_in_both_directions(vgg, device):
    """B' is A with its halves swapped and re-coloured; A's left half went to B''s right."""
    a = _a(device)
    bp = _swapped(a)
    left, right = _halves(device)
    plain = run_analogy(vgg, a, bp, FAST)
    crossed = min(_in_region(plain.flow_ab, left, right), _in_region(plain.flow_ab, right, left))
    assert crossed < 0.99  # unguided, some pixels land in the wrong half
    guided = run_analogy(vgg, a, bp, FAST, regions=Regions(guide=guide_from_masks([left], [right])))
    # region 1: A's left ↔ B''s right; the rest: A's right ↔ B''s left
    for flow, pairs in ((guided.flow_ab, ((left, right), (right, left))),
                        (guided.flow_ba, ((right, left), (left, right)))):
        for source_region, target_region in pairs:
            assert _in_region(flow, source_region, target_region) >= 0.99
    # and every layer's search kept to the regions before the final fields were projected
    st = guided.state
    for layer in LAYERS:
        for direction, nnf, src, tgt in (("ab", st.nnf_ab, "a", "b"), ("ba", st.nnf_ba, "b", "a")):
            c = search_constraint(st.regions, direction, st.size(src, layer), st.size(tgt, layer))
            assert float(forbidden(c, nnf[layer]).float().mean()) <= 0.01, (layer, direction)


def test_label_images_pair_by_colour():
    red, blue = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0])
    la = torch.zeros(1, 3, 4, 6)
    la[..., :3] = red.view(1, 3, 1, 1)
    la[..., 3:] = blue.view(1, 3, 1, 1)
    lb = la.flip(-1)[..., :5]  # other size, swapped sides
    g = guide_from_label_images(la, lb)
    assert g.names == ("colour #0000ff", "colour #ff0000")
    assert torch.equal(g.regions_a[0, 1, 0], torch.tensor([1.0, 1, 1, 0, 0, 0]))
    with pytest.raises(ValueError, match="#00ff00 .* missing from the label image of B'"):
        la2 = la.clone()
        la2[..., 0, 0] = torch.tensor([0, 1.0, 0])
        guide_from_label_images(la2, lb)
    with pytest.raises(ValueError, match="at most 16 regions"):
        guide_from_label_images(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_a_region_missing_at_a_coarse_grid_is_left_free():
    """A 2×2 px pair vanishes at 4×6 (relu5_1 of a 64×96 image): its pixels search freely
    there, but not at the image's size; a rest present on one side only is free too."""
    a, bp = torch.zeros(1, 3, H, W), torch.zeros(1, 3, H, W)
    ma, mb = torch.zeros(1, 1, H, W), torch.zeros(1, 1, H, W)
    ma[..., 30:32, 40:42] = 1
    mb[..., 10:12, 70:72] = 1
    regions = check_regions(Regions(guide=guide_from_masks([ma], [mb])), a, bp)
    coarse = search_constraint(regions, "ab", (4, 6), (4, 6))
    assert set(coarse.source.unique().tolist()) <= {0, FREE}
    fine = search_constraint(regions, "ab", (H, W), (H, W))
    assert set(fine.source.unique().tolist()) == {0, 1}
    everywhere = torch.ones(1, 1, H, W)
    regions = check_regions(Regions(guide=guide_from_masks([everywhere], [mb])), a, bp)
    assert search_constraint(regions, "ba", (H, W), (H, W)).source[0, 0, 0] == FREE  # B''s rest has no partner


# ---- ignore -----------------------------------------------------------------------------------


def test_ignored_content_is_never_matched_or_copied(vgg, device):
    a = _a(device)
    bp = a.clone()
    bp[..., 20:40, 30:60] = torch.tensor([1.0, 0.0, 1.0], device=device).view(1, 3, 1, 1)  # a magenta "watermark"
    ignore = torch.zeros(1, 1, H, W, device=device)
    ignore[..., 20:40, 30:60] = 1
    cfg = dataclasses.replace(FAST, pixel_refine=True)
    plain = run_analogy(vgg, a, bp, cfg)
    assert _in_region(plain.flow_ab, torch.ones_like(ignore), ignore) > 0.05  # unconstrained, A matches the mark
    for c in (cfg, dataclasses.replace(cfg, pixel_refine=False)):
        res = run_analogy(vgg, a, bp, c, regions=Regions(ignore_bp=ignore))
        assert _in_region(res.flow_ab, torch.ones_like(ignore), ignore) == 0.0
        magenta = (res.ap[:, 0] > 0.9) & (res.ap[:, 1] < 0.1) & (res.ap[:, 2] > 0.9)
        assert not bool(magenta.any())  # no ignored pixel votes into A'
        assert res.b.shape == bp.shape and torch.isfinite(res.flow_ba).all()


def test_ignore_marks_targets_at_every_grid():
    a, bp = torch.zeros(1, 3, H, W), torch.zeros(1, 3, H, W)
    ignore = torch.zeros(1, 1, H, W)
    ignore[..., 20:40, 30:60] = 1
    regions = check_regions(Regions(ignore_bp=ignore), a, bp)
    exact = search_constraint(regions, "ab", (H, W), (H, W), exact=True)
    assert torch.equal(exact.target == IGNORED, (ignore[:, 0] >= 0.5))
    coarse = search_constraint(regions, "ab", (8, 12), (8, 12))
    assert bool((coarse.target == IGNORED)[0, 2:5, 3:8].all())  # every cell touching the mark
    assert search_constraint(regions, "ba", (H, W), (H, W)) is None  # nothing constrains B'→A


# ---- errors -----------------------------------------------------------------------------------


def test_bad_masks_get_clear_errors(vgg, device):
    a = _a(device)
    bp = _swapped(a)
    left, right = _halves(device)
    zero = torch.zeros(1, H, W, device=device)
    cases = [
        (Regions(limit_a=zero), "mask_a .* is all black"),
        (Regions(ignore_bp=torch.ones(H, W)), "covers all of B'"),
        (Regions(limit_a=torch.ones(3, H, W)), "batch 3 but the images have batch 1"),
        (Regions(limit_a=left, feather=1000), "feather must lie in"),
    ]
    for regions, message in cases:
        with pytest.raises(ValueError, match=message):
            prepare(vgg, a, bp, FAST, regions=regions)
    with pytest.raises(ValueError, match="pair 1's mask on B' is all black"):
        guide_from_masks([left], [zero])
    with pytest.raises(ValueError, match="pair 2 has a mask on A but none on B'"):
        guide_from_masks([left, right], [right, None])
    with pytest.raises(ValueError, match="at most 8"):
        guide_from_masks([left] * 9, [right] * 9)
    tiny = torch.zeros(1, 1, 4 * H, 4 * W)
    tiny[..., 0, 0] = 1  # one pixel at 4× the size: gone at the image's size
    with pytest.raises(ValueError, match="pair 1's region on A has no pixel left"):
        prepare(vgg, a, bp, FAST, regions=Regions(guide=guide_from_masks([tiny], [right])))


# ---- command line -----------------------------------------------------------------------------

CLI_FAST = ["--preset", "paper", "--min-side", "32", "--max-side", "96", "--pm-iters", "2", "--lbfgs-iters", "3",
            "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    """A 90×60 A, its halves swapped as a 90×60 B', masks at other sizes and label images."""
    import numpy as np
    from PIL import Image

    d = tmp_path_factory.mktemp("regions")
    a = np.asarray(Image.open(DEMO / "a.png").convert("RGB").resize((90, 60)))
    Image.fromarray(a).save(d / "a.png")
    bp = np.concatenate([a[:, 45:], a[:, :45]], axis=1)
    Image.fromarray((255 - bp).astype(np.uint8)).save(d / "bp.png")
    mask = np.zeros((30, 45), np.uint8)
    mask[:, :20] = 255  # A's left 40 px, at half size
    Image.fromarray(mask).save(d / "mask_a.png")
    Image.fromarray(np.zeros((30, 45), np.uint8)).save(d / "black.png")
    red, blue = np.array([255, 0, 0], np.uint8), np.array([0, 0, 255], np.uint8)
    la = np.where(np.arange(90)[None, :, None] < 45, red, blue).repeat(60, 0)
    Image.fromarray(la.astype(np.uint8)).save(d / "labels_a.png")
    Image.fromarray(la[:, ::-1].astype(np.uint8).copy()).resize((180, 120), Image.NEAREST).save(d / "labels_bp.png")
    ignore = np.zeros((60, 90), np.uint8)
    ignore[20:40, 10:30] = 255
    Image.fromarray(ignore).save(d / "ignore_bp.png")
    return d


def test_cli_region_flags(cli_files, tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from analogy_core.cli import main

    d, out = cli_files, tmp_path / "out"
    assert main([str(d / "a.png"), str(d / "bp.png"), "--out", str(out), *CLI_FAST, "--mask-a", str(d / "mask_a.png"),
                 "--feather", "3", "--labels-a", str(d / "labels_a.png"), "--labels-bp", str(d / "labels_bp.png"),
                 "--ignore-bp", str(d / "ignore_bp.png")]) == 0
    a, ap = np.asarray(Image.open(d / "a.png")), np.asarray(Image.open(out / "a_prime.png"))
    assert np.array_equal(ap[:, 40:], a[:, 40:]) and not np.array_equal(ap[:, :37], a[:, :37])
    flow = np.load(out / "flow_ab.npy")
    ys, xs = np.mgrid[0:60, 0:90]
    tx, ty = np.rint(xs + flow[..., 0]).astype(int), np.rint(ys + flow[..., 1]).astype(int)
    assert ((tx >= 45) == (xs < 45)).mean() >= 0.99  # A's left (red) went to B''s right (red)
    assert not ((ty >= 20) & (ty < 40) & (tx >= 10) & (tx < 30)).any()
    fba = np.load(out / "flow_ba.npy")
    assert ((np.rint(xs + fba[..., 0]) >= 45) == (xs < 45)).mean() >= 0.99
    report = json.loads((out / "report.json").read_text())
    assert set(report["regions"]) == {"mask_a", "labels_a", "labels_bp", "ignore_bp", "feather"}


@pytest.mark.parametrize("flags, message", [
    (["--labels-a", "labels_a.png"], "--labels-a and --labels-bp go together"),
    (["--mask-a", "black.png"], "mask_a (limit on A) is all black"),
    (["--labels-a", "labels_a.png", "--labels-bp", "mask_a.png"], "label images: colour(s)"),
])
def test_cli_region_errors_are_one_line(cli_files, tmp_path, capsys, flags, message):
    from analogy_core.cli import main

    d = cli_files
    flags = [str(d / f) if f.endswith(".png") else f for f in flags]
    assert main([str(d / "a.png"), str(d / "bp.png"), "--out", str(tmp_path / "o"), *CLI_FAST, *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
