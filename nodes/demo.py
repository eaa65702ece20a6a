"""Loader for the demo images that ship with the pack, so the templates run as opened.

The images live in the pack's ``demo/`` folder and are read when the node runs; nothing
is copied into ComfyUI's ``input/`` folder. Like any preview, the node shows the image
it loaded (a temporary file in ComfyUI's ``temp/``).
"""

from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io, ui

from ..analogy_core.io import load_image
from ._layout import image_from_core
from ._types import CATEGORY

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
DEMO_IMAGES: dict[str, str] = {
    "demo A (photograph)": "a.png",
    "demo B' (painting)": "bp.png",
}
"""Option string (saved in workflows, never renamed) → file in ``demo/``."""


class LoadDemoImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_LoadDemoImage",
            display_name="Load Demo Image (Deep Image Analogy)",
            category=f"{CATEGORY}/loaders",
            description=(
                "Loads one of the pack's two demo images, a photograph and a painting of the same kind of scene (a "
                "portrait), the kind of pair Deep Image Analogy is for (Liao et al. 2017, §1). Replace it with a Load "
                "Image node to use your own pictures."
            ),
            inputs=[
                io.Combo.Input(
                    "image",
                    options=list(DEMO_IMAGES),
                    default=next(iter(DEMO_IMAGES)),
                    tooltip="demo A (photograph): NASA's portrait of astronaut Eileen Collins (public domain). demo B' "
                    "(painting): Leonardo da Vinci's Mona Lisa (public domain). Use A as image_a and B' as image_bp.",
                ),
            ],
            outputs=[io.Image.Output("demo_image", display_name="image", tooltip="The demo image, [1, H, W, 3] RGB.")],
        )

    @classmethod
    def execute(cls, image: str) -> io.NodeOutput:
        if image not in DEMO_IMAGES:
            raise ValueError(f"image must be one of {', '.join(DEMO_IMAGES)}; got {image!r}")
        loaded = image_from_core(load_image(DEMO_DIR / DEMO_IMAGES[image]))
        return io.NodeOutput(loaded, ui=ui.PreviewImage(loaded, cls=cls))
