"""Fixtures for tests that run the pack inside a real ComfyUI server.

Set up ComfyUI first with ``bash scripts/setup_comfyui.sh``. Without it these
tests are skipped, unless ``DIA_REQUIRE_COMFYUI`` is set (as CI does), in which
case they fail.

Every test in this folder is marked ``slow`` and ``comfyui``:
``pytest -m "not slow"`` leaves them out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
# The harness lives in scripts/comfy_harness (the workflow scripts use it too); tests
# import it as `from comfy_harness import ...` under any --import-mode.
_SCRIPTS = str(_HERE.parents[1] / "scripts")
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from comfy_harness import ComfyInstall, ComfyServer  # noqa: E402

_START_TIMEOUT = float(os.environ.get("DIA_COMFYUI_START_TIMEOUT", "120"))


def _require_comfyui() -> bool:
    value = os.environ.get("DIA_REQUIRE_COMFYUI", "").strip().lower()
    return value not in ("", "0", "false", "no")


def pytest_collection_modifyitems(config, items):
    # A pytestmark in conftest.py applies to nothing, so mark items here.
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.comfyui)


@pytest.fixture(scope="session")
def comfy_install() -> ComfyInstall:
    install = ComfyInstall.default()
    missing = install.missing()
    if missing:
        reason = (
            f"ComfyUI is not set up in {install.home} (missing: {'; '.join(missing)}); "
            "run `bash scripts/setup_comfyui.sh`"
        )
        if _require_comfyui():
            pytest.fail(f"DIA_REQUIRE_COMFYUI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    install.ensure_pack_link()
    return install


@pytest.fixture(scope="session")
def comfy_server(comfy_install: ComfyInstall):
    """A ComfyUI server (CPU, 127.0.0.1, free port) shared by the whole session.

    Its log is ``<comfy home>/logs/server.log``.
    """
    log_path = comfy_install.home / "logs" / "server.log"
    server = ComfyServer(comfy_install, log_path=log_path)
    server.start(timeout=_START_TIMEOUT)
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test that used the server, attach the server log's tail."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    server = item.funcargs.get("comfy_server") if hasattr(item, "funcargs") else None
    if isinstance(server, ComfyServer):
        report.sections.append(
            ("ComfyUI server log (tail)", f"{server.log_path}\n{server.log_tail(80)}")
        )
