"""Step node: blend A's features with the deconvolved appearance features."""

from __future__ import annotations

from typing import get_args

from comfy_api.latest import io

from ..analogy_core import DEFAULT_PRESET, LAYERS, AnalogyState, fuse_layer
from ..analogy_core.config import MaskMode
from ._run import compute
from ._settings import DEFAULTS, PAPER
from ._types import CATEGORY, STATE


def _alphas(values: tuple[float, ...]) -> str:
    return ", ".join(f"{a:g}" for a in values[1:])


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
                    default=DEFAULTS.alphas[1],
                    min=0.0,
                    max=1.0,
                    step=0.05,
                    tooltip="How much of A's structure to keep at this layer: 1 keeps A, 0 takes B''s appearance. "
                    f"{DEFAULT_PRESET}: {_alphas(DEFAULTS.alphas)} for {LAYERS[1]}…{LAYERS[-1]}; paper: "
                    f"{_alphas(PAPER.alphas)}.",
                ),
                io.Float.Input(
                    "kappa",
                    default=DEFAULTS.kappa,
                    min=1.0,
                    max=10000.0,
                    step=1.0,
                    tooltip=f"Steepness of the sigmoid mask (paper: {PAPER.kappa:g}); ignored by the step mask.",
                ),
                io.Float.Input(
                    "tau",
                    default=DEFAULTS.tau,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip=f"Threshold on the normalised squared feature magnitude (paper: {PAPER.tau:g}); lower "
                    "keeps A's structure in more places.",
                ),
                io.Combo.Input(
                    "mask",
                    options=list(get_args(MaskMode)),
                    default=DEFAULTS.mask,
                    tooltip="sigmoid: the paper's soft mask. step: the authors' release's hard threshold at tau "
                    f"({DEFAULTS.mask} in the default preset).",
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
        cls, state: AnalogyState, layer: str, alpha: float, kappa: float, tau: float, mask: MaskMode
    ) -> io.NodeOutput:
        with compute(state=state):
            state = fuse_layer(state, layer, alpha=alpha, kappa=kappa, tau=tau, mask=mask)
        return io.NodeOutput(state)
