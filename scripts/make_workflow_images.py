"""Make the example workflows' thumbnails and the README's screenshot of the step-by-step graph.

Runs every workflow of workflows/api/ at a small working size (sides 64-160 px,
3 PatchMatch iterations, 10 L-BFGS steps; the video template as it is, its demo clip
being small already) in the test ComfyUI on the pack's demo images (the templates load
them with Load Demo Image and Load Demo Clip), then:

- ``workflows/<name>.jpg`` (400x400, the size of a template card): the workflow's
  inputs and outputs, labelled; for the step-by-step graph, the graph itself above its
  outputs;
- ``docs/step_by_step.png`` (1600x900): the step-by-step graph as ComfyUI's page shows
  it in headless Chromium, fitted to the window, with the small run's images in its
  Load and Save nodes.

Needs ``bash scripts/setup_comfyui.sh`` (ComfyUI and Chromium). Takes a few minutes on
a CPU. The run's outputs are deleted. Frontend settings changed for the screenshot go to
a temporary user directory.

Usage: ``.venv/bin/python scripts/make_workflow_images.py [--only-screenshot] [--only NAME ...]``
(``--only`` makes the named templates' thumbnails, and the screenshot only when the
step-by-step graph is one of them).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from comfy_harness import Chromium, ComfyInstall, ComfyPage, ComfyServer, find_chromium  # scripts/comfy_harness
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(REPO / "scripts"))
from make_ui_workflows import FIELDS, ONE_NODE, REGIONS, STEP_BY_STEP, VIDEO, WLS  # noqa: E402  (the template names)

logger = logging.getLogger("make_workflow_images")

EXAMPLES = REPO / "workflows"
NAMES = (STEP_BY_STEP, ONE_NODE, FIELDS, WLS, REGIONS, VIDEO)
SCREENSHOT = REPO / "docs" / "step_by_step.png"
SCREEN_SIZE = (1600, 900)
THUMB = 400
DEMO = {"A": REPO / "demo" / "a.png", "B'": REPO / "demo" / "bp.png"}
SMALL = {
    "DeepAnalogy_DeepImageAnalogy": {"pm_iters": 3, "lbfgs_iters": 10, "min_side": 64, "max_side": 160},
    "DeepAnalogy_ExtractFeatures": {"min_side": 64, "max_side": 160},
    "DeepAnalogy_NNFSearch": {"iterations": 3},
    "DeepAnalogy_FeatureDeconvolution": {"iterations": 10},
}
BACKGROUND, TEXT = (32, 32, 32), (230, 230, 230)
SCREENSHOT_SETTINGS = {
    "Comfy.Minimap.Visible": False,
    "Comfy.Graph.CanvasInfo": False,
    "Comfy.NodeBadge.NodeSourceBadgeMode": "None",
}


# --------------------------------------------------------------------- running
def small(workflow: dict, out_prefix: str) -> dict:
    """The workflow at the small working size, saving under ``out_prefix``."""
    wf = copy.deepcopy(workflow)
    for node in wf.values():
        node["inputs"].update(SMALL.get(node["class_type"], {}))
        if node["class_type"] in ("SaveImage", "SaveVideo"):
            name = node["inputs"]["filename_prefix"].rsplit("/", 1)[-1]
            node["inputs"]["filename_prefix"] = f"{out_prefix}/{name}"
    return wf


def video_frames(path: Path) -> list[Image.Image]:
    """The frames of a video file (PyAV, which ComfyUI's video nodes use too)."""
    import av

    with av.open(str(path)) as container:
        return [frame.to_image().convert("RGB") for frame in container.decode(video=0)]


def run(server: ComfyServer, name: str, out_prefix: str) -> dict[str, Any]:
    """Run one workflow small; return its results by node title: the image of each
    SaveImage, the frames of each SaveVideo and of each Load Demo Clip."""
    wf = small(json.loads((EXAMPLES / "api" / f"{name}.json").read_text()), out_prefix)
    started = time.monotonic()
    entry = server.run(wf, timeout=1800)
    if server.status_str(entry) != "success":
        raise RuntimeError(f"{name} failed: {server.execution_error(entry) or server.messages(entry)}")
    logger.info("%s: ran in %.0f s", name, time.monotonic() - started)
    images: dict[str, Any] = {}
    for nid, node in wf.items():
        title = node["_meta"]["title"]
        if node["class_type"] == "SaveImage":
            (path,) = server.output_images(entry, nid)
            with Image.open(path) as im:
                images[title] = im.convert("RGB")
        elif node["class_type"] == "SaveVideo":
            (path,) = server.output_images(entry, nid)
            images[title] = video_frames(path)
        elif node["class_type"] == "DeepAnalogy_LoadDemoClip":  # its preview: one temporary image per frame
            images[title] = []
            for path in server.output_images(entry, nid):
                with Image.open(path) as im:
                    images[title].append(im.convert("RGB"))
    return images


# ------------------------------------------------------------------ thumbnails
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (it has arrows) where the system has it, else Pillow's own font."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], label: str, size: int) -> None:
    face = font(size)
    if isinstance(face, ImageFont.FreeTypeFont) and "DejaVu" not in (face.getname()[0] or ""):
        label = label.replace("\u2192", "->")  # Pillow's default font has no arrow
    draw.text(xy, label, fill=TEXT, font=face, anchor="mm")


def fit(im: Image.Image, width: int, height: int) -> Image.Image:
    scale = min(width / im.width, height / im.height)
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)


def sheet_with_title(title: str) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    sheet = Image.new("RGB", (THUMB, THUMB), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    text(draw, (THUMB // 2, 18), title, 18)
    return sheet, draw, 36


def tiles(sheet: Image.Image, draw: ImageDraw.ImageDraw, items: list[tuple[str, Image.Image]],
          top: int, cols: int = 2, label_h: int = 22) -> None:
    """Labelled images in a grid below ``top``, each label right under its image."""
    rows = -(-len(items) // cols)
    cell_w, cell_h = (THUMB - 8) // cols, (THUMB - top - 4) // rows
    for i, (label, im) in enumerate(items):
        x, y = 4 + (i % cols) * cell_w, top + (i // cols) * cell_h
        small_im = fit(im, cell_w - 6, cell_h - label_h)
        y0 = y + (cell_h - small_im.height - label_h) // 2
        sheet.paste(small_im, (x + (cell_w - small_im.width) // 2, y0))
        text(draw, (x + cell_w // 2, y0 + small_im.height + label_h // 2), label, 15)


def thumbnail(name: str, results: dict[str, dict[str, Any]], demo: dict[str, Image.Image],
              graph: Image.Image | None) -> Image.Image:
    r = results[name]
    a, bp = demo["A"], demo["B'"]
    if name == ONE_NODE:
        sheet, draw, top = sheet_with_title("Deep Image Analogy: A, B' \u2192 A', B")
        tiles(sheet, draw, [("A", a), ("B'", bp), ("A'", r["Save A'"]), ("B", r["Save B"])], top)
    elif name == STEP_BY_STEP:
        sheet, draw, top = sheet_with_title("Step by step, relu5_1 \u2192 relu1_1")
        graph_h = 0
        if graph is not None:
            small_graph = fit(graph, THUMB - 8, THUMB)
            sheet.paste(small_graph, (4, top))
            graph_h = small_graph.height
        tiles(sheet, draw, [("A'", r["Save A'"]), ("B", r["Save B"])], top + graph_h + 2)
    elif name == FIELDS:
        sheet, draw, top = sheet_with_title("Fields, warps and masks")
        tiles(sheet, draw, [("field A\u2192B'", r["Save field A\u2192B'"]), ("field B'\u2192A", r["Save field B'\u2192A"]),
                            ("B' warped onto A", r["Save warped B'"]), ("B' red mask on A", r["Save warped mask"])], top)
    elif name == WLS:
        sheet, draw, top = sheet_with_title("WLS refinement of A'")
        tiles(sheet, draw, [("A", a), ("B'", bp), ("A'", r["Save A'"]), ("A' refined", r["Save refined A'"])], top)
    elif name == REGIONS:
        sheet, draw, top = sheet_with_title("Region control: guide and limit")
        tiles(sheet, draw, [("A", a), ("B'", bp), ("A' (face to face, limited)", r["Save A'"]), ("B", r["Save B"])],
              top)
    elif name == VIDEO:
        sheet, draw, top = sheet_with_title("Video: each frame painted like B'")
        clip, painted = r["Load A frames (demo clip)"], r["Save A' video"]
        picks = (0, len(clip) // 2, len(clip) - 1)
        tiles(sheet, draw, [(f"A, frame {t + 1}", clip[t]) for t in picks]
              + [(f"A', frame {t + 1}", painted[t]) for t in picks], top, cols=3)
    else:
        raise KeyError(f"no thumbnail design for {name}")
    return sheet


# ------------------------------------------------------------------ screenshot
def screenshot(server: ComfyServer, out_prefix: str) -> tuple[Image.Image, dict[str, Any]]:
    """Open step_by_step in ComfyUI's page, run it small for the page, and screenshot it."""
    executable = find_chromium()
    if executable is None:
        raise SystemExit("no Chromium: run `bash scripts/setup_comfyui.sh`")
    with Chromium(executable, *SCREEN_SIZE) as browser:
        page = ComfyPage(browser, server.url).open()
        for key, value in SCREENSHOT_SETTINGS.items():
            page.set_setting(key, value)
        page.command("Workspace.ToggleFocusMode")  # no menus and side bars
        browser.evaluate("""(() => { const el = [...document.querySelectorAll('div')].find(
            d => d.children.length && (d.innerText || '').startsWith('Introducing Nodes 2.0'));
            const buttons = el ? el.parentElement.querySelectorAll('button') : [];
            if (buttons.length) buttons[buttons.length - 1].click(); return true; })()""")
        page.load(json.loads((EXAMPLES / f"{STEP_BY_STEP}.json").read_text()))
        # run the small version as this page's client, so the page shows the outputs in its nodes
        server.client_id = browser.evaluate("window.comfyAPI.api.api.clientId")
        images = run(server, STEP_BY_STEP, out_prefix)
        time.sleep(3.0)  # the previews load
        page.dismiss_popups()
        browser.evaluate("document.querySelectorAll('.p-buttongroup.absolute.bottom-0').forEach("
                         "e => e.style.display = 'none')")  # the zoom buttons
        scale = page.fit_graph(margin=16)
        logger.info("screenshot at zoom %.2f", scale)
        time.sleep(1.0)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SCREENSHOT)
    with Image.open(SCREENSHOT) as im:
        return im.convert("RGB"), images


# ------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only-screenshot", action="store_true", help="make docs/step_by_step.png only")
    parser.add_argument("--only", action="append", choices=NAMES, metavar="NAME",
                        help="make this template's thumbnail only (repeatable; the screenshot only with the "
                        "step-by-step graph)")
    args = parser.parse_args(argv)
    names = [STEP_BY_STEP] if args.only_screenshot else args.only or list(NAMES)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    install = ComfyInstall.default()
    missing = install.missing()
    if missing:
        raise SystemExit(f"ComfyUI is not set up ({'; '.join(missing)}): run `bash scripts/setup_comfyui.sh`")
    install.ensure_pack_link()
    out_prefix = f"dia_images_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="dia-comfy-user-") as user_dir:
        server = ComfyServer(install, log_path=install.home / "logs" / "make_workflow_images.log",
                             extra_args=("--user-directory", user_dir))
        try:
            server.start(timeout=180)
            results: dict[str, dict[str, Any]] = {}
            graph = None
            if STEP_BY_STEP in names:
                graph, results[STEP_BY_STEP] = screenshot(server, out_prefix)
                logger.info("wrote %s", SCREENSHOT.relative_to(REPO))
            if args.only_screenshot:
                return 0
            for name in names:
                if name != STEP_BY_STEP:
                    results[name] = run(server, name, out_prefix)
            demo = {}
            for role, source in DEMO.items():
                with Image.open(source) as im:
                    demo[role] = im.convert("RGB")
            for name in sorted(results):
                path = EXAMPLES / f"{name}.jpg"
                thumbnail(name, results, demo, graph).save(path, quality=88, optimize=True)
                logger.info("wrote %s", path.relative_to(REPO))
        finally:
            server.stop()
            shutil.rmtree(server.output_dir / out_prefix, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
