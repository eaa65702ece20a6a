"""The pack's entry point (the repository's __init__.py) where ComfyUI lacks comfy_api."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMPORT_PACK = (
    "import importlib.util, logging, sys, types\n"
    "logging.basicConfig(format='%(levelname)s %(message)s')\n"
    "{setup}\n"
    "spec = importlib.util.spec_from_file_location('deep_image_analogy', {init!r}, "
    "submodule_search_locations=[{repo!r}])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "print('comfy_entrypoint' in dir(module))\n"
)


def _import_pack(setup: str) -> subprocess.CompletedProcess[str]:
    code = IMPORT_PACK.format(setup=setup, init=str(REPO / "__init__.py"), repo=str(REPO))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env={})


def test_an_old_comfyui_gets_one_error_line():
    done = _import_pack("sys.modules['folder_paths'] = types.ModuleType('folder_paths')")
    assert done.returncode == 0 and done.stdout.strip() == "False"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR Deep Image Analogy needs ComfyUI's V3 node API"), lines


def test_outside_comfyui_the_import_is_silent():
    done = _import_pack("")
    assert done.returncode == 0 and done.stdout.strip() == "False" and done.stderr == ""
