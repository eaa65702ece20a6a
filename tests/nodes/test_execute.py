"""Running the nodes' execute() directly, as ComfyUI does (inside torch.inference_mode)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

DEMO = Path(__file__).resolve().parents[2] / "demo"
SEED = 3
# photo2style at test size: 2 PatchMatch iterations, 4 L-BFGS steps, 64x48 px images
SMALL = dict(preset="photo2style", seed=SEED, pm_iters=2, lbfgs_iters=4, ratio=0.0, min_side=32, max_side=0, max_area=0)


def run(node, **inputs):
    """execute() as ComfyUI calls it; returns the outputs as a tuple."""
    with torch.inference_mode():
        return tuple(node.execute(**inputs).args)


def comfy_image(path: Path, size=(64, 48)) -> torch.Tensor:
    """What LoadImage gives for a PNG: [1, H, W, 3] float32 in 0..1."""
    with Image.open(path) as im:
        rgb = im.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(rgb).astype(np.float32) / 255.0)[None]


@pytest.fixture(scope="module")
def images():
    return comfy_image(DEMO / "a.png"), comfy_image(DEMO / "bp.png")


@pytest.fixture(scope="module")
def one_node(node_classes, vgg, images, comfy):
    """One-node outputs for SMALL, with the progress updates it sent."""
    updates = []
    saved = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: updates.append((value, total)))
    try:
        out = run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=images[0], image_bp=images[1], **SMALL)
    finally:
        comfy.utils.set_progress_bar_global_hook(saved)
    return out, updates


def small_config(core):
    return core.resolve_config("photo2style", pm_iters=2, lbfgs_iters=4, min_side=32)


def step_by_step(nodes, vgg, a, bp, cfg, seed):
    """The step nodes chained like example_workflows/api/step_by_step.json."""
    (state,) = run(nodes["DeepAnalogy_ExtractFeatures"], vgg=vgg, image_a=a, image_bp=bp, ratio=cfg.ratio,
                   min_side=cfg.min_side, max_side=cfg.max_side, max_area=cfg.max_area)
    layers = ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1")
    for i, layer in enumerate(layers):
        if i:
            (state,) = run(nodes["DeepAnalogy_FeatureFusion"], state=state, layer=layer, alpha=cfg.alphas[i],
                           kappa=cfg.kappa, tau=cfg.tau, mask=cfg.mask)
        (state,) = run(nodes["DeepAnalogy_NNFSearch"], state=state, layer=layer, patch_size=cfg.patch_sizes[i],
                       iterations=cfg.pm_iters, search_radius=cfg.search_radii[i] or 0, seed=seed)
        if i + 1 < len(layers):
            (state,) = run(nodes["DeepAnalogy_FeatureDeconvolution"], vgg=vgg, state=state, layer=layer,
                           iterations=cfg.lbfgs_iters, mode=cfg.deconv, patch_size=cfg.patch_sizes[i])
    if cfg.pixel_refine:
        (state,) = run(nodes["DeepAnalogy_PixelRefinement"], state=state)
    return run(nodes["DeepAnalogy_PatchVoteReconstruction"], state=state, patch_size=cfg.vote_patch)


# ---------------------------------------------------------------------------- loader
def test_loader_offline_default_on_cpu(vgg, shared):
    assert isinstance(vgg, shared.types.VGGModel)
    assert vgg.device == torch.device("cpu")  # "auto" under --cpu
    assert vgg.precision == "fp32" and next(vgg.net.parameters()).dtype == torch.float32
    assert vgg.net.convention.name == "caffe"


def test_loader_reads_a_checkpoint_from_models_vgg(node_classes, comfy, core, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    fp = comfy.folder_paths
    paths, extensions = fp.folder_names_and_paths["vgg"]
    monkeypatch.setitem(fp.folder_names_and_paths, "vgg", ([*paths, str(tmp_path)], extensions))
    save_file(core.VGG19().state_dict(), str(tmp_path / "my_vgg19.safetensors"))
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    loader = node_classes["DeepAnalogy_LoadVGG19"]
    options = loader.GET_SCHEMA().inputs[0].options
    assert "my_vgg19.safetensors" in options and "notes.txt" not in options
    (model,) = run(loader, weights="my_vgg19.safetensors", device="cpu", precision="fp32")
    assert model.net.convention.name == "torchvision" and model.weights == "my_vgg19.safetensors"


def test_loader_errors_name_the_folder_and_the_fix(node_classes):
    loader = node_classes["DeepAnalogy_LoadVGG19"]
    with pytest.raises(FileNotFoundError, match=r"'missing\.pth' not found in models/vgg/"):
        run(loader, weights="missing.pth", device="auto", precision="fp32")
    with pytest.raises(ValueError, match="precision must be one of"):
        run(loader, weights="missing.pth", device="auto", precision="fp16")


# ------------------------------------------------------------------------- layouts
def test_layout_converters(shared):
    rgba = torch.rand(2, 5, 7, 4)
    core_rgb = shared.layout.image_to_core(rgba)
    assert core_rgb.shape == (2, 3, 5, 7) and torch.equal(core_rgb, rgba[..., :3].movedim(-1, 1))
    grey = shared.layout.image_to_core(torch.rand(1, 5, 7, 1))
    assert grey.shape == (1, 3, 5, 7) and torch.equal(grey[:, 0], grey[:, 2])
    back = shared.layout.image_from_core(core_rgb)
    assert back.shape == (2, 5, 7, 3) and back.dtype == torch.float32 and back.device == torch.device("cpu")
    assert torch.equal(back, rgba[..., :3])
    with pytest.raises(ValueError, match=r"image_a must be an IMAGE of shape \[B, H, W, 3\].*\(5, 7, 3\)"):
        shared.layout.image_to_core(torch.rand(5, 7, 3), "image_a")
    mask = shared.layout.mask_to_core(torch.rand(5, 7))
    assert mask.shape == (1, 1, 5, 7) and shared.layout.mask_from_core(mask).shape == (1, 5, 7)
    with pytest.raises(ValueError, match="MASK"):
        shared.layout.mask_to_core(torch.rand(1, 1, 5, 7))


# ------------------------------------------------------------------ the analogy
def test_one_node_equals_the_core(one_node, vgg, images, core, shared):
    (ap, b, nnf_ab, nnf_ba), updates = one_node
    a, bp = shared.layout.image_to_core(images[0]), shared.layout.image_to_core(images[1])
    with torch.inference_mode():
        ref = core.run_analogy(vgg.net, a, bp, small_config(core), seed=SEED)
    for out in (ap, b):
        assert out.shape == (1, 48, 64, 3) and out.dtype == torch.float32 and out.device == torch.device("cpu")
        assert 0.0 <= out.min() and out.max() <= 1.0
    torch.testing.assert_close(ap, ref.ap.movedim(1, -1), atol=0, rtol=0)
    torch.testing.assert_close(b, ref.b.movedim(1, -1), atol=0, rtol=0)
    assert isinstance(nnf_ab, core.FlowField) and nnf_ab.target_hw == (48, 64) and nnf_ba.target_hw == (48, 64)
    torch.testing.assert_close(nnf_ab.flow, ref.flow_ab, atol=0, rtol=0)
    torch.testing.assert_close(nnf_ba.flow, ref.flow_ba, atol=0, rtol=0)
    total = core.total_work(small_config(core))
    assert updates and updates[-1] == (total, total)
    assert all(v2 >= v1 for (v1, _), (v2, _) in zip(updates, updates[1:]))


def test_step_nodes_repeat_the_one_node_result(one_node, node_classes, vgg, images, core):
    outputs, _ = one_node
    steps = step_by_step(node_classes, vgg, *images, small_config(core), SEED)
    for got, want in zip(steps[:2], outputs[:2]):
        torch.testing.assert_close(got, want, atol=0, rtol=0)
    for got, want in zip(steps[2:], outputs[2:]):
        torch.testing.assert_close(got.flow, want.flow, atol=0, rtol=0)
        assert got.target_hw == want.target_hw


def test_steps_out_of_order_raise_the_core_message(node_classes, vgg, images):
    (state,) = run(node_classes["DeepAnalogy_ExtractFeatures"], vgg=vgg, image_a=images[0], image_bp=images[1],
                   ratio=1.0, min_side=32, max_side=700, max_area=350_000)
    with pytest.raises(ValueError, match="F_A' at relu4_1 is not computed yet"):
        run(node_classes["DeepAnalogy_NNFSearch"], state=state, layer="relu4_1", patch_size=3, iterations=1,
            search_radius=6, seed=0)


def test_batches_pair_and_broadcast(node_classes, vgg, images):
    a, bp = images
    a2 = torch.cat([a, a.flip(2)])
    quick = dict(SMALL, pm_iters=1, lbfgs_iters=1)
    ap, b, nnf_ab, _ = run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=a2, image_bp=bp, **quick)
    assert ap.shape == (2, 48, 64, 3) and b.shape == (2, 48, 64, 3) and nnf_ab.batch == 2
    with pytest.raises(ValueError, match="A has batch 2 and B' has batch 3"):
        run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=a2, image_bp=torch.cat([bp] * 3), **quick)


def test_bad_image_size_is_a_readable_error(node_classes, vgg, images):
    strip = torch.rand(1, 8, 300, 3)
    with pytest.raises(ValueError, match=r"A is 300x8 px: its aspect ratio cannot fit sides in \[32, 700\]"):
        run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=strip, image_bp=images[1], **SMALL)


def test_progress_of_a_step_node(node_classes, vgg, images, comfy, monkeypatch):
    (state,) = run(node_classes["DeepAnalogy_ExtractFeatures"], vgg=vgg, image_a=images[0], image_bp=images[1],
                   ratio=1.0, min_side=32, max_side=700, max_area=350_000)
    updates = []
    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", lambda v, t, p, node_id=None: updates.append((v, t)))
    run(node_classes["DeepAnalogy_NNFSearch"], state=state, layer="relu5_1", patch_size=3, iterations=3,
        search_radius=0, seed=0)
    assert updates == [(i, 6) for i in range(1, 7)]


def test_cancel_stops_at_the_next_check(node_classes, vgg, images, comfy, monkeypatch):
    """ComfyUI's cancel, counted in work units instead of seconds: the interrupt flag is set
    when the bar reaches unit 40 (as the UI sets it between two updates), and the run must
    stop at the next interrupt check, with at most one more unit done."""
    mm = comfy.mm
    long = dict(SMALL, pm_iters=10, lbfgs_iters=100)
    events = []

    def hook(value, total, preview, node_id=None):
        events.append(value)
        if value >= 40 and "flag" not in events:
            mm.interrupt_current_processing(True)
            events.append("flag")

    check = mm.throw_exception_if_processing_interrupted

    def counted_check():
        events.append("check")
        check()

    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", hook)
    monkeypatch.setattr(mm, "throw_exception_if_processing_interrupted", counted_check)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=images[0], image_bp=images[1], **long)
    finally:
        mm.interrupt_current_processing(False)
    after = events[events.index("flag") + 1 :]
    assert after.count("check") == 1 and after[-1] == "check"  # the first check after the flag raised
    assert [v for v in after if v != "check"][-1:] <= [41]


def _retained_tensor_bytes() -> int:
    """Bytes of every tensor storage Python still references (after a garbage collection)."""
    gc.collect()
    storages = {}
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.device.type != "meta":
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def test_repeated_runs_retain_no_tensors(node_classes, vgg, images):
    """Memory measured in bytes of tensors our code keeps, not in resident memory: after a
    warm-up run, three more analogies leave nothing behind."""
    node = node_classes["DeepAnalogy_DeepImageAnalogy"]
    quick = dict(SMALL, pm_iters=1, lbfgs_iters=1)
    run(node, vgg=vgg, image_a=images[0], image_bp=images[1], **quick)
    before = _retained_tensor_bytes()
    for seed in range(3):
        out = run(node, vgg=vgg, image_a=images[0], image_bp=images[1], **dict(quick, seed=seed))
    del out
    assert _retained_tensor_bytes() <= before


def test_out_of_memory_is_reraised_with_advice(node_classes, vgg, images, comfy, pack, monkeypatch):
    import sys

    analogy = sys.modules[f"{pack.__name__}.nodes.analogy"]

    def no_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(analogy, "run_analogy", no_memory)
    with pytest.raises(comfy.mm.OOM_EXCEPTION, match=r"ran out of memory on cpu: lower `ratio`.*Tried to allocate"):
        run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=images[0], image_bp=images[1], **SMALL)

    def no_cpu_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(analogy, "run_analogy", no_cpu_memory)
    with pytest.raises(comfy.mm.OOM_EXCEPTION, match="max_side"):
        run(node_classes["DeepAnalogy_DeepImageAnalogy"], vgg=vgg, image_a=images[0], image_bp=images[1], **SMALL)


@pytest.mark.slow  # bf16 convolutions are slow on CPUs without bf16 units (~40 s here)
def test_bf16_runs_and_stays_close_to_fp32(node_classes, shared, vgg, core):
    """bf16 (autocast) at 48x32 px: finite, near fp32, and the step nodes still repeat the one-node run."""
    a, bp = comfy_image(DEMO / "a.png", (48, 32)), comfy_image(DEMO / "bp.png", (48, 32))
    (model,) = run(node_classes["DeepAnalogy_LoadVGG19"], weights=shared.weights.OFFLINE_WEIGHTS, device="cpu",
                   precision="bf16")
    node = node_classes["DeepAnalogy_DeepImageAnalogy"]
    ap16, _, nnf_ab, _ = run(node, vgg=model, image_a=a, image_bp=bp, **SMALL)
    ap32 = run(node, vgg=vgg, image_a=a, image_bp=bp, **SMALL)[0]
    assert ap16.dtype == torch.float32 and torch.isfinite(ap16).all() and torch.isfinite(nnf_ab.flow).all()
    assert (ap16 - ap32).abs().mean() < 0.1
    steps = step_by_step(node_classes, model, a, bp, small_config(core), SEED)
    torch.testing.assert_close(steps[0], ap16, atol=0, rtol=0)


# ------------------------------------------------------------------------- helpers
def test_load_demo_image(node_classes, comfy):
    node = node_classes["DeepAnalogy_LoadDemoImage"]
    input_dir = Path(comfy.folder_paths.get_input_directory())
    before = sorted(p.name for p in input_dir.iterdir()) if input_dir.exists() else []
    for option, filename in (("demo A (photograph)", "a.png"), ("demo B' (painting)", "bp.png")):
        out = node.execute(image=option)
        (img,) = out.args
        with Image.open(DEMO / filename) as im:
            want = torch.from_numpy(np.asarray(im.convert("RGB")).astype(np.float32) / 255.0)[None]
        torch.testing.assert_close(img, want, atol=1e-6, rtol=0)
        assert out.ui is not None  # the node previews what it loaded
    assert (sorted(p.name for p in input_dir.iterdir()) if input_dir.exists() else []) == before
    with pytest.raises(ValueError, match="image must be one of demo A"):
        node.execute(image="a.png")


def test_load_demo_clip(node_classes, comfy, core):
    """A slow pan and zoom over a demo image, the same on every run. Known answer: the
    still is resized to 1.4 x the frame height (305x260 px to 78x66 for 56x48 frames) and
    the first frame is its window at scale 1 centred on the middle row (offset 11 px) and
    3/8 of the way across the 15 px of room (offset 7.125 px), each pixel the mean of 4
    bilinear samples at ±¼ px: weights (1/8, 3/4, 1/8) down and (1/16, 3/4, 3/16) across."""
    node = node_classes["DeepAnalogy_LoadDemoClip"]
    out = run(node, image="demo A (photograph)", frames=3, width=48, height=56, fps=8.0)
    frames, fps = out
    assert frames.shape == (3, 56, 48, 3) and frames.dtype == torch.float32 and fps == 8.0
    assert 0 <= float(frames.min()) and float(frames.max()) <= 1
    assert node.execute(image="demo A (photograph)", frames=3, width=48, height=56, fps=8.0).ui is not None
    assert torch.equal(run(node, image="demo A (photograph)", frames=3, width=48, height=56, fps=8.0)[0], frames)

    with Image.open(DEMO / "a.png") as im:
        demo = torch.from_numpy(np.asarray(im.convert("RGB")).astype(np.float32) / 255.0).movedim(-1, 0)[None]
    still = torch.nn.functional.interpolate(demo, size=(78, 66), mode="bilinear", antialias=True,
                                            align_corners=False)[0].movedim(0, -1).double()  # [78, 66, 3]
    rows = 0.125 * still[10:66] + 0.75 * still[11:67] + 0.125 * still[12:68]
    want = 0.0625 * rows[:, 6:54] + 0.75 * rows[:, 7:55] + 0.1875 * rows[:, 8:56]
    torch.testing.assert_close(frames[0].double(), want, atol=1e-5, rtol=0)

    # consecutive frames differ by the clip's known motion (the core's backward field)
    motion = core.pan_zoom(demo, frames=3, height=56, width=48).backward
    for t in (1, 2):
        back = motion[t]
        inside = (back[..., 0] >= 0) & (back[..., 0] <= 47) & (back[..., 1] >= 0) & (back[..., 1] <= 55)
        warped = core.sample_bilinear(frames[t - 1 : t].movedim(-1, 1), back.unsqueeze(0))[0].movedim(0, -1)
        moved = (warped - frames[t]).abs().mean(-1)[inside].mean()
        still_diff = (frames[t - 1] - frames[t]).abs().mean(-1)[inside].mean()
        assert moved < 0.015 and still_diff > 5 * moved, (float(moved), float(still_diff))


def test_visualise_nnf(node_classes, one_node, core):
    nnf_ab = one_node[0][2]
    node = node_classes["DeepAnalogy_VisualiseNNF"]
    images = {}
    for mode in ("coordinates", "direction", "middlebury"):
        (img,) = run(node, nnf=nnf_ab, mode=mode, max_flow=0.0)
        assert img.shape == (1, 48, 64, 3) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
        images[mode] = img
    wheel = core.flow_to_colour(nnf_ab, mode="middlebury").movedim(1, -1)
    torch.testing.assert_close(images["middlebury"], wheel, atol=0, rtol=0)


def test_warp_image_and_mask(node_classes, one_node, images, core, shared, caplog):
    nnf_ab = one_node[0][2]
    bp = images[1]
    (warped,) = run(node_classes["DeepAnalogy_WarpImage"], image=bp, nnf=nnf_ab, interpolation="nearest")
    ref = core.warp_by_field(shared.layout.image_to_core(bp), nnf_ab, mode="nearest")
    torch.testing.assert_close(warped, ref.movedim(1, -1), atol=0, rtol=0)
    big = torch.nn.functional.interpolate(bp.movedim(-1, 1), scale_factor=2.0).movedim(1, -1)
    with caplog.at_level("INFO"):
        (resized,) = run(node_classes["DeepAnalogy_WarpImage"], image=big, nnf=nnf_ab, interpolation="bilinear")
    assert resized.shape == (1, 48, 64, 3) and "resizing the image to the target size" in caplog.text
    mask = bp[..., 0]
    (wm,) = run(node_classes["DeepAnalogy_WarpMask"], mask=mask, nnf=nnf_ab, interpolation="nearest")
    assert wm.shape == (1, 48, 64) and torch.equal(wm, warped[..., 0])
    (wm2,) = run(node_classes["DeepAnalogy_WarpMask"], mask=mask[0], nnf=nnf_ab, interpolation="nearest")
    assert torch.equal(wm2, wm)


def test_wls_refine(node_classes, one_node, images):
    a = images[0]
    node = node_classes["DeepAnalogy_WLSRefine"]
    (same,) = run(node, a_prime=a, a=a, smoothness=0.8, alpha=1.0)
    torch.testing.assert_close(same, a, atol=1e-5, rtol=0)
    (refined,) = run(node, a_prime=one_node[0][0], a=a, smoothness=0.8, alpha=1.0)
    assert refined.shape == a.shape and 0 <= refined.min() and refined.max() <= 1
    (unchanged,) = run(node, a_prime=one_node[0][0], a=a, smoothness=0.0, alpha=1.0)
    torch.testing.assert_close(unchanged, one_node[0][0], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="A' is 64x48 px but A is 32x24 px"):
        run(node, a_prime=one_node[0][0], a=a[:, ::2, ::2], smoothness=0.8, alpha=1.0)


def test_wls_refine_with_luminance_edges_is_the_photo_mode(node_classes, one_node, images, core, shared):
    """WLS Refine with edges 'luminance', λ 0.8, α 1 gives what photo2photo's photo mode
    gives for the same vote (``pipeline.finish_photo``), and differs from 'log luminance'."""
    a, voted = images[0], one_node[0][0]
    node = node_classes["DeepAnalogy_WLSRefine"]
    (photo,) = run(node, a_prime=voted, a=a, smoothness=0.8, alpha=1.0, edges="luminance")
    (log,) = run(node, a_prime=voted, a=a, smoothness=0.8, alpha=1.0)
    to_core = shared.layout.image_to_core
    state = core.AnalogyState(a=to_core(a), bp=to_core(a), a_net=to_core(a), bp_net=to_core(a), feat_a={},
                              feat_bp={}, feat_ap={}, feat_b={})
    want, _ = core.finish_photo(state, to_core(voted), to_core(a))
    assert torch.equal(photo, shared.layout.image_from_core(want))
    assert (photo - log).abs().max() > 1e-3
