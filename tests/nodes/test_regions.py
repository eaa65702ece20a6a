"""Region control in the nodes: the optional mask inputs, Region Pairs, and their errors."""

from __future__ import annotations

import pytest
import torch

from tests.nodes.test_execute import DEMO, SEED, SMALL, comfy_image, run, step_by_step

QUICK = dict(SMALL, pm_iters=2, lbfgs_iters=2)
H, W, HALF = 48, 64, 32


@pytest.fixture(scope="module")
def pair():
    """A and a B' made of A's halves swapped and inverted (ComfyUI IMAGEs, 64×48)."""
    a = comfy_image(DEMO / "a.png")
    bp = 1 - torch.cat([a[:, :, HALF:], a[:, :, :HALF]], dim=2)
    return a, bp


def _halves():
    left = torch.zeros(H, W)
    left[:, :HALF] = 1
    return left, 1 - left


def _kept(flow, source_half, target_half):
    """Fraction of a source half's pixels whose target lies in the target half."""
    xs = torch.arange(W).view(1, W).expand(H, W)
    tx = torch.round(xs + flow[0, ..., 0])
    src = xs < HALF if source_half == "left" else xs >= HALF
    hit = tx < HALF if target_half == "left" else tx >= HALF
    return float(hit[src].float().mean())


def test_one_node_limit_mask_keeps_a_outside(node_classes, vgg, pair):
    a, bp = pair
    mask = torch.zeros(1, 24, 32)  # half size, resized to A
    mask[:, :, :12] = 1
    ap, b, _, _ = run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=a, image_bp=bp, **QUICK,
                      mask_a=mask, mask_bp=mask[0], feather=3)  # [B, H, W] and [H, W]
    assert torch.equal(ap[:, :, 24:], a[:, :, 24:]) and torch.equal(b[:, :, 24:], bp[:, :, 24:])
    assert not torch.equal(ap[:, :, :21], a[:, :, :21])


def test_region_pairs_guide_the_one_node_and_the_steps(node_classes, vgg, pair, core):
    a, bp = pair
    left, right = _halves()
    (guide,) = run(node_classes["DeepAnalogy_RegionPairs"], pair_a_1=left[None], pair_bp_1=right)
    outs = run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=a, image_bp=bp, **QUICK, guide=guide)
    nnf_ab, nnf_ba = outs[2], outs[3]
    assert _kept(nnf_ab.flow, "left", "right") >= 0.99 and _kept(nnf_ab.flow, "right", "left") >= 0.99
    assert _kept(nnf_ba.flow, "right", "left") >= 0.99 and _kept(nnf_ba.flow, "left", "right") >= 0.99
    # the step nodes take the same inputs on Extract Features and give the same result
    nodes = dict(node_classes)
    extract = nodes["DeepAnalogy_ExtractFeatures"]

    class Guided:
        @staticmethod
        def execute(**kw):
            return extract.execute(**kw, guide=guide)

    nodes["DeepAnalogy_ExtractFeatures"] = Guided
    cfg = core.resolve_config("photo2style", pm_iters=2, lbfgs_iters=2, min_side=32)
    steps = step_by_step(nodes, vgg, a, bp, cfg, SEED)
    torch.testing.assert_close(steps[0], outs[0], atol=0, rtol=0)
    torch.testing.assert_close(steps[2].flow, nnf_ab.flow, atol=0, rtol=0)


def test_step_nodes_apply_the_limit_and_ignore(node_classes, vgg, pair, core):
    a, bp = pair
    mask = torch.zeros(1, H, W)
    mask[:, :, :HALF] = 1
    ignore = torch.zeros(1, H, W)
    ignore[:, 10:30, 5:25] = 1
    (state,) = run(node_classes["DeepAnalogy_ExtractFeatures"], vgg=vgg, image_a=a, image_bp=bp, ratio=1.0,
                   min_side=32, max_side=700, max_area=350_000, mask_a=mask, feather=0, ignore_bp=ignore)
    assert state.regions is not None and state.regions.limit_a is not None
    layers = ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1")
    for i, layer in enumerate(layers):
        if i:
            (state,) = run(node_classes["DeepAnalogy_FeatureFusion"], state=state, layer=layer, alpha=0.5,
                           kappa=300.0, tau=0.05, mask="sigmoid")
        (state,) = run(node_classes["DeepAnalogy_NNFSearch"], state=state, layer=layer, patch_size=3, iterations=1,
                       search_radius=0 if i == 0 else 4, seed=0)
        if i + 1 < len(layers):
            (state,) = run(node_classes["DeepAnalogy_FeatureDeconvolution"], vgg=vgg, state=state, layer=layer,
                           iterations=1, mode="direct", patch_size=3)
    ap, _, nnf_ab, _ = run(node_classes["DeepAnalogy_PatchVoteReconstruction"], state=state, patch_size=3)
    assert torch.equal(ap[:, :, HALF:], a[:, :, HALF:])
    xs, ys = torch.meshgrid(torch.arange(W), torch.arange(H), indexing="xy")
    tx = torch.round(xs + nnf_ab.flow[0, ..., 0]).long()
    ty = torch.round(ys + nnf_ab.flow[0, ..., 1]).long()
    assert not bool((ignore[0][ty, tx] > 0.5).any())


def test_region_errors_are_readable(node_classes, vgg, pair):
    a, bp = pair
    left, right = _halves()
    regions = node_classes["DeepAnalogy_RegionPairs"]
    with pytest.raises(ValueError, match="connect at least one pair of masks"):
        run(regions)
    with pytest.raises(ValueError, match="pair 2 has a mask on A but none on B'"):
        run(regions, pair_a_1=left, pair_bp_1=right, pair_a_2=right)
    with pytest.raises(ValueError, match="connect both labels_a and labels_bp"):
        run(regions, labels_a=a)
    with pytest.raises(ValueError, match="colour"):
        run(regions, labels_a=torch.zeros(1, 8, 8, 3), labels_bp=torch.ones(1, 8, 8, 3))
    one_node = node_classes["DeepAnalogy_DeepImageAnalogy"]
    with pytest.raises(ValueError, match="mask_a .* has batch 3 but the images have batch 1"):
        run(one_node, vgg=vgg, image_a=a, image_bp=bp, **QUICK, mask_a=torch.ones(3, H, W))
    with pytest.raises(ValueError, match="is all black"):
        run(one_node, vgg=vgg, image_a=a, image_bp=bp, **QUICK, mask_bp=torch.zeros(H, W))
    with pytest.raises(ValueError, match="mask_a must be a MASK"):
        run(one_node, vgg=vgg, image_a=a, image_bp=bp, **QUICK, mask_a=torch.zeros(1, 1, H, W, 1))
