"""Step node: A' and B by patch voting through the finest fields."""

from __future__ import annotations

from comfy_api.latest import io

from ..analogy_core import DEFAULT_PRESET, AnalogyState, get_preset, reconstruct
from ._common import CATEGORY, NNF, STATE, compute, field_from_core, image_from_core, odd_error, widget_error


class PatchVoteReconstruction(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_PatchVoteReconstruction",
            display_name="Patch-Vote Reconstruction (Deep Image Analogy)",
            category=f"{CATEGORY}/steps",
            description=(
                "Carries the relu1_1 fields to the input resolution and builds A' from B''s pixels (and B from A's) "
                "by averaging overlapping patches (Liao et al. 2017, §4.5 Output). Last of the step nodes."
            ),
            inputs=[
                STATE.Input("state", tooltip="From NNF Search at relu1_1."),
                io.Int.Input(
                    "patch_size",
                    default=get_preset(DEFAULT_PRESET).vote_patch,
                    min=1,
                    max=15,
                    step=2,
                    tooltip="Width of the voting patches in pixels (odd): 3 as in the authors' release (sharper), "
                    "5 as in the paper (smoother).",
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
    def validate_inputs(cls, patch_size: int) -> bool | str:
        return widget_error(cls, patch_size=patch_size) or odd_error("patch_size", patch_size) or True

    @classmethod
    def execute(cls, state: AnalogyState, patch_size: int) -> io.NodeOutput:
        with compute(state=state):
            ap, b, flow_ab, flow_ba = reconstruct(state, vote_patch=patch_size)
        return io.NodeOutput(
            image_from_core(ap),
            image_from_core(b),
            field_from_core(flow_ab, state.size("b", "original")),
            field_from_core(flow_ba, state.size("a", "original")),
        )
