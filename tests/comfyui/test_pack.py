"""The pack inside a real ComfyUI server: registration, the API copies of the templates
in workflows/api/, agreement with the command line, errors and interruption.

The workflows run on the demo images downscaled to 96x64 px with fewer iterations
(PatchMatch 2, L-BFGS 5, min_side 32), patched into the JSON files at test time: their
Load Demo Image nodes become Load Image nodes of test-owned copies in input/.
(tests/comfyui/test_fresh_install.py runs the templates as they are.)
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from comfy_harness import PromptRejected
from PIL import Image

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows" / "api"
ONE_NODE = "Deep Image Analogy - one node"
STEP_BY_STEP = "Deep Image Analogy - step by step"
FIELDS = "Deep Image Analogy - fields, warps and masks"
WLS = "Deep Image Analogy - WLS refinement"
REGIONS = "Deep Image Analogy - region control"
PACK_MODULE = "custom_nodes.deep_image_analogy"
NODE_IDS = tuple(json.loads((REPO / "tests" / "nodes" / "public_api.json").read_text()))
SIZE = (96, 64)  # (W, H) of the test inputs
SEED = 0
PM_ITERS, LBFGS_ITERS, MIN_SIDE = 2, 5, 32

# Test-owned copies of the inputs; the workflows' Load Demo Image nodes become LoadImage
# nodes of these files.
INPUT_NAMES = {"demo A (photograph)": "dia_test_a.png", "demo B' (painting)": "dia_test_bp.png"}
DEMO_FILES = {"demo A (photograph)": "a.png", "demo B' (painting)": "bp.png"}
STRIP = "dia_test_strip.png"
OUTPUT_PREFIX = "dia_test_"

# The CLI runs in this venv (torch 2.13.0 CPU), ComfyUI in its own (torch 2.14.1), and
# they write PNGs differently (the CLI rounds, SaveImage truncates), so values may be
# one level apart. Measured here: max 1 level, mean 0.34 level (34% of values off by
# one). Allowed: max 2 levels per value, mean 0.6 level.
MAX_LEVELS, MEAN_LEVELS = 2, 0.6


# ------------------------------------------------------------------------ helpers
def load_workflow(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def patch(workflow: dict, class_type: str, **values) -> dict:
    """Set ``values`` on every node of ``class_type`` (only inputs the node has)."""
    found = False
    for node in workflow.values():
        if node["class_type"] == class_type:
            found = True
            node["inputs"].update({k: v for k, v in values.items() if k in node["inputs"]})
    assert found, f"no {class_type} node in the workflow"
    return workflow


def small(workflow: dict, tag: str) -> dict:
    """The test-size version of a workflow, saving under a unique prefix."""
    wf = copy.deepcopy(workflow)
    classes = {n["class_type"] for n in wf.values()}
    if "DeepAnalogy_DeepImageAnalogy" in classes:
        patch(wf, "DeepAnalogy_DeepImageAnalogy", seed=SEED, pm_iters=PM_ITERS, lbfgs_iters=LBFGS_ITERS,
              min_side=MIN_SIDE)
    if "DeepAnalogy_ExtractFeatures" in classes:
        patch(wf, "DeepAnalogy_ExtractFeatures", min_side=MIN_SIDE)
        patch(wf, "DeepAnalogy_NNFSearch", iterations=PM_ITERS, seed=SEED)
        patch(wf, "DeepAnalogy_FeatureDeconvolution", iterations=LBFGS_ITERS)
    for node in wf.values():
        if node["class_type"] == "SaveImage":
            name = node["inputs"]["filename_prefix"].rsplit("/", 1)[-1]
            node["inputs"]["filename_prefix"] = f"{OUTPUT_PREFIX}{tag}_{uuid.uuid4().hex[:8]}/{name}"
        if node["class_type"] == "DeepAnalogy_LoadDemoImage":
            node["class_type"] = "LoadImage"
            node["inputs"] = {"image": INPUT_NAMES[node["inputs"]["image"]]}
    return wf


def node_id(workflow: dict, class_type: str, **inputs) -> str:
    ids = [k for k, n in workflow.items() if n["class_type"] == class_type
           and all(n["inputs"].get(name) == value for name, value in inputs.items())]
    assert len(ids) == 1, f"{class_type} {inputs}: {ids}"
    return ids[0]


def saved(server, entry: dict, save_id: str) -> np.ndarray:
    (path,) = server.output_images(entry, save_id)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def run_ok(server, workflow: dict, timeout: float = 600) -> dict:
    entry = server.run(workflow, timeout=timeout)
    assert server.status_str(entry) == "success", server.execution_error(entry) or server.messages(entry)
    return entry


def assert_close_levels(got: np.ndarray, want: np.ndarray, max_levels: int, mean_levels: float, what: str) -> None:
    assert got.shape == want.shape, f"{what}: {got.shape} vs {want.shape}"
    diff = np.abs(got - want)
    assert diff.max() <= max_levels and diff.mean() <= mean_levels, (
        f"{what}: max difference {diff.max()} levels, mean {diff.mean():.3f} "
        f"(allowed {max_levels}, {mean_levels}); {np.mean(diff > 0) * 100:.1f}% of values differ"
    )


# ------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def inputs(comfy_server, tmp_path_factory):
    """The demo images at 96x64 px in ComfyUI's input/ and in a temp dir for the CLI;
    removed afterwards, with everything the tests saved in output/."""
    here = tmp_path_factory.mktemp("inputs")
    files = {}
    for role, demo_name in (("a", "demo A (photograph)"), ("bp", "demo B' (painting)")):
        with Image.open(REPO / "demo" / DEMO_FILES[demo_name]) as im:
            small_im = im.convert("RGB").resize(SIZE, Image.Resampling.LANCZOS)
        small_im.save(comfy_server.input_dir / INPUT_NAMES[demo_name])
        small_im.save(here / f"{role}.png")
        files[role] = here / f"{role}.png"
    Image.new("RGB", (300, 8), (90, 120, 200)).save(comfy_server.input_dir / STRIP)
    yield files
    for name in [*INPUT_NAMES.values(), STRIP]:
        (comfy_server.input_dir / name).unlink(missing_ok=True)
    for folder in comfy_server.output_dir.glob(f"{OUTPUT_PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cli_output(inputs, tmp_path_factory) -> dict[str, np.ndarray]:
    """The command line's A' and B for the same inputs and settings (this venv, torch 2.13)."""
    out = tmp_path_factory.mktemp("cli")
    cmd = [sys.executable, "-m", "analogy_core", str(inputs["a"]), str(inputs["bp"]), "--out", str(out),
           "--preset", "photo2style", "--seed", str(SEED), "--pm-iters", str(PM_ITERS),
           "--lbfgs-iters", str(LBFGS_ITERS), "--min-side", str(MIN_SIDE), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    result = {}
    for name in ("a_prime", "b"):
        with Image.open(out / f"{name}.png") as im:
            result[name] = np.asarray(im.convert("RGB")).astype(np.int16)
    return result


@pytest.fixture(scope="module")
def one_node_output(comfy_server, inputs) -> dict[str, np.ndarray]:
    wf = small(load_workflow(ONE_NODE), "one")
    entry = run_ok(comfy_server, wf)
    analogy = node_id(wf, "DeepAnalogy_DeepImageAnalogy")
    ids = {wf[k]["inputs"]["images"][1]: k for k, n in wf.items()
           if n["class_type"] == "SaveImage" and n["inputs"]["images"][0] == analogy}
    return {"a_prime": saved(comfy_server, entry, ids[0]), "b": saved(comfy_server, entry, ids[1])}


# --------------------------------------------------------------------------- tests
def test_every_node_is_registered_by_the_pack(comfy_server):
    failures = [ln for ln in comfy_server.log_text().splitlines()
                if ("IMPORT FAILED" in ln or "Cannot import" in ln) and "deep_image_analogy" in ln]
    assert not failures, "\n".join(failures)
    for nid in NODE_IDS:
        info = comfy_server.object_info(nid)
        assert info is not None, f"{nid} missing from /object_info"
        assert info["python_module"] == PACK_MODULE
        assert info["category"].startswith("image/analogy")
        for group in ("required", "optional"):
            for name, spec in info["input"].get(group, {}).items():
                assert spec[1].get("tooltip"), f"{nid}.{name} has no tooltip in /object_info"
    loader = comfy_server.object_info("DeepAnalogy_LoadVGG19")
    weights = loader["input"]["required"]["weights"]
    options = weights[1]["options"] if weights[0] == "COMBO" else weights[0]
    assert options[0].startswith("offline default")


def test_workflow_files_only_use_known_nodes(comfy_server):
    known = set(comfy_server.object_info())
    for path in sorted(WORKFLOWS.glob("*.json")):
        for nid, node in json.loads(path.read_text()).items():
            assert node["class_type"] in known, f"{path.name} node {nid}: unknown {node['class_type']}"


def test_demo_images_load_from_the_pack_and_nothing_is_copied_to_input(comfy_server):
    """The templates' Load Demo Image nodes read demo/ inside the pack; input/ stays as it was."""
    before = sorted(p.name for p in comfy_server.input_dir.iterdir())
    tag = uuid.uuid4().hex[:8]
    prompt = {}
    for i, option in enumerate(DEMO_FILES, start=1):
        prompt[str(i)] = {"class_type": "DeepAnalogy_LoadDemoImage", "inputs": {"image": option}}
        prompt[str(10 + i)] = {"class_type": "SaveImage",
                               "inputs": {"images": [str(i), 0], "filename_prefix": f"{OUTPUT_PREFIX}demo_{tag}/{i}"}}
    entry = run_ok(comfy_server, prompt, timeout=120)
    for i, (option, filename) in enumerate(DEMO_FILES.items(), start=1):
        with Image.open(REPO / "demo" / filename) as im:
            want = np.asarray(im.convert("RGB")).astype(np.int16)
        assert_close_levels(saved(comfy_server, entry, str(10 + i)), want, 1, 1.0, option)
        assert entry["outputs"][str(i)]["images"][0]["type"] == "temp"  # the node's own preview
    assert sorted(p.name for p in comfy_server.input_dir.iterdir()) == before
    shutil.rmtree(comfy_server.output_dir / f"{OUTPUT_PREFIX}demo_{tag}", ignore_errors=True)


def test_one_node_matches_the_cli(one_node_output, cli_output):
    for name in ("a_prime", "b"):
        assert one_node_output[name].shape == (SIZE[1], SIZE[0], 3)
        assert_close_levels(one_node_output[name], cli_output[name], MAX_LEVELS, MEAN_LEVELS, name)


def test_visualise_and_warp_workflow(comfy_server, inputs, one_node_output):
    wf = small(load_workflow(FIELDS), "vis")
    entry = run_ok(comfy_server, wf)
    saves = [k for k, n in wf.items() if n["class_type"] == "SaveImage"]
    assert len(saves) == 4
    for k in saves:
        img = saved(comfy_server, entry, k)
        assert img.shape == (SIZE[1], SIZE[0], 3), wf[k]["_meta"]["title"]
    mask_img = saved(comfy_server, entry, node_id(wf, "SaveImage", images=[node_id(wf, "MaskToImage"), 0]))
    warped = saved(comfy_server, entry, node_id(wf, "SaveImage", images=[node_id(wf, "DeepAnalogy_WarpImage"), 0]))
    # the warped red-channel mask is the red channel of nearest-warped B', bilinear here: close
    assert np.abs(mask_img[..., 0] - warped[..., 0]).mean() < 20
    assert (mask_img[..., 0] == mask_img[..., 1]).all()


def test_wls_refine_workflow(comfy_server, inputs, one_node_output):
    wf = small(load_workflow(WLS), "wls")
    assert wf[node_id(wf, "DeepAnalogy_DeepImageAnalogy")]["inputs"]["preset"] == "photo2style"  # cached from one_node
    entry = run_ok(comfy_server, wf)
    refined = saved(comfy_server, entry, node_id(wf, "SaveImage", images=[node_id(wf, "DeepAnalogy_WLSRefine"), 0]))
    assert refined.shape == (SIZE[1], SIZE[0], 3)


def test_region_control_workflow(comfy_server, inputs):
    """The template's limit keeps A outside its mask (x 15–85 %, y 0–65 % of the image) and
    changes it inside; its face-to-face guide runs through Region Pairs."""
    wf = small(load_workflow(REGIONS), "regions")
    analogy = node_id(wf, "DeepAnalogy_DeepImageAnalogy")
    assert wf[analogy]["inputs"]["guide"] == [node_id(wf, "DeepAnalogy_RegionPairs"), 0]
    entry = run_ok(comfy_server, wf)
    ap = saved(comfy_server, entry, node_id(wf, "SaveImage", images=[analogy, 0]))
    with Image.open(inputs["a"]) as im:
        a = np.asarray(im.convert("RGB")).astype(np.int16)
    w, h = SIZE
    outside = np.ones((h, w), bool)
    outside[: int(0.65 * h) + 1, int(0.15 * w) - 1 : int(0.85 * w) + 1] = False
    assert np.abs(ap - a)[outside].max() <= 1  # A exactly (SaveImage truncates to 8 bits)
    inside = np.abs(ap - a)[8 : int(0.65 * h) - 8, int(0.15 * w) + 8 : int(0.85 * w) - 8]
    assert inside.mean() > 10


def test_step_by_step_equals_one_node(comfy_server, one_node_output):
    wf = small(load_workflow(STEP_BY_STEP), "steps")
    assert sum(n["class_type"] == "DeepAnalogy_NNFSearch" for n in wf.values()) == 5
    assert sum(n["class_type"] == "DeepAnalogy_FeatureDeconvolution" for n in wf.values()) == 4
    assert sum(n["class_type"] == "DeepAnalogy_FeatureFusion" for n in wf.values()) == 4
    entry = run_ok(comfy_server, wf)
    vote = node_id(wf, "DeepAnalogy_PatchVoteReconstruction")
    for index, name in ((0, "a_prime"), (1, "b")):
        save = node_id(wf, "SaveImage", images=[vote, index])
        # same code, same torch, same seed: identical up to nothing at all
        assert_close_levels(saved(comfy_server, entry, save), one_node_output[name], 0, 0.0, name)


def test_bad_search_radius_is_rejected_with_our_message(comfy_server, inputs):
    wf = small(load_workflow(STEP_BY_STEP), "bad_radius")
    bad = node_id(wf, "DeepAnalogy_NNFSearch", layer="relu3_1")
    wf[bad]["inputs"]["search_radius"] = 0
    with pytest.raises(PromptRejected) as info:
        comfy_server.queue(wf)
    assert info.value.status == 400
    details = [e.get("details", "") for e in info.value.node_errors[bad]["errors"]]
    assert any("search_radius 0 (global search) is only allowed at relu5_1" in d for d in details), details


def test_image_too_small_fails_with_our_message(comfy_server, inputs):
    wf = small(load_workflow(ONE_NODE), "strip")
    wf[node_id(wf, "LoadImage", image=INPUT_NAMES["demo A (photograph)"])]["inputs"]["image"] = STRIP
    entry = comfy_server.run(wf, timeout=300)
    assert comfy_server.status_str(entry) == "error"
    error = comfy_server.execution_error(entry)
    assert error is not None, comfy_server.messages(entry)
    assert error["node_type"] == "DeepAnalogy_DeepImageAnalogy"
    assert error["exception_type"] == "ValueError"
    assert error["exception_message"].startswith("A is 300x8 px: its aspect ratio cannot fit sides in [32, 700]")


def test_interrupt_stops_a_long_analogy(comfy_server, inputs, one_node_output):
    """/interrupt ends the run inside our node with ComfyUI's "interrupted" status. The loaders
    are cached by a short run of the same graph just before (ComfyUI checks for an interrupt
    before every node it executes, so an uncached LoadImage would take it), so only the
    analogy runs; /interrupt is repeated until the prompt ends, so it lands inside the
    analogy however the machine is loaded. How soon it stops is counted in work units in
    tests/nodes; wall-clock figures are in ``python -m bench.latency``."""
    wf = small(load_workflow(ONE_NODE), "interrupt")
    assert comfy_server.status_str(comfy_server.run(wf, timeout=300)) == "success"
    # full iterations: minutes of work on this machine if not stopped
    patch(wf, "DeepAnalogy_DeepImageAnalogy", pm_iters=10, lbfgs_iters=100, seed=12345)
    prompt_id = comfy_server.queue(wf)
    entry = None
    for _ in range(1200):  # a generous smoke bound: 10 minutes
        entry = comfy_server.history(prompt_id)
        if entry is not None:
            break
        if prompt_id in [item[1] for item in comfy_server.get_json("/queue").get("queue_running", [])]:
            comfy_server.interrupt()
        time.sleep(0.5)
    assert entry is not None, "the analogy did not stop after /interrupt"
    assert comfy_server.status_str(entry) == "error"
    interrupted = [data for name, data in comfy_server.messages(entry) if name == "execution_interrupted"]
    assert interrupted, comfy_server.messages(entry)
    assert interrupted[0]["node_type"] == "DeepAnalogy_DeepImageAnalogy"  # stopped inside our node
    assert comfy_server.execution_error(entry) is None


def _server_rss_bytes(server) -> int:
    """Resident memory of the ComfyUI server process, from /proc."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("VmRSS not found")


def test_five_queued_analogies_complete(comfy_server, inputs):
    """Five small analogies queued at once all succeed. What our code retains between runs is
    measured exactly, in tensor bytes, in tests/nodes; the server's resident memory (which the
    allocator and ComfyUI's caches also move) only gets a generous smoke bound here."""
    warm = small(load_workflow(ONE_NODE), "load_warm")
    patch(warm, "DeepAnalogy_DeepImageAnalogy", seed=99)
    run_ok(comfy_server, warm)
    before = _server_rss_bytes(comfy_server)
    ids = []
    for i in range(5):
        wf = small(load_workflow(ONE_NODE), f"load{i}")
        patch(wf, "DeepAnalogy_DeepImageAnalogy", seed=100 + i)
        ids.append(comfy_server.queue(wf))
    for prompt_id in ids:
        entry = comfy_server.wait(prompt_id, timeout=600)
        assert comfy_server.status_str(entry) == "success", comfy_server.execution_error(entry)
    after = _server_rss_bytes(comfy_server)
    logger.info("server RSS %.0f MB before, %.0f MB after 5 queued analogies", before / 2**20, after / 2**20)
    assert after - before < 2**30, f"RSS grew by {(after - before) / 2**20:.0f} MB"
