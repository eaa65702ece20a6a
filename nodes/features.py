"""Step node: resize A and B' to the network size and extract their VGG19 features."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..analogy_core import Guide, prepare, resolve_config
from ._layout import image_to_core, regions_from_inputs
from ._run import compute
from ._settings import DEFAULTS, PAPER, check_settings
from ._types import CATEGORY, STATE, VGGModel, analogy_inputs, region_inputs


class ExtractFeatures(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_ExtractFeatures",
            display_name="Extract Features (Deep Image Analogy)",
            category=f"{CATEGORY}/steps",
            description=(
                "Resizes A and B' to the network size and extracts their VGG19 features relu1_1…relu5_1, "
                "setting F_A' = F_A and F_B = F_B' at relu5_1 (Liao et al. 2017, §4.1 Preprocessing). "
                "First of the step nodes; next is NNF Search at relu5_1."
            ),
            inputs=[
                *analogy_inputs(),
                io.Float.Input(
                    "ratio",
                    default=DEFAULTS.ratio,
                    min=0.1,
                    max=1.0,
                    step=0.05,
                    tooltip="Extra scale of the network input after the size limits: 1.0 for full detail, 0.5 for "
                    "faces or to save memory and time (about 4× less).",
                ),
                io.Int.Input(
                    "min_side",
                    default=DEFAULTS.min_side,
                    min=16,
                    max=4096,
                    step=1,
                    tooltip=f"Smallest allowed side of the working image in px (paper: {PAPER.min_side}); smaller "
                    "images are enlarged to it.",
                ),
                io.Int.Input(
                    "max_side",
                    default=DEFAULTS.max_side,
                    min=16,
                    max=4096,
                    step=1,
                    tooltip=f"Largest allowed side of the working image in px (paper: {PAPER.max_side}); larger "
                    "images are shrunk. Memory and time grow with the square.",
                ),
                io.Int.Input(
                    "max_area",
                    default=DEFAULTS.max_area,
                    min=256,
                    max=16_777_216,
                    step=1,
                    tooltip=f"Largest allowed area of the working image in px² (paper: {PAPER.max_area}).",
                ),
                *region_inputs(),
            ],
            outputs=[
                STATE.Output(
                    "state",
                    display_name="state",
                    tooltip="Features of A and B' at every layer; feed it to NNF Search at relu5_1.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, ratio: float, min_side: int, max_side: int, max_area: int) -> bool | str:
        sizes = dict(ratio=ratio, min_side=min_side, max_side=max_side, max_area=max_area)
        return check_settings(cls, lambda: resolve_config(**sizes), **sizes)

    @classmethod
    def execute(
        cls, vgg: VGGModel, image_a: torch.Tensor, image_bp: torch.Tensor, ratio: float, min_side: int, max_side: int,
        max_area: int, mask_a: torch.Tensor | None = None, mask_bp: torch.Tensor | None = None, feather: int = 8,
        ignore_bp: torch.Tensor | None = None, guide: Guide | None = None,
    ) -> io.NodeOutput:
        a, bp = image_to_core(image_a, "image_a"), image_to_core(image_bp, "image_bp")
        regions = regions_from_inputs(mask_a, mask_bp, feather, ignore_bp, guide)
        cfg = resolve_config(ratio=ratio, min_side=min_side, max_side=max_side, max_area=max_area)
        with compute(vgg):
            state = prepare(vgg.net, a, bp, cfg, regions=regions)
        return io.NodeOutput(state)
