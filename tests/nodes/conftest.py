"""Fixtures for calling the node classes directly, with ComfyUI's real modules.

ComfyUI's source comes from ``scripts/setup_comfyui.sh`` (``<repo>/.comfyui/ComfyUI``,
or ``$DIA_COMFYUI_HOME/ComfyUI``); only its Python files are used, in this venv. Its
``comfy_api`` needs a few small packages besides torch: ``pip install av psutil pyyaml
tqdm einops`` (the ``comfyui-test`` extra in pyproject.toml). Without the source or those
packages the tests here are skipped with the reason, unless ``DIA_REQUIRE_COMFYUI`` is
set (CI), in which case they fail.

Everything is set up lazily in session fixtures: ComfyUI's folder goes on ``sys.path``
and ``--cpu`` is set before ``comfy.model_management`` is first imported, so nothing
happens when only the core tests run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
PACK = "deep_image_analogy"  # the folder name under custom_nodes/, as scripts/setup_comfyui.sh links it
EXTRA_PACKAGES = "av psutil pyyaml tqdm einops"


def _comfy_dir() -> Path:
    home = os.environ.get("DIA_COMFYUI_HOME")
    return (Path(home) if home else REPO / ".comfyui") / "ComfyUI"


def _unavailable(reason: str) -> None:
    if os.environ.get("DIA_REQUIRE_COMFYUI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"DIA_REQUIRE_COMFYUI is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def comfy() -> types.SimpleNamespace:
    """ComfyUI's modules the pack uses, imported from the real source in CPU mode."""
    comfy_dir = _comfy_dir()
    if not (comfy_dir / "comfy_api" / "latest" / "__init__.py").is_file():
        _unavailable(f"ComfyUI's source is not in {comfy_dir}; run `bash scripts/setup_comfyui.sh`")
    if "comfy.model_management" in sys.modules:
        pytest.fail("comfy.model_management was imported before the node tests could select --cpu", pytrace=False)
    if str(comfy_dir) not in sys.path:
        sys.path.insert(0, str(comfy_dir))
    try:
        from comfy.cli_args import args

        args.cpu = True  # as `main.py --cpu`: must precede comfy.model_management
        args.disable_api_nodes = True
        import comfy.model_management
        import comfy.utils
        import folder_paths
        from comfy_api.latest import io
    except ImportError as e:
        _unavailable(
            f"ComfyUI's modules do not import in this venv ({e}); install `pip install {EXTRA_PACKAGES}`"
        )
    return types.SimpleNamespace(
        dir=comfy_dir, args=args, mm=comfy.model_management, utils=comfy.utils, folder_paths=folder_paths, io=io
    )


@pytest.fixture(scope="session")
def pack(comfy: types.SimpleNamespace) -> types.ModuleType:
    """The pack imported the way ComfyUI imports a custom-node folder (a package from its
    ``__init__.py``, so the relative imports resolve)."""
    if PACK in sys.modules:
        return sys.modules[PACK]
    spec = importlib.util.spec_from_file_location(
        PACK, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def node_classes(pack: types.ModuleType) -> dict[str, type]:
    """Node id → class, from the pack's ``comfy_entrypoint`` as ComfyUI calls it."""
    extension = asyncio.run(pack.comfy_entrypoint())
    classes = asyncio.run(extension.get_node_list())
    return {cls.GET_SCHEMA().node_id: cls for cls in classes}


@pytest.fixture(scope="session")
def shared(pack: types.ModuleType) -> types.SimpleNamespace:
    """The pack's shared node modules by concern: ``types``, ``layout``, ``run``,
    ``weights`` and ``settings`` (``nodes._types`` …)."""
    names = ("types", "layout", "run", "weights", "settings")
    return types.SimpleNamespace(**{name: sys.modules[f"{PACK}.nodes._{name}"] for name in names})


@pytest.fixture(scope="session")
def core(pack: types.ModuleType) -> types.ModuleType:
    """The core as the pack imports it (``deep_image_analogy.analogy_core``)."""
    return sys.modules[f"{PACK}.analogy_core"]


@pytest.fixture(scope="module")
def vgg(node_classes: dict[str, type], shared: types.SimpleNamespace) -> object:
    """The model from Load VGG19 (offline default, fp32), as a workflow passes it on."""
    with torch.inference_mode():
        out = node_classes["DeepAnalogy_LoadVGG19"].execute(weights=shared.weights.OFFLINE_WEIGHTS, device="auto",
                                                            precision="fp32")
    return out.args[0]
