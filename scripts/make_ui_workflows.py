"""Build the UI-format example workflows from their API-format copies and /object_info.

ComfyUI's template browser and drag-and-drop load the UI ("workflow") format that the
frontend saves: nodes with positions, sizes, input/output slots and ``widgets_values``,
plus a ``links`` array. This script writes ``workflows/<name>.json`` for every
``workflows/api/<name>.json`` (the same file name: ComfyUI's template browser shows it
as the template's title):

- node ids, class types, titles, widget values and links come from the API copy; a
  widget that the API copy links (Create Video's ``fps``) gets the link on its input slot
  and keeps its default as its value, as the frontend saves it;
- the widgets of a node, and their order, come from ``/object_info``: one widget per
  non-link input of ``required`` then ``optional``, in ``input_order``. Like the
  frontend, an INT input gets a "control after generate" widget right after it when
  its spec sets ``control_after_generate`` or, without that key, when it is named
  ``seed`` or ``noise_seed``; it is written as ``"fixed"`` so the example repeats
  exactly. An ``image_upload`` combo gets the "upload" button widget after it;
- each node gets a place in a grid (``LAYOUTS``, read left to right); the step-by-step
  graph has a titled group per VGG layer, two layers per row, coarse to fine. Each
  graph gets a Markdown note that says what it does and where its images come from;
  notes are frontend-only nodes and never reach the API prompt.

tests/comfyui/test_workflow_files.py proves that each file converts back to its API copy,
in Python and through the real frontend in headless Chromium.

Usage (from the repository root, with the test venv)::

    .venv/bin/python scripts/make_ui_workflows.py                  # starts the test ComfyUI for /object_info
    .venv/bin/python scripts/make_ui_workflows.py --url http://127.0.0.1:8188
    .venv/bin/python scripts/make_ui_workflows.py --object-info object_info.json
    .venv/bin/python scripts/make_ui_workflows.py --check          # exit 1 if a file would change
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

logger = logging.getLogger("make_ui_workflows")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "workflows"
API_DIR = EXAMPLES / "api"

# The templates, by file name (without .json), which is also their title in ComfyUI.
ONE_NODE = "Deep Image Analogy - one node"
STEP_BY_STEP = "Deep Image Analogy - step by step"
FIELDS = "Deep Image Analogy - fields, warps and masks"
WLS = "Deep Image Analogy - WLS refinement"
REGIONS = "Deep Image Analogy - region control"
VIDEO = "Deep Image Analogy - video"

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
SEED_NAMES = ("seed", "noise_seed")  # the frontend adds a control widget to INT inputs with these names
NOTE_TYPE = "MarkdownNote"

# Node geometry, close to what the frontend computes (LiteGraph slot and widget heights).
SLOT_H, WIDGET_H, PAD_H, TITLE_H = 20, 24, 14, 30
GAP_X, GAP_Y = 40, 24
GROUP_TITLE_H, GROUP_PAD = 36, 10
MIN_WIDTH = 260
WIDE = {"DeepAnalogy_LoadVGG19": 360}  # long combo values
# room for the image previews: Load Demo Image and LoadImage show their image, SaveImage
# the result of a run (the frontend makes a LoadImage at least 314 high once it shows one)
FIXED_SIZE = {"DeepAnalogy_LoadDemoImage": (260, 314), "LoadImage": (260, 314), "SaveImage": (300, 270),
              "DeepAnalogy_LoadDemoClip": (260, 400), "SaveVideo": (300, 360)}

# Grids of API node ids, one list per row; None leaves a cell empty and a tuple stacks
# nodes in one cell. "note" is the Markdown note. GROUPS draws a titled box around nodes.
LAYOUTS: dict[str, list[list[str | tuple[str, ...] | None]]] = {
    ONE_NODE: [
        [("1", "2", "3"), ("4", "note"), ("5", "6")],
    ],
    FIELDS: [  # the four results as a 2x2 block: fields above, warps below
        [("1", "2", "3"), ("4", "11", "note"), ("5", "7", "9", "12", "13"), ("6", "10"), ("8", "14")],
    ],
    WLS: [
        [("1", "2", "3"), ("4", "note"), "5", ("6", "7")],
    ],
    VIDEO: [  # a clip and B' into the video node, then ComfyUI's Create Video and Save Video
        [("1", "2", "3"), ("4", "note"), ("5", "6")],
    ],
    REGIONS: [  # masks built from ComfyUI's own mask nodes, then the analogy and its outputs
        [("1", "2", "3"), ("4", "5", "7", "10"), ("6", "8", "11"), ("9", "note"), "12", ("13", "14")],
    ],
    # one group per VGG layer, read like text: two layers per row, coarse to fine
    STEP_BY_STEP: [
        ["1", "11", "12", "13", "14", "15", "16"],
        ["2", "17", "18", "19", "20", "21", "22"],
        [("3", "10"), "23", "24", "30", "31", "32", "note"],
    ],
}
GROUPS: dict[str, list[tuple[str, list[str]]]] = {
    STEP_BY_STEP: [
        ("relu5_1: match (global search), deconvolve to relu4_1, fuse", ["11", "12", "13"]),
        ("relu4_1: match, deconvolve to relu3_1, fuse", ["14", "15", "16"]),
        ("relu3_1: match, deconvolve to relu2_1, fuse", ["17", "18", "19"]),
        ("relu2_1: match, deconvolve to relu1_1, fuse", ["20", "21", "22"]),
        ("relu1_1: match, refine to sub-pixel, vote the pixels, save", ["23", "24", "30", "31", "32"]),
    ],
}
DEMO_NOTE = (
    "The two **Load Demo Image** nodes load the pack's demo pair: a photograph (A) and a painting (B') of "
    "the same kind of scene. To use your own pictures, replace them with **Load Image** nodes."
)
NOTES: dict[str, str] = {
    ONE_NODE: (
        "## Deep Image Analogy, one node\n\n"
        "A gives the structure, B' the look. The node returns **A'** (A painted like B') and "
        "**B** (B' with A's look), plus both correspondence fields.\n\n"
        f"{DEMO_NOTE}\n\n"
        "`-1` / `0` on the overrides means: use the preset's value."
    ),
    STEP_BY_STEP: (
        "## Deep Image Analogy, step by step\n\n"
        "The same algorithm as the one-node graph, one node per stage, coarse to fine: at each VGG layer "
        "NNF Search matches A and B' both ways, Feature Deconvolution carries the match one layer down, "
        "Feature Fusion mixes A's structure with B''s warped features. Pixel Refinement corrects the relu1_1 "
        "fields to sub-pixel precision on the images themselves, and Patch-Vote Reconstruction turns them into "
        "pixels.\n\n"
        "With the same settings and seed on every layer it gives exactly the one-node result. "
        f"{DEMO_NOTE}"
    ),
    FIELDS: (
        "## Look at the correspondence fields\n\n"
        "Visualise NNF colours a field: by the matched point's position (coordinates), or by the offset's "
        "direction and length (middlebury, the standard optical-flow colour wheel; or direction). Warp Image "
        "and Warp Mask carry any image or mask from B' onto A through the A→B' field, e.g. a mask drawn on B'.\n\n"
        f"{DEMO_NOTE}"
    ),
    WLS: (
        "## WLS refinement\n\n"
        "WLS Refine computes A + WLS(A' | A) - WLS(A | A): A's fine edges with A''s colours. "
        "It suits photo-to-photo transfer most (preset photo2photo); here it refines the demo's "
        "photo-to-painting A'. Compare the refined and the plain A'.\n\n"
        f"{DEMO_NOTE}"
    ),
    REGIONS: (
        "## Region control\n\n"
        "**Region Pairs** makes A's face match only B''s face (and the rest only the rest), in both directions, at "
        "every layer. **mask_a** limits the transfer: A' is A exactly outside the mask, with an edge `feather` px "
        "wide inside it. **ignore_bp** (unused here) keeps B' content such as a watermark out of A'.\n\n"
        "The masks are drawn on a 100 x 100 canvas with SolidMask and MaskComposite; masks of any size are "
        "resized to their image. Paint your own in the mask editor of a Load Image node instead.\n\n"
        f"{DEMO_NOTE}"
    ),
    VIDEO: (
        "## Deep Image Analogy, video\n\n"
        "Paints every frame of a clip like B', one frame at a time. With `temporal` on, each frame starts from the "
        "previous one's result and takes over its colour change where the motion is reliable, so the clip does not "
        "flicker. "
        "ComfyUI's **Create Video** and **Save Video** write A' as an MP4 into `output/deep_analogy/`.\n\n"
        "**Load Demo Clip** makes a short clip from the pack's demo photograph (a slow pan and zoom: 6 frames of "
        "96 x 112 px, about a minute on a CPU) and passes on its fps; **Load Demo Image** loads the painting B'.\n\n"
        "**Your own video:** replace Load Demo Clip with **Load Video** → **Get Video Components**, and connect its "
        "`images` to `frames` here and its `fps` to Create Video's `fps`. `min_side` 96 and `max_side` 128 suit the "
        "demo's small frames: set both to 0 (the preset's sizes) or to what fits your frames. Each frame costs "
        "about one analogy."
    ),
}
NOTE_SIZE = (340, 200)


# ----------------------------------------------------------------- node definitions
def input_specs(info: dict) -> list[tuple[str, list]]:
    """(name, spec) of a node's inputs in the frontend's order: required then optional."""
    specs = []
    order = info.get("input_order", {})
    for group in ("required", "optional"):
        defined = info["input"].get(group, {})
        for name in order.get(group, list(defined)):
            specs.append((name, defined[name]))
    return specs


def spec_type(spec: list) -> str:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def spec_options(spec: list) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def is_widget(spec: list) -> bool:
    return spec_type(spec) in WIDGET_TYPES and not spec_options(spec).get("forceInput")


def extra_widgets(name: str, spec: list) -> list[tuple[str, str, Any]]:
    """The frontend-only widgets that follow an input's widget: (name, slot type, value)."""
    kind, opts = spec_type(spec), spec_options(spec)
    extra: list[tuple[str, str, Any]] = []
    control = opts["control_after_generate"] if "control_after_generate" in opts else name in SEED_NAMES
    if kind == "INT" and control:
        extra.append(("control_after_generate", "", "fixed"))
    elif kind == "COMBO" and opts.get("control_after_generate"):
        raise NotImplementedError(f"{name}: combo with control_after_generate (two extra widgets) is not handled")
    if opts.get("image_upload"):
        extra.append(("upload", "IMAGEUPLOAD", "image"))
    for key in ("video_upload", "audio_upload", "animated_image_upload", "3d_model_upload"):
        if opts.get(key):
            raise NotImplementedError(f"{name}: {key} widgets are not handled")
    return extra


def node_size(info: dict, n_widgets: int, n_links: int, class_type: str, title: str) -> list[int]:
    """A node's size: what the frontend computes for it (it never shrinks a node below that)."""
    if class_type in FIXED_SIZE:
        return list(FIXED_SIZE[class_type])
    slots = max(n_links, len(info["output"]))
    height = slots * SLOT_H + n_widgets * WIDGET_H + PAD_H
    return [max(MIN_WIDTH, WIDE.get(class_type, 0), round(8.5 * len(title)) + 50), height]


# ----------------------------------------------------------------------- building
def build(name: str, api: dict, object_info: dict) -> dict:
    """The UI-format workflow for the API-format ``api``."""
    links: list[list] = []
    nodes: dict[str, dict] = {}
    unknown = sorted({n["class_type"] for n in api.values()} - set(object_info))
    if unknown:
        raise KeyError(f"{name}: /object_info has no {', '.join(unknown)}")

    # nodes with their slots and widget values; links are filled in below
    for nid, api_node in api.items():
        info = object_info[api_node["class_type"]]
        values = api_node["inputs"]
        inputs, widgets_values = [], []
        n_links = 0
        for input_name, spec in input_specs(info):
            slot: dict[str, Any] = {"localized_name": input_name, "name": input_name, "type": spec_type(spec)}
            if is_widget(spec):
                if input_name not in values:
                    raise KeyError(f"{name} node {nid}: no value for widget {input_name!r}")
                # a linked widget (e.g. Create Video's fps from Load Demo Clip) keeps its
                # default as its value, which the link overrides; its slot gets the link below
                linked = isinstance(values[input_name], list)
                widgets_values.append(spec_options(spec).get("default") if linked else values[input_name])
                slot["widget"] = {"name": input_name}
                slot["link"] = None
                inputs.append(slot)
                for extra_name, extra_type, extra_value in extra_widgets(input_name, spec):
                    widgets_values.append(extra_value)
                    if extra_type:  # widgets with a type get an input slot, like "upload"
                        inputs.append({"localized_name": extra_name, "name": extra_name, "type": extra_type,
                                       "widget": {"name": extra_name}, "link": None})
            else:
                slot["link"] = None  # set when the link is made
                inputs.append(slot)
                n_links += 1
        # the frontend lists socket inputs (optional ones too) before the widgets' inputs
        inputs = [slot for slot in inputs if "widget" not in slot] + [slot for slot in inputs if "widget" in slot]
        outputs = [{"localized_name": out_name, "name": out_name, "type": out_type, "links": None}
                   for out_type, out_name in zip(info["output"], info["output_name"])]
        title = api_node.get("_meta", {}).get("title") or info["display_name"]
        node: dict[str, Any] = {
            "id": int(nid),
            "type": api_node["class_type"],
            "pos": [0, 0],
            "size": node_size(info, len(widgets_values), n_links, api_node["class_type"], title),
            "flags": {},
            "order": 0,
            "mode": 0,
            "inputs": inputs,
            "outputs": outputs,
        }
        if title != info["display_name"]:
            node["title"] = title
        node["properties"] = {"Node name for S&R": api_node["class_type"]}
        node["widgets_values"] = widgets_values
        nodes[nid] = node

    # links, in the order of the API nodes and their inputs
    for nid, api_node in api.items():
        target = nodes[nid]
        for input_name, value in api_node["inputs"].items():
            if not isinstance(value, list):
                continue
            source_id, source_slot = str(value[0]), int(value[1])
            source = nodes[source_id]
            slot_index = next(i for i, s in enumerate(target["inputs"]) if s["name"] == input_name)
            link_id = len(links) + 1
            out = source["outputs"][source_slot]
            links.append([link_id, int(source_id), source_slot, int(nid), slot_index, out["type"]])
            target["inputs"][slot_index]["link"] = link_id
            out["links"] = [*(out["links"] or []), link_id]

    for order, nid in enumerate(topological_order(api)):
        nodes[nid]["order"] = order

    note_id = max(int(k) for k in api) + 1
    if name in NOTES:
        nodes["note"] = {
            "id": note_id, "type": NOTE_TYPE, "pos": [0, 0], "size": list(NOTE_SIZE), "flags": {},
            "order": len(api), "mode": 0, "inputs": [], "outputs": [], "title": "About this workflow",
            "properties": {}, "widgets_values": [NOTES[name]], "color": "#432", "bgcolor": "#653",
        }
    groups = place(name, nodes)

    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"deep-image-analogy/workflows/{name}")),
        "revision": 0,
        "last_node_id": max(n["id"] for n in nodes.values()),
        "last_link_id": len(links),
        "nodes": sorted(nodes.values(), key=lambda n: n["id"]),
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def topological_order(api: dict) -> list[str]:
    """Node ids so that every node comes after its sources (ties by id)."""
    deps = {nid: {str(v[0]) for v in n["inputs"].values() if isinstance(v, list)} for nid, n in api.items()}
    done: list[str] = []
    while len(done) < len(deps):
        ready = sorted((nid for nid, d in deps.items() if nid not in done and d <= set(done)), key=int)
        if not ready:
            raise ValueError("the workflow has a cycle")
        done.append(ready[0])
    return done


def place(name: str, nodes: dict[str, dict]) -> list[dict]:
    """Set each node's position from LAYOUTS; return the groups around them."""
    grid = [[(cell,) if isinstance(cell, str) else (cell or ()) for cell in row] for row in LAYOUTS.get(name, [])]
    placed = [nid for row in grid for cell in row for nid in cell]
    if sorted(placed) != sorted(nodes):
        raise ValueError(f"{name}: LAYOUTS must place each of {sorted(nodes)} once, places {sorted(placed)}")

    def cell_size(cell: tuple[str, ...]) -> tuple[int, int]:
        if not cell:
            return 0, 0
        width = max(nodes[nid]["size"][0] for nid in cell)
        height = sum(TITLE_H + nodes[nid]["size"][1] for nid in cell) + GAP_Y * (len(cell) - 1)
        return width, height

    n_cols = max(len(row) for row in grid)
    widths = [max(cell_size(row[c])[0] if c < len(row) else 0 for row in grid) for c in range(n_cols)]
    heights = [max(cell_size(cell)[1] for cell in row) for row in grid]
    # room for a group title above each row, when the graph has groups
    group_top = GROUP_TITLE_H + GROUP_PAD if name in GROUPS else 0
    y = 0
    for r, row in enumerate(grid):
        x = 0
        for c in range(n_cols):
            node_y = y + group_top
            for nid in row[c] if c < len(row) else ():
                nodes[nid]["pos"] = [x, node_y + TITLE_H]
                node_y += TITLE_H + nodes[nid]["size"][1] + GAP_Y
            x += widths[c] + GAP_X
        y += group_top + heights[r] + GAP_Y + GROUP_PAD

    groups = []
    for index, (title, members) in enumerate(GROUPS.get(name, []), start=1):
        left = min(nodes[m]["pos"][0] for m in members) - GROUP_PAD
        top = min(nodes[m]["pos"][1] for m in members) - TITLE_H - GROUP_TITLE_H
        right = max(nodes[m]["pos"][0] + nodes[m]["size"][0] for m in members) + GROUP_PAD
        bottom = max(nodes[m]["pos"][1] + nodes[m]["size"][1] for m in members) + GROUP_PAD
        groups.append({"id": index, "title": title, "bounding": [left, top, right - left, bottom - top],
                       "color": "#3f789e", "font_size": 24, "flags": {}})
    return groups


# ---------------------------------------------------------------------------- main
def load_object_info(url: str | None, path: str | None) -> dict:
    if path:
        return json.loads(Path(path).read_text())
    if url:
        with urllib.request.urlopen(url.rstrip("/") + "/object_info", timeout=60) as resp:
            return json.loads(resp.read())
    from comfy_harness import ComfyInstall, ComfyServer  # scripts/comfy_harness, standard library only

    install = ComfyInstall.default()
    missing = install.missing()
    if missing:
        raise SystemExit(f"no ComfyUI to ask for /object_info ({'; '.join(missing)}); run "
                         "`bash scripts/setup_comfyui.sh`, or pass --url or --object-info")
    install.ensure_pack_link()
    logger.info("starting ComfyUI for /object_info")
    with ComfyServer(install, log_path=install.home / "logs" / "make_ui_workflows.log") as server:
        return server.object_info()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="a running ComfyUI with this pack, e.g. http://127.0.0.1:8188")
    source.add_argument("--object-info", help="a saved /object_info JSON file")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    object_info = load_object_info(args.url, args.object_info)
    stale = []
    for api_path in sorted(API_DIR.glob("*.json")):
        name = api_path.stem
        text = json.dumps(build(name, json.loads(api_path.read_text()), object_info), indent=2,
                          ensure_ascii=False) + "\n"
        out = EXAMPLES / f"{name}.json"
        if out.exists() and out.read_text() == text:
            logger.info("%s: up to date", out.relative_to(REPO))
            continue
        stale.append(out)
        if not args.check:
            out.write_text(text)
            logger.info("%s: written", out.relative_to(REPO))
    if args.check and stale:
        logger.error("out of date: %s", ", ".join(str(p.relative_to(REPO)) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
