"""Running a core call from a node: ComfyUI's progress bar and interrupt flag as the core's
hooks, the device and precision a model runs at, and memory (making room, moving the
model, turning out-of-memory errors into advice).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import comfy.model_management
import comfy.utils
import torch

from ..analogy_core import LAYERS, AnalogyState
from ._types import PRECISIONS, VGGModel

logger = logging.getLogger(__name__)


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


class ByteProgress:
    """A download's ``progress(done, total, stage)`` in bytes → the node's ComfyUI
    ``ProgressBar`` and a line on the terminal every 5 % (every 50 MB when the size is
    unknown, ``total`` 0)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar: comfy.utils.ProgressBar | None = None
        self.logged = -1

    def __call__(self, done: int, total: int, stage: str) -> None:
        if self.bar is None:
            self.bar = comfy.utils.ProgressBar(max(total, 1))
        if total:
            self.bar.update_absolute(done, total)
            step = done * 20 // total
        else:
            step = done // (50 * 2**20)
        if step > self.logged:
            self.logged = step
            share = f"{done * 100 // total}% ({done / 2**20:.0f} of {total / 2**20:.0f} MB)" if total else (
                f"{done / 2**20:.0f} MB")
            logger.info("%s %s: %s", stage, self.name, share)


def check_interrupt() -> None:
    """The core's ``check_interrupt``: raises ComfyUI's interrupt exception when the user cancels."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → ComfyUI's torch device (CPU under ``--cpu``); ``"cpu"`` → CPU."""
    if name == "auto":
        device: torch.device = comfy.model_management.get_torch_device()
        return device
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"device must be 'auto' or 'cpu', got {name!r}")


def check_precision(precision: str, device: torch.device) -> None:
    """Raise ``ValueError`` if ``precision`` is unknown or not usable on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"bf16 is not supported by {torch.cuda.get_device_name(device)}; choose fp32")


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
