"""The pack's socket types, the model handle a DIA_VGG socket carries, and the inputs and
outputs that several nodes share."""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import torch
from comfy_api.latest import io

from ..analogy_core import VGG19
from ..analogy_core.masks import MAX_FEATHER

CATEGORY = "image/analogy"
"""Root of the pack's node categories; sub-categories per stage."""

VGG = io.Custom("DIA_VGG")
"""A loaded VGG19 (``VGGModel``)."""
STATE = io.Custom("DIA_STATE")
"""An ``analogy_core.AnalogyState``: everything computed so far, a new value per step."""
NNF = io.Custom("DIA_NNF")
"""An ``analogy_core.FlowField``: (dx, dy) flow from one image into the other."""
GUIDE = io.Custom("DIA_GUIDE")
"""An ``analogy_core.Guide``: paired regions of A and B' (from Region Pairs)."""

PRECISIONS = ("fp32", "bf16")
"""The loader's precision options."""

BATCH_NOTE = (
    "A batch of N images pairs A[i] with B'[i]; a single image on one side is used for every image on the other."
)


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
        offload: torch.device = comfy.model_management.unet_offload_device()
        return offload


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


MASK_NOTE = "Any size (resized to the image); a batch of N masks goes with N images, one mask serves all."


def region_inputs() -> list[io.Input]:
    """The optional region-control inputs of the nodes that start an analogy."""
    return [
        io.Mask.Input(
            "mask_a", optional=True,
            tooltip=f"Limit: A' takes B''s look only where this mask on A is white, and stays A exactly where it is "
            f"black. {MASK_NOTE}",
        ),
        io.Mask.Input(
            "mask_bp", optional=True,
            tooltip=f"Limit: B takes A's look only where this mask on B' is white, and stays B' elsewhere. {MASK_NOTE}",
        ),
        io.Int.Input(
            "feather", default=8, min=0, max=MAX_FEATHER, step=1, optional=True,
            tooltip="Width in px of the limit masks' soft edge, inside the mask; 0 blends with the masks' own grey "
            "levels. 4–32 hides the seam.",
        ),
        io.Mask.Input(
            "ignore_bp", optional=True,
            tooltip=f"Ignore: B' content where this mask is white (a watermark, a frame, a signature) is never matched "
            f"and never copied into A'. {MASK_NOTE}",
        ),
        GUIDE.Input(
            "guide", optional=True,
            tooltip="Guide: paired regions from Region Pairs; region k of A only matches region k of B' (and back).",
        ),
    ]


def analogy_outputs() -> list[io.Output]:
    """The outputs of every node that finishes an analogy: A', B and both fields."""
    return [
        io.Image.Output("a_prime", display_name="a_prime", tooltip="A': A's structure with B''s appearance, "
                        "at A's size."),
        io.Image.Output("b", display_name="b", tooltip="B: B''s structure with A's appearance, at B''s size."),
        NNF.Output("nnf_ab", display_name="nnf_ab", tooltip="Field from A into B' (for Visualise NNF, Warp "
                   "Image/Mask)."),
        NNF.Output("nnf_ba", display_name="nnf_ba", tooltip="Field from B' into A."),
    ]
