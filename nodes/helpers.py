"""Helper nodes: show a field, warp images and masks through it, refine A' with the WLS filter."""

from __future__ import annotations

import comfy.model_management
import torch
from comfy_api.latest import io

from ..analogy_core import FlowField, flow_to_colour, warp_by_field, wls_refine
from ..analogy_core.field import ColourMode, WarpMode
from ..analogy_core.refine import GuideScale
from ._layout import image_from_core, image_to_core, mask_from_core, mask_to_core
from ._run import Progress, check_interrupt, compute
from ._types import CATEGORY, NNF

_WLS_MAX_ITERS = 2000
_INTERPOLATION_TIP = "bilinear samples between pixels (smooth); nearest copies whole pixels (keeps hard mask edges)."
_FIELD_TIP = "A field from Deep Image Analogy or Patch-Vote Reconstruction: nnf_ab (A → B') or nnf_ba (B' → A)."


class VisualiseNNF(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_VisualiseNNF",
            display_name="Visualise NNF (Deep Image Analogy)",
            category=f"{CATEGORY}/fields",
            description=(
                "Colour-codes a correspondence field so you can see where each pixel found its match (the "
                "nearest-neighbour fields of Liao et al. 2017, §4.2 and §4.5). The image has the size of the field's "
                "source image."
            ),
            inputs=[
                NNF.Input("nnf", tooltip=_FIELD_TIP),
                io.Combo.Input(
                    "mode",
                    options=["coordinates", "direction", "middlebury"],
                    default="coordinates",
                    tooltip="coordinates: the colour of the matched point in the other image (red = right, green = "
                    "down, blue = left), good for large jumps. direction: hue = direction of the offset, saturation = "
                    "its length, white = no offset. middlebury: the standard optical-flow colour wheel (Baker et al. "
                    "2011, as torchvision's flow_to_image draws it): right red, down orange-yellow, left cyan-blue, up "
                    "violet, white = no offset.",
                ),
                io.Float.Input(
                    "max_flow",
                    default=0.0,
                    min=0.0,
                    max=10000.0,
                    step=1.0,
                    tooltip="direction and middlebury modes: offset length in pixels shown in full colour (middlebury "
                    "darkens longer ones); 0 scales to each image's longest offset. 0–10000 px.",
                ),
            ],
            outputs=[io.Image.Output("image", display_name="image", tooltip="The colour-coded field.")],
        )

    @classmethod
    def execute(cls, nnf: FlowField, mode: ColourMode, max_flow: float) -> io.NodeOutput:
        colours = flow_to_colour(nnf, mode=mode, max_flow=max_flow or None)
        return io.NodeOutput(image_from_core(colours))


class WarpImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_WarpImage",
            display_name="Warp Image by NNF (Deep Image Analogy)",
            category=f"{CATEGORY}/fields",
            description=(
                "Pulls an image aligned with the field's target through the field, e.g. B' (or a recoloured B') "
                "through nnf_ab onto A's layout: out(p) = image(p + flow(p)) (the warp of Liao et al. 2017, §4.3)."
            ),
            inputs=[
                io.Image.Input(
                    "image",
                    tooltip="Image at the field's target size (B''s size for nnf_ab, A's for nnf_ba); other sizes are "
                    "resized to it first, with a note in the log. A batch of N pairs with N fields; 1 broadcasts.",
                ),
                NNF.Input("nnf", tooltip=_FIELD_TIP),
                io.Combo.Input("interpolation", options=["bilinear", "nearest"], default="bilinear",
                               tooltip=_INTERPOLATION_TIP),
            ],
            outputs=[io.Image.Output("warped", display_name="image",
                                     tooltip="The warped image, at the field's source size.")],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, nnf: FlowField, interpolation: WarpMode) -> io.NodeOutput:
        warped = warp_by_field(image_to_core(image), nnf, mode=interpolation, resize=True)
        return io.NodeOutput(image_from_core(warped))


class WarpMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_WarpMask",
            display_name="Warp Mask by NNF (Deep Image Analogy)",
            category=f"{CATEGORY}/fields",
            description=(
                "Pulls a mask aligned with the field's target through the field, e.g. a selection on B' onto A's "
                "layout (the warp of Liao et al. 2017, §4.3), to carry masks and labels between the images."
            ),
            inputs=[
                io.Mask.Input(
                    "mask",
                    tooltip="Mask at the field's target size (B''s size for nnf_ab, A's for nnf_ba); other sizes are "
                    "resized to it first, with a note in the log. A batch of N pairs with N fields; 1 broadcasts.",
                ),
                NNF.Input("nnf", tooltip=_FIELD_TIP),
                io.Combo.Input("interpolation", options=["nearest", "bilinear"], default="nearest",
                               tooltip=_INTERPOLATION_TIP),
            ],
            outputs=[io.Mask.Output("warped", display_name="mask",
                                    tooltip="The warped mask, at the field's source size.")],
        )

    @classmethod
    def execute(cls, mask: torch.Tensor, nnf: FlowField, interpolation: WarpMode) -> io.NodeOutput:
        warped = warp_by_field(mask_to_core(mask), nnf, mode=interpolation, resize=True)
        return io.NodeOutput(mask_from_core(warped))


WLS_EDGES: dict[str, GuideScale] = {"log luminance": "log", "luminance": "linear"}
"""WLS Refine's ``edges`` options → ``refine.wls_weights``'s ``guide_scale``."""


class WLSRefine(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_WLSRefine",
            display_name="WLS Refine A' (Deep Image Analogy)",
            category=f"{CATEGORY}/refine",
            description=(
                "Optional refinement for photo-to-photo results: A + WLS(A' | A) − WLS(A | A), i.e. A's fine "
                "detail with A''s edge-aware smoothed colours: the weighted-least-squares filter of Farbman et al. "
                "2008 (§3), guided by A's log-luminance, as in the follow-up refinement of Deep Image Analogy results."
            ),
            inputs=[
                io.Image.Input("a_prime", tooltip="A' from Deep Image Analogy or Patch-Vote Reconstruction."),
                io.Image.Input("a", tooltip="The A the analogy was run on, same size as A' (batch N or 1)."),
                io.Float.Input(
                    "smoothness",
                    display_name="lambda",
                    default=0.8,
                    min=0.0,
                    max=10.0,
                    step=0.05,
                    tooltip="λ: how strongly A''s colours are smoothed (0.8 as in the follow-up work; 0 returns "
                    "A' unchanged). Larger values take more time.",
                ),
                io.Float.Input(
                    "alpha",
                    default=1.0,
                    min=0.1,
                    max=3.0,
                    step=0.05,
                    tooltip="α: how sharply A's edges stop the smoothing (1.0; Farbman et al. use 1.2–2.0).",
                ),
                io.Combo.Input(
                    "edges",
                    options=list(WLS_EDGES),
                    default="log luminance",
                    optional=True,
                    tooltip="What the edge weights measure: differences of A's log-luminance (Farbman et al.) or "
                    "of its plain luminance in 0..1, as the authors' photo mode (photo2photo preset) does. With "
                    "'luminance', λ 0.8 and α 1 this node gives the photo2photo preset's A' from the plain vote; fed "
                    "B and B' in place of A' and A, its B.",
                ),
            ],
            outputs=[io.Image.Output("refined", display_name="image", tooltip="The refined A', at A's size.")],
        )

    @classmethod
    def execute(
        cls, a_prime: torch.Tensor, a: torch.Tensor, smoothness: float, alpha: float, edges: str = "log luminance"
    ) -> io.NodeOutput:
        device: torch.device = comfy.model_management.get_torch_device()
        ap_core, a_core = image_to_core(a_prime, "a_prime").to(device), image_to_core(a, "a").to(device)
        with compute(device=device):
            refined = wls_refine(ap_core, a_core, lam=smoothness, alpha=alpha, guide_scale=WLS_EDGES[edges],
                                 max_iters=_WLS_MAX_ITERS, progress=Progress(), check_interrupt=check_interrupt)
        return io.NodeOutput(image_from_core(refined))
