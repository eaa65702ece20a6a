"""Make docs/video_strip.png: the video template's demo clip on top and, below it, each
frame painted like the demo painting by the video core.

The clip and the settings are read from the template's API copy
(``workflows/api/Deep Image Analogy - video.json``): Load Demo Clip's slow pan and zoom
over the demo photograph (the core's ``pan_zoom``) and Deep Image Analogy (video)'s
preset, seed, temporal coherence and size limits, so the strip shows what the template
makes. Runs the core on the CPU; about a minute with one thread. Usage:
``OMP_NUM_THREADS=1 .venv/bin/python scripts/make_video_strip.py``
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analogy_core import (  # noqa: E402
    TemporalConfig,
    contact_sheet,
    load_vgg19,
    pan_zoom,
    resolve_config,
    run_video,
)
from analogy_core.io import load_image, save_image  # noqa: E402

OUT = REPO / "docs" / "video_strip.png"
TEMPLATE = REPO / "workflows" / "api" / "Deep Image Analogy - video.json"
DEMO = {"demo A (photograph)": REPO / "demo" / "a.png", "demo B' (painting)": REPO / "demo" / "bp.png"}
GAP = 4


def node_inputs(workflow: dict, class_type: str) -> dict:
    (inputs,) = [n["inputs"] for n in workflow.values() if n["class_type"] == class_type]
    return inputs


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    workflow = json.loads(TEMPLATE.read_text())
    clip_in = node_inputs(workflow, "DeepAnalogy_LoadDemoClip")
    video_in = node_inputs(workflow, "DeepAnalogy_VideoAnalogy")
    bp_option = workflow[video_in["image_bp"][0]]["inputs"]["image"]
    # the override widgets keep the preset's value at 0 (sizes) or -1 (iterations); only sizes are set here
    sizes = {k: video_in[k] or None for k in ("min_side", "max_side", "max_area")}
    assert {video_in["pm_iters"], video_in["lbfgs_iters"], video_in["ratio"]} <= {-1, 0}, "update this script"
    assert video_in["pixel_refinement"] == "preset", "update this script"
    cfg = resolve_config(video_in["preset"], **sizes)

    clip = pan_zoom(load_image(DEMO[clip_in["image"]]), frames=clip_in["frames"], height=clip_in["height"],
                    width=clip_in["width"])
    temporal = TemporalConfig(weight=video_in["temporal_weight"]) if video_in["temporal"] else None
    painted = [res.ap.cpu() for res in run_video(load_vgg19(), clip.frames, load_image(DEMO[bp_option]), cfg,
                                                 temporal=temporal, seed=video_in["seed"])]
    top, bottom = contact_sheet(list(clip.frames), gap=GAP), contact_sheet(painted, gap=GAP)
    strip = torch.cat([top, torch.ones(3, GAP, top.shape[-1]), bottom], dim=1)
    save_image(strip, OUT)
    logging.info("wrote %s (%d frames of %dx%d px)", OUT.relative_to(REPO), len(painted), clip_in["width"],
                 clip_in["height"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
