"""Deep Image Analogy of a clip: a batch of frames painted after one B', with temporal coherence."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..analogy_core import DEFAULT_PRESET, PRESETS, TemporalConfig, run_video
from ._layout import image_from_core, image_to_core
from ._run import Progress, check_interrupt, compute
from ._seed import seed_input
from ._settings import OVERRIDES, check_preset_settings, config_from_widgets, pixel_refinement_input
from ._types import CATEGORY, VGG, VGGModel

_DEFAULT = TemporalConfig()


class VideoAnalogy(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_VideoAnalogy",
            display_name="Deep Image Analogy (video)",
            category=CATEGORY,
            description=(
                "Paints every frame of a clip (an IMAGE batch, e.g. from Get Video Components) after B', one frame "
                "at a time so memory stays that of one frame (Liao et al. 2017, §4, per frame). With temporal "
                "coherence each frame starts from the previous one's fields carried by the motion between the frames "
                "and is pulled toward the previous result where that motion is reliable, so the clip does not flicker."
            ),
            inputs=[
                VGG.Input("vgg", tooltip="The network from Load VGG19."),
                io.Image.Input("frames", tooltip="A: the clip's frames as an IMAGE batch, all of one size, in order."),
                io.Image.Input("image_bp", tooltip="B': the painting (one image for every frame, or one per frame)."),
                io.Combo.Input("preset", options=list(PRESETS), default=DEFAULT_PRESET,
                               tooltip="Settings preset of every frame (see Deep Image Analogy)."),
                seed_input("Seed of PatchMatch's random search, the same for every frame."),
                io.Boolean.Input(
                    "temporal", default=True,
                    tooltip="Temporal coherence: warm starts from the previous frame (faster) and the temporal term "
                    "(less flicker). Off paints every frame exactly as the one-image node would.",
                ),
                io.Float.Input(
                    "temporal_weight", default=_DEFAULT.weight, min=0.0, max=0.95, step=0.05,
                    tooltip="How strongly each frame takes over the colour change of the previous one, carried by "
                    "the motion where it is reliable; 0 keeps only the warm start, the default halves the flicker "
                    "of the bench clip.",
                ),
                *(override.input() for override in OVERRIDES),
                pixel_refinement_input(),
            ],
            outputs=[
                io.Image.Output("ap_frames", tooltip="A' of every frame: the clip painted like B'."),
                io.Image.Output("b_frames", tooltip="B of every frame: B''s structure with that frame's look."),
            ],
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
        cls, vgg: VGGModel, frames: torch.Tensor, image_bp: torch.Tensor, preset: str, seed: int, temporal: bool,
        temporal_weight: float, pm_iters: int, lbfgs_iters: int, ratio: float, min_side: int, max_side: int,
        max_area: int, pixel_refinement: str = "preset",
    ) -> io.NodeOutput:
        a, bp = image_to_core(frames, "frames"), image_to_core(image_bp, "image_bp")
        cfg = config_from_widgets(preset, pm_iters=pm_iters, lbfgs_iters=lbfgs_iters, ratio=ratio, min_side=min_side,
                                  max_side=max_side, max_area=max_area, pixel_refinement=pixel_refinement)
        settings = TemporalConfig(weight=temporal_weight) if temporal else None
        aps, bs = [], []
        with compute(vgg):
            for res in run_video(vgg.net, a, bp, cfg, temporal=settings, seed=seed, progress=Progress(),
                                 check_interrupt=check_interrupt):
                aps.append(image_from_core(res.ap))
                bs.append(image_from_core(res.b))
        return io.NodeOutput(torch.cat(aps), torch.cat(bs))
