"""Step node: refine both relu1_1 fields to sub-pixel precision on the images themselves."""

from __future__ import annotations

from comfy_api.latest import io

from ..analogy_core import AnalogyState, refine_pixels
from ._run import Progress, check_interrupt, compute
from ._types import CATEGORY, STATE


class PixelRefinement(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_PixelRefinement",
            display_name="Pixel Refinement (Deep Image Analogy)",
            category=f"{CATEGORY}/steps",
            description=(
                "Refines the fields A→B' and B'→A after relu1_1 to sub-pixel precision at the images' own sizes, by "
                "correlating local luminance windows, which no colour change can fool (our addition after §4.4 NNF "
                "upsampling, whose ×2 steps leave the paper's fields 1–2 px off). Pairs of different scenes, such as "
                "photo and painting, whose windows confirm few of the deep matches, keep the deep fields. "
                "Next: Patch-Vote Reconstruction."
            ),
            inputs=[STATE.Input("state", tooltip="From NNF Search at relu1_1.")],
            outputs=[
                STATE.Output(
                    "state_out", display_name="state",
                    tooltip="The state with both refined fields; Patch-Vote Reconstruction votes through them.",
                ),
            ],
        )

    @classmethod
    def execute(cls, state: AnalogyState) -> io.NodeOutput:
        with compute(state=state):
            state = refine_pixels(state, progress=Progress(), check_interrupt=check_interrupt)
        return io.NodeOutput(state)
