"""One-node Deep Image Analogy: images in; A', B and both fields out."""

from __future__ import annotations

from comfy_api.latest import io

from ..analogy_core import DEFAULT_PRESET, PRESETS, describe_preset, resolve_config, run_analogy
from ._common import (
    CATEGORY,
    NNF,
    Progress,
    VGGModel,
    analogy_inputs,
    check_interrupt,
    compute,
    field_from_core,
    image_from_core,
    image_to_core,
    widget_error,
)
from .nnf import SEED_MAX

_PRESET_HELP = "; ".join(f"{name}: {describe_preset(name)}" for name in PRESETS)


def _keep(value: float, sentinel: float) -> float | None:
    """An override widget's value, or ``None`` when it holds the "use the preset" sentinel."""
    return None if value == sentinel else value


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
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=SEED_MAX,
                    step=1,
                    tooltip="Seed of PatchMatch's random search; the same seed gives the same result.",
                ),
                io.Int.Input(
                    "pm_iters",
                    default=-1,
                    min=-1,
                    max=100,
                    step=1,
                    tooltip="PatchMatch iterations per layer; -1 uses the preset's (4; 10 for 'paper'). The paper "
                    "uses 10; 4 scores within 0.3 dB of it on the quality bench.",
                ),
                io.Int.Input(
                    "lbfgs_iters",
                    default=-1,
                    min=-1,
                    max=1000,
                    step=1,
                    tooltip="L-BFGS iterations per deconvolution; -1 uses the preset's (15; 100 for 'paper'). The "
                    "biggest time cost; the paper uses 100, 15 scores within 0.3 dB of it on the quality bench.",
                ),
                io.Float.Input(
                    "ratio",
                    default=0.0,
                    min=0.0,
                    max=1.0,
                    step=0.05,
                    tooltip="Scale of the network input after the size limits; 0 uses the preset's (1.0, or 0.5 for "
                    "the face and style2photo presets). 0.5 needs about 4× less memory and time.",
                ),
                io.Int.Input(
                    "min_side",
                    default=0,
                    min=0,
                    max=4096,
                    step=1,
                    tooltip="Smallest side of the working image in px; 0 uses the preset's (200).",
                ),
                io.Int.Input(
                    "max_side",
                    default=0,
                    min=0,
                    max=4096,
                    step=1,
                    tooltip="Largest side of the working image in px; 0 uses the preset's (700). Lower it if you run "
                    "out of memory.",
                ),
                io.Int.Input(
                    "max_area",
                    default=0,
                    min=0,
                    max=16_777_216,
                    step=1,
                    tooltip="Largest area of the working image in px²; 0 uses the preset's (350000).",
                ),
            ],
            outputs=[
                io.Image.Output("a_prime", display_name="a_prime", tooltip="A': A's structure with B''s appearance, "
                                "at A's size."),
                io.Image.Output("b", display_name="b", tooltip="B: B''s structure with A's appearance, at B''s size."),
                NNF.Output("nnf_ab", display_name="nnf_ab", tooltip="Field from A into B' (for Visualise NNF, Warp "
                           "Image/Mask)."),
                NNF.Output("nnf_ba", display_name="nnf_ba", tooltip="Field from B' into A."),
            ],
        )

    @classmethod
    def _config(cls, preset, pm_iters, lbfgs_iters, ratio, min_side, max_side, max_area):
        return resolve_config(
            preset, pm_iters=_keep(pm_iters, -1), lbfgs_iters=_keep(lbfgs_iters, -1), ratio=_keep(ratio, 0.0),
            min_side=_keep(min_side, 0), max_side=_keep(max_side, 0), max_area=_keep(max_area, 0),
        )

    @classmethod
    def validate_inputs(
        cls, preset: str, pm_iters: int, lbfgs_iters: int, ratio: float, min_side: int, max_side: int, max_area: int
    ) -> bool | str:
        settings = dict(preset=preset, pm_iters=pm_iters, lbfgs_iters=lbfgs_iters, ratio=ratio, min_side=min_side,
                        max_side=max_side, max_area=max_area)
        error = widget_error(cls, **settings)
        if error is None and preset is not None:  # None: linked from another node, checked when it runs
            try:
                cls._config(**settings)
            except ValueError as e:
                error = str(e)
        return error or True

    @classmethod
    def execute(
        cls, vgg: VGGModel, image_a, image_bp, preset: str, seed: int, pm_iters: int, lbfgs_iters: int,
        ratio: float, min_side: int, max_side: int, max_area: int,
    ) -> io.NodeOutput:
        a, bp = image_to_core(image_a, "image_a"), image_to_core(image_bp, "image_bp")
        cfg = cls._config(preset, pm_iters, lbfgs_iters, ratio, min_side, max_side, max_area)
        progress = Progress()
        with compute(vgg):
            result = run_analogy(vgg.net, a, bp, cfg, seed=seed, progress=progress, check_interrupt=check_interrupt)
        state = result.state
        return io.NodeOutput(
            image_from_core(result.ap),
            image_from_core(result.b),
            field_from_core(result.flow_ab, state.size("b", "original")),
            field_from_core(result.flow_ba, state.size("a", "original")),
        )
