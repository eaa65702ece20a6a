"""Step node: warp the appearance features through the fields and deconvolve one layer down."""

from __future__ import annotations

from typing import get_args

from comfy_api.latest import io

from ..analogy_core import LAYERS, AnalogyState, deconvolve_layer
from ..analogy_core.config import DeconvMode
from ._run import Progress, check_interrupt, compute
from ._settings import DEFAULTS, PAPER, by_layer, odd_error, widget_error
from ._types import CATEGORY, STATE, VGG, VGGModel


class FeatureDeconvolution(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_FeatureDeconvolution",
            display_name="Feature Deconvolution (Deep Image Analogy)",
            category=f"{CATEGORY}/steps",
            description=(
                "Warps B''s (and A's) features at this layer through the fields and inverts the VGG19 sub-network "
                "with L-BFGS to get R_B' (and R_A) one layer down (Liao et al. 2017, §4.3 Latent Image "
                "Reconstruction, eq. 3). Next: Feature Fusion at the layer below."
            ),
            inputs=[
                VGG.Input("vgg", tooltip="The same network that extracted the features."),
                STATE.Input("state", tooltip="From NNF Search at this layer."),
                io.Combo.Input(
                    "layer",
                    options=list(LAYERS[:-1]),
                    default=LAYERS[0],
                    tooltip="Layer whose fields are used; the result lands one layer below (relu5_1 → relu4_1 …).",
                ),
                io.Int.Input(
                    "iterations",
                    default=DEFAULTS.lbfgs_iters,
                    min=0,
                    max=1000,
                    step=1,
                    tooltip=f"L-BFGS iterations (paper: {PAPER.lbfgs_iters}); the default {DEFAULTS.lbfgs_iters} "
                    f"scores within 0.3 dB of {PAPER.lbfgs_iters} on the quality bench. Fewer is faster and blurrier; "
                    "0 keeps the warped initial guess.",
                ),
                io.Combo.Input(
                    "mode",
                    options=list(get_args(DeconvMode)),
                    default=DEFAULTS.deconv,
                    tooltip="direct: optimise the layer below through one block (the paper's eq. 3). release: "
                    "optimise two layers below and forward one block, as the authors' released code does "
                    f"({DEFAULTS.deconv} in the default preset).",
                ),
                io.Int.Input(
                    "patch_size",
                    default=DEFAULTS.patch_sizes[0],
                    min=1,
                    max=15,
                    step=2,
                    tooltip="Patch width for voting the warped features (odd); use the NNF Search's patch size at "
                    f"this layer ({by_layer(DEFAULTS.patch_sizes[:-1])}).",
                ),
            ],
            outputs=[
                STATE.Output(
                    "state_out",
                    display_name="state",
                    tooltip="The state with R_B' and R_A at the layer below; feed it to Feature Fusion there.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, layer: str, mode: str, patch_size: int) -> bool | str:
        error = widget_error(cls, layer=layer, mode=mode, patch_size=patch_size)
        return error or odd_error("patch_size", patch_size) or True

    @classmethod
    def execute(
        cls, vgg: VGGModel, state: AnalogyState, layer: str, iterations: int, mode: DeconvMode, patch_size: int
    ) -> io.NodeOutput:
        with compute(vgg):
            state = deconvolve_layer(
                vgg.net, state, layer, patch_size=patch_size, lbfgs_iters=iterations, deconv=mode,
                progress=Progress(), check_interrupt=check_interrupt,
            )
        return io.NodeOutput(state)
