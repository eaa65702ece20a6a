"""The core's edges: image files, the device a run uses, and the peak memory it took.

The command line, the benchmarks, the scripts and the tests all read and write images
here, so that every front end outside ComfyUI sees the same pixels. Pillow is imported
only when an image is read or written; ``resource`` (Unix) and ``psutil`` are optional.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._check import check_shape

try:  # Unix only: the CLI must still start on Windows
    import resource
except ImportError:  # pragma: no cover - exercised on Windows
    resource = None  # type: ignore[assignment]


class ImageFileError(ValueError):
    """An image file is missing, unreadable or not an image; the message names the file."""


def load_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as (1, 3, H, W) float32 RGB in 0..1.

    Grayscale is replicated to RGB; alpha is composited over white; 16-bit images keep
    their precision.

    Args:
        path: an image file Pillow can read (PNG, JPEG, …).

    Returns:
        (1, 3, H, W) float32 RGB in 0..1.

    Raises:
        ImageFileError: missing, unreadable or non-image file.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise ImageFileError(f"{p}: no such file")
    try:
        with Image.open(p) as im:
            im.load()
            return pil_to_tensor(im)
    except UnidentifiedImageError:
        raise ImageFileError(f"{p}: not an image file PIL can read (PNG, JPEG, …)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageFileError(f"{p}: the image is truncated or corrupt ({e})") from None


def load_mask(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read a grayscale mask file as (1, 1, H, W) float32 in 0..1 (white = 1).

    Colour files are reduced to their luminance; alpha is composited over white, as in
    ``load_image``.

    Raises:
        ImageFileError: missing, unreadable or non-image file.
    """
    rgb = load_image(path)
    weights = torch.tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1)
    return (rgb * weights).sum(dim=1, keepdim=True).clamp(0, 1)


def pil_to_tensor(im: Any) -> torch.Tensor:
    """PIL image → (1, 3, H, W) float32 RGB 0..1 (alpha composited over white).

    Args:
        im: a ``PIL.Image.Image`` of any mode (8- or 16-bit grey, RGB, RGBA, palette).

    Returns:
        (1, 3, H, W) float32 RGB in 0..1.
    """
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32)
        arr = arr / (65535.0 if arr.max() > 255 else 255.0)
        rgb = np.repeat(arr[..., None], 3, axis=2)
    elif im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        rgb = rgba[..., :3] * alpha + (1.0 - alpha)
    else:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)


def save_image(image: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """Write an image as an 8-bit RGB PNG (values rounded to the nearest level).

    Args:
        image: (3, H, W) RGB in 0..1 (clamped), any device and float dtype, or a batch of
            one (1, 3, H, W) as ``load_image`` returns it.
        path: file to write; the format follows its extension.

    Raises:
        ValueError: any other shape.
    """
    from PIL import Image

    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    check_shape(image, "3 H W", "image to save")
    arr = (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def resolve_device(name: str) -> torch.device:
    """The device of a ``--device`` choice: ``"auto"`` is CUDA when available, else CPU.

    Args:
        name: ``"auto"``, ``"cpu"`` or ``"cuda"`` (any torch device string).

    Returns:
        The device to run on.

    Raises:
        ValueError: ``"cuda"`` was asked for but this torch has no CUDA device.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but this torch has no CUDA device; use --device cpu")
    return torch.device(name)


def peak_memory_bytes(device: torch.device) -> int | None:
    """Peak memory of this process so far, in bytes, as far as the platform can tell.

    On CUDA: the most memory torch has allocated on ``device`` (since the last
    ``torch.cuda.reset_peak_memory_stats``). On the CPU: the peak resident set size,
    from ``resource`` (Linux, macOS) or, where that module is missing (Windows), from
    ``psutil``'s peak working set if psutil is installed.

    Args:
        device: the device the work ran on.

    Returns:
        Bytes, or ``None`` when neither source is available.
    """
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if resource is not None:
        peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
    try:
        import psutil
    except ImportError:
        return None
    peak_wset = getattr(psutil.Process().memory_info(), "peak_wset", None)  # Windows only
    return None if peak_wset is None else int(peak_wset)
