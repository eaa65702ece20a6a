"""Registry metadata (pyproject.toml) and what the registry archive ships (.comfyignore).

The rules are the Comfy registry's, as comfy-cli applies them when it publishes
(``comfy_cli/registry/config_parser.py``, ``file_utils.zip_files``): the node name, a
semver version, ``[tool.comfy] requires-comfyui`` as ``[operator]X.Y.Z`` parts, OS and
accelerator classifiers from fixed lists, and an archive of the git-tracked files minus
those ``.comfyignore`` matches (gitignore syntax via pathspec's "gitwildmatch").
"""

from __future__ import annotations

import re
import subprocess
import warnings
from pathlib import Path

import pytest
from PIL import Image

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT, COMFY = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]

# What a ComfyUI user needs, as path patterns; everything shipped must be one of these.
SHIPPED_PATTERNS = (
    r"__init__\.py", r"install\.py", r"requirements\.txt", r"pyproject\.toml", r"LICENSE", r"README\.md",
    r"analogy_core/[^/]+\.py", r"nodes/[^/]+\.py", r"web/[^/]+\.js", r"workflows/[^/]+\.(json|jpg)",
    r"demo/[^/]+\.png",
)
NEEDED = ("__init__.py", "install.py", "requirements.txt", "pyproject.toml", "LICENSE", "demo/a.png", "demo/bp.png")


def shipped_files() -> list[str]:
    """The files ``comfy node pack`` would put in the archive: git's files minus .comfyignore."""
    pathspec = pytest.importorskip("pathspec")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    patterns = [line.strip() for line in (REPO / ".comfyignore").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    with warnings.catch_warnings():  # the pattern style comfy-cli uses; newer pathspec calls it deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        spec = pathspec.PathSpec.from_lines("gitwildmatch", patterns)
    return sorted(f for f in set(listed) if (REPO / f).is_file() and not spec.match_file(f))


def test_the_archive_ships_what_users_need_and_nothing_for_developers() -> None:
    shipped = shipped_files()
    unexpected = [f for f in shipped if not any(re.fullmatch(p, f) for p in SHIPPED_PATTERNS)]
    assert not unexpected, f"shipped to users but not needed by them (add to .comfyignore?): {unexpected}"
    assert set(NEEDED) <= set(shipped)
    for folder in ("analogy_core", "nodes"):
        tracked = sorted(str(p.relative_to(REPO)) for p in (REPO / folder).glob("*.py"))
        assert set(tracked) <= set(shipped), f"{folder}/ not shipped whole"
    templates = sorted(p.name for p in (REPO / "workflows").glob("*.json"))
    assert templates and {f"workflows/{t}" for t in templates} <= set(shipped)
    assert not [f for f in shipped if f.startswith(("tests/", "bench/", "docs/", "scripts/", "workflows/api/"))]
    size = sum((REPO / f).stat().st_size for f in shipped)
    assert size < 3 * 2**20, f"the archive would hold {size / 2**20:.1f} MiB"


def test_project_table_follows_the_registry_rules() -> None:
    name = PROJECT["name"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name) and len(name) < 100
    assert "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"])
    assert PROJECT["license"] == {"file": "LICENSE"} and (REPO / "LICENSE").is_file()
    os_values = [c.removeprefix("Operating System :: ") for c in PROJECT["classifiers"]
                 if c.startswith("Operating System :: ")]
    assert os_values and all(v.startswith(("Microsoft", "POSIX", "MacOS", "OS Independent")) for v in os_values)
    accelerators = {c.removeprefix("Environment :: ") for c in PROJECT["classifiers"] if c.startswith("Environment ::")}
    assert accelerators <= {"GPU :: NVIDIA CUDA", "GPU :: AMD ROCm", "GPU :: Intel Arc", "NPU :: Huawei Ascend",
                            "GPU :: Apple Metal"}
    urls = PROJECT["urls"]
    for key in ("Repository", "Documentation", "Bug Tracker", "Issues"):
        assert urls[key].startswith("https://" + urls["Repository"].removeprefix("https://")), key


def test_tool_comfy_table() -> None:
    assert COMFY["PublisherId"] and COMFY["DisplayName"]
    requires = COMFY["requires-comfyui"]
    assert all(re.fullmatch(r"(==|>=|<=|!=|~=|>|<|<>|=)?\s*\d+\.\d+\.\d+(-[a-zA-Z0-9]+)?", part.strip())
               for part in requires.split(","))
    # the oldest version claimed is the one the tests run on (scripts/setup_comfyui.sh installs it)
    setup = (REPO / "scripts" / "setup_comfyui.sh").read_text()
    assert "carries ComfyUI 0.3.75" in setup
    assert requires == ">=0.3.75"
    version_file = REPO / ".comfyui" / "ComfyUI" / "comfyui_version.py"
    if version_file.is_file():
        assert f'"{requires.removeprefix(">=")}"' in version_file.read_text()


def test_icon_is_ours_square_and_small() -> None:
    prefix = "https://raw.githubusercontent.com/" + PROJECT["urls"]["Repository"].removeprefix("https://github.com/")
    icon_url = COMFY["Icon"]
    assert icon_url.startswith(prefix + "/main/")
    icon = REPO / icon_url.removeprefix(prefix + "/main/")
    assert icon.is_file() and icon.stat().st_size < 100_000
    with Image.open(icon) as im:
        assert im.format == "PNG" and im.width == im.height <= 400
