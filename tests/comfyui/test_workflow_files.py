"""The templates: the UI-format files in workflows/ are the same graphs as their
API-format copies in workflows/api/ (which test_pack.py and test_fresh_install.py run).

Proven two ways, against the running ComfyUI's /object_info:
- in Python, converting each UI file the way ComfyUI's frontend does (widget values
  mapped to input names in object_info order, frontend-only widgets skipped, links
  resolved to ``[source_id, output_slot]``, notes dropped);
- through the real frontend, in headless Chromium: ``app.loadGraphData(ui)`` then
  ``app.graphToPrompt()``. These run when Chromium is installed (scripts/setup_comfyui.sh
  installs Debian's ``chromium``) and skip otherwise, unless ``DIA_REQUIRE_CHROMIUM`` is
  set (CI sets it), in which case they fail.

Also: ComfyUI lists exactly the UI files as the pack's templates (not the api/
subfolder) and serves each with its .jpg thumbnail; and in the real frontend every seed
of the pack's nodes stays "fixed", in the templates and on nodes added by hand.
"""

from __future__ import annotations

import io
import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from comfy_harness import Chromium, ComfyPage, find_chromium
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "workflows"
API_DIR = EXAMPLES / "api"
PACK = "deep_image_analogy"
# file names = titles on the template cards
NAMES = (
    "Deep Image Analogy - one node",
    "Deep Image Analogy - step by step",
    "Deep Image Analogy - fields, warps and masks",
    "Deep Image Analogy - WLS refinement",
    "Deep Image Analogy - region control",
    "Deep Image Analogy - video",
)

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY_NODES = {"Note", "MarkdownNote"}  # never sent to the server
CONTROL = "<control_after_generate>"
UPLOAD = "<upload>"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def widget_slots(info: dict) -> list[str]:
    """The names behind a node's ``widgets_values``, in order, as the frontend builds them.

    One widget per non-link input of ``required`` then ``optional`` (in ``input_order``).
    An INT input gets a control widget after it when its spec says
    ``control_after_generate`` or, without that key, when it is named seed/noise_seed
    (frontend: ``control_after_generate ?? ["seed", "noise_seed"].includes(name)``).
    An ``image_upload`` combo is followed by the upload button's value.
    """
    slots = []
    order = info.get("input_order", {})
    for group in ("required", "optional"):
        specs = info["input"].get(group, {})
        for name in order.get(group, list(specs)):
            spec = specs[name]
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            opts = spec[1] if len(spec) > 1 else {}
            if kind not in WIDGET_TYPES or opts.get("forceInput"):
                continue
            slots.append(name)
            if kind == "INT" and opts.get("control_after_generate", name in ("seed", "noise_seed")):
                slots.append(CONTROL)
            if opts.get("image_upload"):
                slots.append(UPLOAD)
    return slots


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """The API-format prompt for a UI-format workflow, as the frontend's graphToPrompt makes it."""
    links = {link[0]: link for link in ui["links"]}
    prompt = {}
    for node in ui["nodes"]:
        if node["type"] in FRONTEND_ONLY_NODES:
            continue
        assert node.get("mode", 0) == 0, f"node {node['id']} is muted or bypassed"
        info = object_info[node["type"]]
        slots = widget_slots(info)
        values = node.get("widgets_values", [])
        assert len(values) == len(slots), f"node {node['id']} {node['type']}: {values} for widgets {slots}"
        inputs = {name: value for name, value in zip(slots, values) if name not in (CONTROL, UPLOAD)}
        for index, slot in enumerate(node.get("inputs", [])):
            if slot.get("link") is None:
                continue
            link_id, source, source_slot, target, target_slot, _type = links[slot["link"]]
            assert (target, target_slot) == (node["id"], index), f"link {link_id} does not end at this slot"
            inputs[slot["name"]] = [str(source), source_slot]
        title = node.get("title") or info["display_name"]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs, "_meta": {"title": title}}
    return prompt


def same_prompt(got: dict, want: dict) -> list[str]:
    """Differences between two API prompts, node by node (empty when equal)."""
    problems = []
    for nid in sorted(set(got) | set(want), key=int):
        if nid not in got or nid not in want:
            problems.append(f"node {nid}: only in {'the converted file' if nid in got else 'the API copy'}")
            continue
        g, w = got[nid], want[nid]
        if g["class_type"] != w["class_type"]:
            problems.append(f"node {nid}: class {g['class_type']} vs {w['class_type']}")
        for name in sorted(set(g["inputs"]) | set(w["inputs"])):
            if g["inputs"].get(name, "<missing>") != w["inputs"].get(name, "<missing>"):
                problems.append(f"node {nid} input {name}: {g['inputs'].get(name, '<missing>')!r} "
                                f"vs {w['inputs'].get(name, '<missing>')!r}")
        if g.get("_meta", {}).get("title") != w.get("_meta", {}).get("title"):
            problems.append(f"node {nid}: title {g.get('_meta')} vs {w.get('_meta')}")
    return problems


def _require_chromium() -> bool:
    return os.environ.get("DIA_REQUIRE_CHROMIUM", "").strip().lower() not in ("", "0", "false", "no")


# --------------------------------------------------------------------- the files
def test_every_api_workflow_has_a_ui_file_and_a_thumbnail():
    assert sorted(p.stem for p in API_DIR.glob("*.json")) == sorted(NAMES)
    assert sorted(p.stem for p in EXAMPLES.glob("*.json")) == sorted(NAMES)
    # one template folder: ComfyUI would serve every one of its candidate names under one URL
    others = [name for name in ("example_workflows", "example", "examples", "workflow") if (REPO / name).exists()]
    assert not others, f"workflows/ is the one template folder; also found {others}"
    for name in NAMES:
        thumb = EXAMPLES / f"{name}.jpg"
        assert thumb.is_file(), f"{thumb} missing: the frontend only asks for a same-name .jpg"
        with Image.open(thumb) as im:
            assert im.format == "JPEG"
            assert 300 <= im.width <= 600, im.size


def test_ui_files_keep_the_seeds_fixed():
    """A template must repeat its result: every "control after generate" says "fixed"."""
    for name in NAMES:
        for node in load(EXAMPLES / f"{name}.json")["nodes"]:
            controls = [v for v in node.get("widgets_values", []) if v in ("fixed", "increment", "decrement",
                                                                            "randomize")]
            assert all(v == "fixed" for v in controls), f"{name} node {node['id']}: {controls}"


@pytest.mark.parametrize("name", NAMES)
def test_ui_file_converts_to_its_api_copy(comfy_server, name):
    object_info = comfy_server.object_info()
    ui = load(EXAMPLES / f"{name}.json")
    api = load(API_DIR / f"{name}.json")
    # the links array and the slots agree both ways
    for link_id, source, source_slot, target, target_slot, link_type in ui["links"]:
        nodes = {n["id"]: n for n in ui["nodes"]}
        assert link_id in (nodes[source]["outputs"][source_slot]["links"] or [])
        assert nodes[target]["inputs"][target_slot]["link"] == link_id
        assert nodes[source]["outputs"][source_slot]["type"] == link_type
    assert ui["last_node_id"] == max(n["id"] for n in ui["nodes"])
    assert ui["last_link_id"] == max((link[0] for link in ui["links"]), default=0)
    problems = same_prompt(ui_to_api(ui, object_info), api)
    assert not problems, "\n".join(problems)


def test_comfyui_lists_the_ui_files_as_templates(comfy_server):
    listing = comfy_server.get_json("/api/workflow_templates")
    # .json files directly in workflows/ only: the api/ copies are not templates
    assert sorted(listing.get(PACK, [])) == sorted(NAMES), listing.get(PACK)
    for name in NAMES:
        base = f"{comfy_server.url}/api/workflow_templates/{PACK}/{urllib.parse.quote(name)}"
        with urllib.request.urlopen(base + ".json", timeout=30) as resp:
            assert json.loads(resp.read()) == load(EXAMPLES / f"{name}.json")
        with urllib.request.urlopen(base + ".jpg", timeout=30) as resp:
            assert resp.status == 200
            with Image.open(io.BytesIO(resp.read())) as im:
                assert im.format == "JPEG"


# ------------------------------------------------------------ the real frontend
@pytest.fixture(scope="module")
def page(comfy_server):
    executable = find_chromium()
    if executable is None:
        message = "Chromium is not installed (scripts/setup_comfyui.sh installs Debian's chromium)"
        if _require_chromium():
            pytest.fail(f"DIA_REQUIRE_CHROMIUM is set but {message}", pytrace=False)
        pytest.skip(message)
    browser = Chromium(executable, width=1600, height=900).start()
    try:
        yield ComfyPage(browser, comfy_server.url).open()
    finally:
        browser.stop()


@pytest.mark.parametrize("name", NAMES)
def test_frontend_turns_the_ui_file_into_its_api_copy(page, name):
    ui = load(EXAMPLES / f"{name}.json")
    page.dismiss_popups()
    result = page.load(ui)
    problems = same_prompt(result["prompt"], load(API_DIR / f"{name}.json"))
    assert not problems, f"frontend {page.frontend_version()}:\n" + "\n".join(problems)
    # it loaded the file as it is: no validation alert, no repaired links, the same widgets
    assert not page.popups(), page.popups()
    assert result["workflow"]["links"] == ui["links"]
    loaded = {n["id"]: n for n in result["workflow"]["nodes"]}
    for node in ui["nodes"]:
        assert loaded[node["id"]]["type"] == node["type"]
        assert loaded[node["id"]].get("widgets_values") == node.get("widgets_values"), node["id"]


# What the frontend does around a queue, twice: every widget's beforeQueued, then its
# afterQueued (where "control after generate" changes the seed unless it is "fixed").
HAND_ADDED_JS = """((types) => {
  app.graph.clear();
  const out = {};
  for (const type of types) {
    const node = LiteGraph.createNode(type);
    app.graph.add(node);
    const seed = node.widgets.find((w) => w.name === "seed");
    seed.value = 1234;
    const controls = (seed.linkedWidgets ?? []).map((w) => w.value);
    for (let i = 0; i < 2; i++) for (const w of node.widgets) { w.beforeQueued?.(); w.afterQueued?.(); }
    out[type] = {controls, seed: seed.value};
  }
  app.graph.clear();
  return JSON.stringify(out);
})"""
SEED_CONTROLS_JS = """JSON.stringify(app.graph.nodes.filter((n) => n.widgets?.some((w) => w.name === "seed")).map(
  (n) => [n.id, n.type, n.widgets.find((w) => w.name === "seed").linkedWidgets?.map((w) => w.value) ?? []]))"""


def test_the_pack_frontend_extension_is_loaded(comfy_server, page):
    assert "/extensions/deep_image_analogy/deep_image_analogy.js" in comfy_server.get_json("/extensions")
    names = json.loads(page.browser.evaluate("JSON.stringify(app.extensions.map((e) => e.name))"))
    assert "DeepImageAnalogy.FixedSeeds" in names


def test_hand_added_nodes_keep_their_seed_fixed(page):
    """A node added by hand starts with its seed's control at "fixed" and keeps its seed
    across queues. ComfyUI's own KSampler, on the same page, shows what the frontend
    does otherwise (0.3.75 starts every seed control at "randomize")."""
    page.dismiss_popups()
    ours = ["DeepAnalogy_DeepImageAnalogy", "DeepAnalogy_NNFSearch"]
    result = json.loads(page.browser.evaluate(f"{HAND_ADDED_JS}({json.dumps([*ours, 'KSampler'])})"))
    for node_type in ours:
        assert result[node_type] == {"controls": ["fixed"], "seed": 1234}, (node_type, result[node_type])
    assert result["KSampler"]["controls"] == ["randomize"]
    assert result["KSampler"]["seed"] != 1234  # the check above would see a re-roll


@pytest.mark.parametrize("name", NAMES)
def test_template_seed_widgets_are_fixed_in_the_frontend(page, name):
    ui = load(EXAMPLES / f"{name}.json")
    page.dismiss_popups()
    page.load(ui)
    seeds = json.loads(page.browser.evaluate(SEED_CONTROLS_JS))
    seeded = ("DeepAnalogy_DeepImageAnalogy", "DeepAnalogy_NNFSearch", "DeepAnalogy_VideoAnalogy")
    expected = sum(n["type"] in seeded for n in ui["nodes"])
    assert len(seeds) == expected
    assert all(controls == ["fixed"] for _, _, controls in seeds), seeds


def test_a_saved_control_choice_is_kept(page):
    """The extension only sets new nodes: a workflow that saved another choice keeps it."""
    ui = load(EXAMPLES / f"{NAMES[0]}.json")
    node = next(n for n in ui["nodes"] if n["type"] == "DeepAnalogy_DeepImageAnalogy")
    index = node["widgets_values"].index("fixed")
    node["widgets_values"][index] = "increment"
    page.dismiss_popups()
    page.load(ui)
    seeds = json.loads(page.browser.evaluate(SEED_CONTROLS_JS))
    assert [controls for nid, _, controls in seeds if nid == node["id"]] == [["increment"]]


# How the frontend's template browser (1.32.9) fetches a custom node's template and its
# card image: the file name put into the URL as it is (the browser encodes the spaces).
TEMPLATE_FETCH_JS = """(async (pack, name) => {
  const api = window.comfyAPI.api.api;
  const json = await (await fetch(api.apiURL(`/workflow_templates/${pack}/${name}.json`))).json();
  const img = new Image();
  img.src = api.apiURL(`/workflow_templates/${pack}/${name}.jpg`);
  await img.decode();
  return JSON.stringify({json, thumbnail: [img.naturalWidth, img.naturalHeight]});
})"""


@pytest.mark.parametrize("name", NAMES)
def test_template_browser_fetches_each_template_by_its_file_name(page, name):
    got = json.loads(page.browser.evaluate(f"{TEMPLATE_FETCH_JS}({json.dumps(PACK)}, {json.dumps(name)})"))
    assert got["json"] == load(EXAMPLES / f"{name}.json")
    assert got["thumbnail"] == [400, 400]
