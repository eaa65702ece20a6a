"""One-node Deep Image Analogy: images in; A', B and both fields out."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..analogy_core import DEFAULT_PRESET, PRESETS, Guide, describe_preset, run_analogy
from ._layout import field_from_core, image_from_core, image_to_core, regions_from_inputs
from ._run import Progress, check_interrupt, compute
from ._seed import seed_input
from ._settings import OVERRIDES, check_preset_settings, config_from_widgets, pixel_refinement_input
from ._types import CATEGORY, VGGModel, analogy_inputs, analogy_outputs, region_inputs

_PRESET_HELP = "; ".join(f"{name}: {describe_preset(name)}" for name in PRESETS)


class DeepImageAnalogy(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_DeepImageAnalogy",
            display_name="Deep Image Analogy",
            category=CATEGORY,
            description=(
                "Transfers B''s colours and texture onto A's structure (A') and A's appearance onto B''s structure "
                "(B), and returns the dense fields between them (Liao et al. 2017, §4 Deep Image Analogy, the whole "
                "coarse-to-fine algorithm). The step nodes expose each stage of the same computation."
            ),
            inputs=[
                *analogy_inputs(),
                io.Combo.Input(
                    "preset",
                    options=list(PRESETS),
                    default=DEFAULT_PRESET,
                    tooltip=f"Settings preset. {_PRESET_HELP}.",
                ),
                seed_input("Seed of PatchMatch's random search; the same seed gives the same result."),
                *(override.input() for override in OVERRIDES),
                pixel_refinement_input(),
                *region_inputs(),
            ],
            outputs=analogy_outputs(),
        )

    @classmethod
    def validate_inputs(
        cls, preset: str, pm_iters: int, lbfgs_iters: int, ratio: float, min_side: int, max_side: int, max_area: int,
        pixel_refinement: str = "preset",
    ) -> bool | str:
        return check_preset_settings(cls, preset, pm_iters=pm_iters, lbfgs_iters=lbfgs_iters, ratio=ratio,
                                     min_side=min_side, max_side=max_side, max_area=max_area,
                                     pixel_refinement=pixel_refinement)

    @classmethod
    def execute(
        cls, vgg: VGGModel, image_a: torch.Tensor, image_bp: torch.Tensor, preset: str, seed: int, pm_iters: int,
        lbfgs_iters: int, ratio: float, min_side: int, max_side: int, max_area: int, pixel_refinement: str = "preset",
        mask_a: torch.Tensor | None = None, mask_bp: torch.Tensor | None = None, feather: int = 8,
        ignore_bp: torch.Tensor | None = None, guide: Guide | None = None,
    ) -> io.NodeOutput:
        a, bp = image_to_core(image_a, "image_a"), image_to_core(image_bp, "image_bp")
        regions = regions_from_inputs(mask_a, mask_bp, feather, ignore_bp, guide)
        cfg = config_from_widgets(preset, pm_iters=pm_iters, lbfgs_iters=lbfgs_iters, ratio=ratio, min_side=min_side,
                                  max_side=max_side, max_area=max_area, pixel_refinement=pixel_refinement)
        with compute(vgg):
            result = run_analogy(vgg.net, a, bp, cfg, seed=seed, progress=Progress(), check_interrupt=check_interrupt,
                                 regions=regions, lean=True)
        state = result.state
        return io.NodeOutput(
            image_from_core(result.ap),
            image_from_core(result.b),
            field_from_core(result.flow_ab, state.size("b", "original")),
            field_from_core(result.flow_ba, state.size("a", "original")),
        )
