"""Loaders for the demo images that ship with the pack, so the templates run as opened.

The images live in the pack's ``demo/`` folder and are read when a node runs; nothing
is copied into ComfyUI's ``input/`` folder. Load Demo Clip makes a short clip of one of
them (the core's ``pan_zoom``) for the video template. Like any preview, the nodes show
what they loaded (temporary files in ComfyUI's ``temp/``).
"""

from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io, ui

from ..analogy_core import load_image, pan_zoom
from ._layout import image_from_core
from ._settings import widget_error
from ._types import CATEGORY

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
DEMO_IMAGES: dict[str, str] = {
    "demo A (photograph)": "a.png",
    "demo B' (painting)": "bp.png",
}
"""Option string (saved in workflows, never renamed) → file in ``demo/``."""
DEMO_TOOLTIP = (
    "demo A (photograph): NASA's portrait of astronaut Eileen Collins (public domain). demo B' (painting): Leonardo "
    "da Vinci's Mona Lisa (public domain)."
)


def _demo_file(image: str) -> Path:
    if image not in DEMO_IMAGES:
        raise ValueError(f"image must be one of {', '.join(DEMO_IMAGES)}; got {image!r}")
    return DEMO_DIR / DEMO_IMAGES[image]


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
                    tooltip=f"{DEMO_TOOLTIP} Use A as image_a and B' as image_bp.",
                ),
            ],
            outputs=[io.Image.Output("demo_image", display_name="image", tooltip="The demo image, [1, H, W, 3] RGB.")],
        )

    @classmethod
    def execute(cls, image: str) -> io.NodeOutput:
        loaded = image_from_core(load_image(_demo_file(image)))
        return io.NodeOutput(loaded, ui=ui.PreviewImage(loaded, cls=cls))


class LoadDemoClip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_LoadDemoClip",
            display_name="Load Demo Clip (Deep Image Analogy)",
            category=f"{CATEGORY}/loaders",
            description=(
                "Makes a short clip from one of the pack's demo images: a slow pan and zoom over it, the same every "
                "time, as frames for Deep Image Analogy (video), which paints a clip frame by frame (Liao et al. "
                "2017, §4, per frame). Replace it with Load Video and Get Video Components to use your own video."
            ),
            inputs=[
                io.Combo.Input("image", options=list(DEMO_IMAGES), default=next(iter(DEMO_IMAGES)),
                               tooltip=f"The still the camera moves over. {DEMO_TOOLTIP}"),
                io.Int.Input("frames", default=6, min=2, max=240, step=1,
                             tooltip="Number of frames. Each costs about one small analogy; 6–12 to try it out."),
                io.Int.Input("width", default=96, min=32, max=1024, step=2,
                             tooltip="Frame width in px (even, as video encoders need); 96–256 keeps a CPU run "
                             "short."),
                io.Int.Input("height", default=112, min=32, max=1024, step=2,
                             tooltip="Frame height in px (even, as video encoders need)."),
                io.Float.Input("fps", default=8.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Frame rate of the clip, passed on for Create Video; 8 plays 6 frames in "
                               "0.75 s."),
            ],
            outputs=[
                io.Image.Output("demo_frames", display_name="frames", tooltip="The clip, [frames, height, width, 3] RGB: the camera pans right "
                                "and zooms in slowly (the first frame shows about 70 % of the still's height)."),
                io.Float.Output("demo_fps", display_name="fps", tooltip="The fps input, for Create Video (as Get Video Components gives it)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, width: int | None = None, height: int | None = None) -> bool | str:
        error = widget_error(cls, width=width, height=height)  # ComfyUI skips its range check for these
        for name, value in (("width", width), ("height", height)):
            if error is None and value is not None and value % 2:
                error = f"{name} must be even (video encoders such as Save Video's H.264 need even sizes); got {value}"
        return error or True

    @classmethod
    def execute(cls, image: str, frames: int, width: int, height: int, fps: float) -> io.NodeOutput:
        clip = pan_zoom(load_image(_demo_file(image)), frames=frames, height=height, width=width)
        out = image_from_core(clip.frames)
        return io.NodeOutput(out, fps, ui=ui.PreviewImage(out, cls=cls))
