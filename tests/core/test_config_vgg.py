from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from analogy_core import (
    DEFAULT_PRESET,
    PRESETS,
    AnalogyConfig,
    describe_preset,
    get_preset,
    limited_size,
    load_vgg19,
    preset_values,
    resolve_config,
    same_settings,
)
from analogy_core.config import FAST_LBFGS_ITERS, FAST_PM_ITERS
from analogy_core.vgg import VGG19


def test_presets_hold_the_authors_values():
    paper = get_preset("paper")
    assert paper.alphas[1:] == (0.8, 0.7, 0.6, 0.1) and paper.mask == "sigmoid"
    assert get_preset("level1").alphas == (1.0, 0.7, 0.6, 0.5, 0.0)
    assert get_preset("level3").alphas == (1.0, 0.9, 0.8, 0.7, 0.2)
    assert get_preset("style2photo").ratio == 0.5 and get_preset("style2photo").alphas == get_preset("level2").alphas
    assert get_preset("photo2photo").ratio == 1.0
    for preset in PRESETS.values():
        cfg = preset.config
        assert cfg.patch_sizes == (3, 3, 3, 5, 5) and cfg.search_radii == (None, 6, 6, 4, 4)
        assert cfg.kappa == 300 and cfg.tau == 0.05
    # the paper's iteration counts in "paper"; the quality-guarded fast ones elsewhere
    assert paper.pm_iters == 10 and paper.lbfgs_iters == 100
    for name in PRESETS:
        if name != "paper":
            cfg = get_preset(name)
            assert (cfg.pm_iters, cfg.lbfgs_iters) == (FAST_PM_ITERS, FAST_LBFGS_ITERS), name


def test_one_default_preset_and_identical_presets_say_so():
    assert DEFAULT_PRESET == "photo2style" and DEFAULT_PRESET in PRESETS
    assert same_settings("level3") == ["photo2style"]
    assert same_settings("paper") == [] and "same settings" not in describe_preset("paper")
    for name in PRESETS:
        for twin in same_settings(name):
            assert twin in describe_preset(name) and name in describe_preset(twin)
    assert describe_preset("style2photo").startswith("painting A, photo B': α 1.0/0.8/0.7/0.6/0.1")
    assert preset_values("ratio") == "1.0; photo2style_face, style2photo: 0.5"


def test_resolve_config_keeps_the_preset_for_none():
    assert resolve_config() is get_preset(DEFAULT_PRESET)
    assert resolve_config("paper", pm_iters=None, ratio=None) is get_preset("paper")
    cfg = resolve_config("style2photo", lbfgs_iters=0, alphas=(1.0, 0.5, 0.5, 0.5, 0.5), max_area=None)
    assert cfg.lbfgs_iters == 0 and cfg.alphas[1] == 0.5 and cfg.ratio == 0.5 and cfg.max_area == 350_000
    with pytest.raises(ValueError, match="unknown setting.*iterations; the settings are alphas"):
        resolve_config("paper", iterations=3)
    with pytest.raises(ValueError, match="need 16 <= min_side <= max_side"):
        resolve_config("paper", min_side=900)


def test_config_validation_messages():
    with pytest.raises(ValueError, match="alphas needs 5 values"):
        AnalogyConfig(alphas=(1.0, 0.5))
    with pytest.raises(ValueError, match="ratio must lie in"):
        resolve_config("paper", ratio=1.5)
    with pytest.raises(ValueError, match="unknown preset 'nope'; choose one of"):
        get_preset("nope")


def test_size_limits():
    assert limited_size(1400, 900, min_side=200, max_side=700, max_area=350_000) == (700, 450)
    assert limited_size(100, 150, min_side=200, max_side=700, max_area=350_000) == (200, 300)
    assert limited_size(400, 600, min_side=200, max_side=700, max_area=350_000) == (400, 600)
    h, w = limited_size(700, 700, min_side=200, max_side=700, max_area=350_000)
    assert h * w <= 350_000 * 1.001
    with pytest.raises(ValueError, match="aspect ratio"):
        limited_size(100, 2000, min_side=200, max_side=700, max_area=350_000)


def test_offline_weights_load_and_give_sane_features(vgg):
    assert vgg.convention.name == "caffe"
    feats = vgg.extract(torch.rand(1, 3, 64, 48, device=next(vgg.parameters()).device))
    shapes = {k: tuple(v.shape) for k, v in feats.items()}
    assert shapes == {
        "relu1_1": (1, 64, 64, 48), "relu2_1": (1, 128, 32, 24), "relu3_1": (1, 256, 16, 12),
        "relu4_1": (1, 512, 8, 6), "relu5_1": (1, 512, 4, 3),
    }
    assert all(v.min() >= 0 and v.max() > 0 for v in feats.values())


def test_torchvision_and_safetensors_layouts_load(tmp_path, vgg):
    from safetensors.torch import save_file

    sd = {k: v.cpu().clone() for k, v in vgg.state_dict().items()}
    sd["features.30.weight"] = torch.zeros(1)  # extra keys of the full network are ignored
    torch.save(sd, tmp_path / "tv.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "tv.safetensors"))
    for name in ("tv.pth", "tv.safetensors"):
        net = load_vgg19(tmp_path / name)
        assert net.convention.name == "torchvision"
        assert torch.equal(net.features[0].weight, sd["features.0.weight"])


def test_bad_weight_files_get_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_vgg19(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth: cannot be read"):
        load_vgg19(tmp_path / "junk.pth")
    vgg16 = {f"features.{i}.weight": torch.zeros(1) for i in (0, 2, 5)}
    torch.save(vgg16, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a VGG19 checkpoint"):
        load_vgg19(tmp_path / "other.pth")
    sd = VGG19().state_dict()
    sd["features.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(sd, tmp_path / "nan.pth")
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_vgg19(tmp_path / "nan.pth")


def test_pickle_that_runs_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, ("open('/tmp/dia_pwned', 'w').write('x')",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"features.0.weight": Evil()}))
    with pytest.raises(ValueError, match="evil.pth: cannot be read as a weights-only checkpoint"):
        load_vgg19(tmp_path / "evil.pth")


def test_core_never_imports_comfyui():
    code = "import sys, analogy_core, analogy_core.__main__, analogy_core.cli; print([m for m in sys.modules if m.startswith(('comfy', 'folder_paths', 'server', 'nodes'))])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
