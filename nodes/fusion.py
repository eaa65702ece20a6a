"""Step node: blend A's features with the deconvolved appearance features."""

from __future__ import annotations

from comfy_api.latest import io

from ..analogy_core import DEFAULT_PRESET, LAYERS, AnalogyState, fuse_layer, get_preset
from ._common import CATEGORY, STATE, compute

_PHOTO2STYLE = get_preset(DEFAULT_PRESET)


class FeatureFusion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_FeatureFusion",
            display_name="Feature Fusion (Deep Image Analogy)",
            category=f"{CATEGORY}/steps",
            description=(
                "Builds F_A' = F_A∘W + R_B'∘(1 − W) and F_B likewise, with W = α·M from A's feature magnitudes "
                "(Liao et al. 2017, §4.3 Latent Image Reconstruction, eq. 4–5). Next: NNF Search at this layer."
            ),
            inputs=[
                STATE.Input("state", tooltip="From Feature Deconvolution of the layer above."),
                io.Combo.Input(
                    "layer",
                    options=list(LAYERS[1:]),
                    default=LAYERS[1],
                    tooltip="Layer to fuse (the one the deconvolution produced).",
                ),
                io.Float.Input(
                    "alpha",
                    default=_PHOTO2STYLE.alphas[1],
                    min=0.0,
                    max=1.0,
                    step=0.05,
                    tooltip="How much of A's structure to keep at this layer: 1 keeps A, 0 takes B''s appearance. "
                    "photo2style (level 3): 0.9, 0.8, 0.7, 0.2 for relu4_1…relu1_1; paper: 0.8, 0.7, 0.6, 0.1.",
                ),
                io.Float.Input(
                    "kappa",
                    default=_PHOTO2STYLE.kappa,
                    min=1.0,
                    max=10000.0,
                    step=1.0,
                    tooltip="Steepness of the sigmoid mask (paper: 300); ignored by the step mask.",
                ),
                io.Float.Input(
                    "tau",
                    default=_PHOTO2STYLE.tau,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Threshold on the normalised squared feature magnitude (paper: 0.05); lower keeps A's "
                    "structure in more places.",
                ),
                io.Combo.Input(
                    "mask",
                    options=["sigmoid", "step"],
                    default=_PHOTO2STYLE.mask,
                    tooltip="sigmoid: the paper's soft mask. step: the authors' release's hard threshold at tau "
                    "(photo2style preset).",
                ),
            ],
            outputs=[
                STATE.Output(
                    "state_out",
                    display_name="state",
                    tooltip="The state with F_A' and F_B at this layer; feed it to NNF Search at this layer.",
                ),
            ],
        )

    @classmethod
    def execute(
        cls, state: AnalogyState, layer: str, alpha: float, kappa: float, tau: float, mask: str
    ) -> io.NodeOutput:
        with compute(state=state):
            state = fuse_layer(state, layer, alpha=alpha, kappa=kappa, tau=tau, mask=mask)
        return io.NodeOutput(state)
