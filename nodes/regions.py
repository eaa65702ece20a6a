"""Helper node: paired regions of A and B' that guide which part matches which."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..analogy_core import guide_from_label_images, guide_from_masks
from ..analogy_core.masks import MAX_COLOURS, MAX_PAIRS
from ._layout import image_to_core, mask_to_core
from ._types import CATEGORY, GUIDE, MASK_NOTE


def _pair_inputs() -> list[io.Input]:
    inputs: list[io.Input] = []
    for k in range(1, MAX_PAIRS + 1):
        inputs += [
            io.Mask.Input(f"pair_a_{k}", optional=True,
                          tooltip=f"Region {k} on A (white); it only matches pair_bp_{k}. {MASK_NOTE}"),
            io.Mask.Input(f"pair_bp_{k}", optional=True,
                          tooltip=f"Region {k} on B' (white); it only matches pair_a_{k}. {MASK_NOTE}"),
        ]
    return inputs


class RegionPairs(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_RegionPairs",
            display_name="Region Pairs (Deep Image Analogy)",
            category=CATEGORY,
            description=(
                "Pairs regions of A and B' so that region k of A only matches region k of B' (face to face, sky to "
                "sky), in both directions and at every layer of the NNF search (our addition to §4.2 Nearest-neighbor "
                "Field Search). Give up to 8 pairs of masks, or two colour label images; pixels in no pair's mask "
                "match the other side's unpaired pixels. Connect the guide to Deep Image Analogy or Extract Features."
            ),
            inputs=[
                io.Image.Input(
                    "labels_a", optional=True,
                    tooltip=f"Colour label image of A: each flat colour is a region, paired with the same colour on "
                    f"labels_bp (at most {MAX_COLOURS} colours; use instead of the pair masks).",
                ),
                io.Image.Input("labels_bp", optional=True,
                               tooltip="Colour label image of B', the same colours as labels_a."),
                *_pair_inputs(),
            ],
            outputs=[GUIDE.Output("guide", display_name="guide",
                                  tooltip="The paired regions, for the guide input of Deep Image Analogy or Extract "
                                  "Features.")],
        )

    @classmethod
    def execute(
        cls, labels_a: torch.Tensor | None = None, labels_bp: torch.Tensor | None = None,
        **pairs: torch.Tensor | None,
    ) -> io.NodeOutput:
        masks_given = any(v is not None for v in pairs.values())
        if labels_a is not None or labels_bp is not None:
            if labels_a is None or labels_bp is None:
                raise ValueError("connect both labels_a and labels_bp (a colour label image for each side)")
            if masks_given:
                raise ValueError("use either the label images or the pair masks, not both")
            return io.NodeOutput(guide_from_label_images(image_to_core(labels_a, "labels_a"),
                                                         image_to_core(labels_bp, "labels_bp")))
        if not masks_given:
            raise ValueError("connect at least one pair of masks (pair_a_1 and pair_bp_1) or two label images")

        def mask(name: str) -> torch.Tensor | None:
            value = pairs.get(name)
            return None if value is None else mask_to_core(value, name)

        ks = range(1, MAX_PAIRS + 1)
        return io.NodeOutput(guide_from_masks([mask(f"pair_a_{k}") for k in ks], [mask(f"pair_bp_{k}") for k in ks]))
