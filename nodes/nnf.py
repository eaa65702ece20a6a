"""Step node: bidirectional PatchMatch NNF search at one VGG19 layer."""

from __future__ import annotations

from comfy_api.latest import io

from ..analogy_core import LAYERS, AnalogyState, search_layer
from ._run import Progress, check_interrupt, compute
from ._seed import seed_input
from ._settings import DEFAULTS, PAPER, by_layer, odd_error, widget_error
from ._types import CATEGORY, STATE

RADIUS_MAX = 64


class NNFSearch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_NNFSearch",
            display_name="NNF Search (Deep Image Analogy)",
            category=f"{CATEGORY}/steps",
            description=(
                "Finds the nearest-neighbour fields A→B' and B'→A at one layer with PatchMatch on the normalised "
                "features of both image pairs (Liao et al. 2017, §4.2 Nearest-neighbor Field Search; below relu5_1 "
                "it starts from the upsampled field of the layer above, §4.4). Chain: NNF Search → Feature "
                "Deconvolution → Feature Fusion → NNF Search at the next layer."
            ),
            inputs=[
                STATE.Input(
                    "state",
                    tooltip="From Extract Features (for relu5_1) or from Feature Fusion at this layer.",
                ),
                io.Combo.Input(
                    "layer",
                    options=list(LAYERS),
                    default=LAYERS[0],
                    tooltip="Layer to search, coarse to fine: relu5_1 first, relu1_1 last.",
                ),
                io.Int.Input(
                    "patch_size",
                    default=DEFAULTS.patch_sizes[0],
                    min=1,
                    max=15,
                    step=2,
                    tooltip=f"Patch width in feature pixels (odd). Paper: {by_layer(PAPER.patch_sizes)}.",
                ),
                io.Int.Input(
                    "iterations",
                    default=DEFAULTS.pm_iters,
                    min=0,
                    max=100,
                    step=1,
                    tooltip=f"PatchMatch iterations per direction (paper: {PAPER.pm_iters}); the default "
                    f"{DEFAULTS.pm_iters} scores within 0.3 dB of {PAPER.pm_iters} on the quality bench.",
                ),
                io.Int.Input(
                    "search_radius",
                    default=0,
                    min=0,
                    max=RADIUS_MAX,
                    step=1,
                    tooltip="Random-search radius around the upsampled field, in this layer's pixels. 0 searches the "
                    f"whole image and is only allowed at {LAYERS[0]}. Paper: 0 (global) at {LAYERS[0]}, then "
                    f"{', '.join(str(r) for r in PAPER.search_radii[1:])}.",
                ),
                seed_input(
                    "Seed of the random search. Use the same seed on every layer to repeat the one-node Deep Image "
                    "Analogy exactly."
                ),
            ],
            outputs=[
                STATE.Output(
                    "state_out",
                    display_name="state",
                    tooltip="The state with both fields at this layer; feed it to Feature Deconvolution (or to "
                    "Patch-Vote Reconstruction after relu1_1).",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, layer: str, patch_size: int, search_radius: int) -> bool | str:
        error = widget_error(cls, layer=layer, patch_size=patch_size, search_radius=search_radius)
        error = error or odd_error("patch_size", patch_size)
        if error is None and search_radius == 0 and layer not in (None, LAYERS[0]):
            error = (
                f"search_radius 0 (global search) is only allowed at {LAYERS[0]}; at {layer} the search refines the "
                f"upsampled field of the layer above, so use a radius such as {PAPER.search_radii[LAYERS.index(layer)]} "
                "(the paper's there)"
            )
        return error or True

    @classmethod
    def execute(
        cls, state: AnalogyState, layer: str, patch_size: int, iterations: int, search_radius: int, seed: int
    ) -> io.NodeOutput:
        with compute(state=state):
            state = search_layer(
                state, layer, patch_size=patch_size, pm_iters=iterations, search_radius=search_radius or None,
                seed=seed, progress=Progress(), check_interrupt=check_interrupt,
            )
        return io.NodeOutput(state)
