"""Step node: A' and B by patch voting through the finest fields."""

from __future__ import annotations

from comfy_api.latest import io

from ..analogy_core import AnalogyState, apply_limits, reconstruct
from ._layout import field_from_core, image_from_core
from ._run import compute
from ._settings import DEFAULTS, PAPER, odd_error, widget_error
from ._types import CATEGORY, STATE, analogy_outputs


class PatchVoteReconstruction(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_PatchVoteReconstruction",
            display_name="Patch-Vote Reconstruction (Deep Image Analogy)",
            category=f"{CATEGORY}/steps",
            description=(
                "Carries the relu1_1 fields to the input resolution and builds A' from B''s pixels (and B from A's) "
                "by averaging overlapping patches (Liao et al. 2017, §4.5 Output); after Pixel Refinement it votes "
                "through the refined fields, redraws A' from A's own pixels where it was sampled between pixels, and "
                "where B''s look is one colour map of A (a grade, a colour mix) draws A' as that map of A; limit masks "
                "given to Extract Features are applied here, last. Last of the step nodes."
            ),
            inputs=[
                STATE.Input("state", tooltip="From Pixel Refinement, or from NNF Search at relu1_1 to vote through the "
                            "unrefined fields."),
                io.Int.Input(
                    "patch_size",
                    default=DEFAULTS.vote_patch,
                    min=1,
                    max=15,
                    step=2,
                    tooltip=f"Width of the voting patches in pixels (odd): {DEFAULTS.vote_patch} as in the authors' "
                    f"release (sharper), {PAPER.vote_patch} as in the paper (smoother).",
                ),
            ],
            outputs=analogy_outputs(),
        )

    @classmethod
    def validate_inputs(cls, patch_size: int) -> bool | str:
        return widget_error(cls, patch_size=patch_size) or odd_error("patch_size", patch_size) or True

    @classmethod
    def execute(cls, state: AnalogyState, patch_size: int) -> io.NodeOutput:
        with compute(state=state):
            ap, b, flow_ab, flow_ba = reconstruct(state, vote_patch=patch_size)
            ap, b = apply_limits(state, ap, b)
        return io.NodeOutput(
            image_from_core(ap),
            image_from_core(b),
            field_from_core(flow_ab, state.size("b", "original")),
            field_from_core(flow_ba, state.size("a", "original")),
        )
