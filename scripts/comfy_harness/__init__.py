"""A real ComfyUI server and a headless Chromium, driven with the standard library only.

Used by the tests in tests/comfyui (their conftest puts scripts/ on ``sys.path``) and by
the workflow scripts in scripts/ (which Python runs with scripts/ on ``sys.path``).
"""

from __future__ import annotations

from .browser import BrowserError, Chromium, ComfyPage, find_chromium
from .server import ComfyError, ComfyInstall, ComfyServer, PromptRejected

__all__ = [
    "BrowserError", "Chromium", "ComfyError", "ComfyInstall", "ComfyPage", "ComfyServer", "PromptRejected",
    "find_chromium",
]
