"""The harness itself works, using ComfyUI's built-in nodes only."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from comfy_harness import PromptRejected
from PIL import Image

COLOR = 0x3A7FC4  # r=0x3A, g=0x7F, b=0xC4


def test_empty_image_to_save_image(comfy_server):
    prefix = f"dia_harness_{uuid.uuid4().hex[:8]}"
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": COLOR},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": prefix},
        },
    }
    entry = comfy_server.run(prompt, timeout=60)
    assert comfy_server.status_str(entry) == "success", comfy_server.messages(entry)

    paths = comfy_server.output_images(entry, "2")
    assert len(paths) == 1
    path = paths[0]
    assert path.is_file(), path
    assert path.parent == comfy_server.output_dir
    assert path.name.startswith(prefix)

    with Image.open(path) as img:
        assert img.size == (64, 64)
        pixels = np.asarray(img.convert("RGB"))
    expected = [(COLOR >> 16) & 0xFF, (COLOR >> 8) & 0xFF, COLOR & 0xFF]
    assert (pixels == np.array(expected, dtype=np.uint8)).all(), pixels[0, 0]
    path.unlink()


def test_unknown_node_type_is_rejected(comfy_server):
    prompt = {
        "1": {"class_type": "NoSuchNodeForDIA", "inputs": {}},
    }
    with pytest.raises(PromptRejected) as info:
        comfy_server.queue(prompt)
    err = info.value
    assert err.status == 400
    assert err.error["type"] == "invalid_prompt"
    assert "NoSuchNodeForDIA" in err.error["message"]
    assert "NoSuchNodeForDIA" in str(err)


def test_object_info_lists_builtin_nodes(comfy_server):
    info = comfy_server.object_info("EmptyImage")
    assert info is not None
    assert info["python_module"] == "nodes"
    assert "color" in info["input"]["required"]
    assert comfy_server.object_info("NoSuchNodeForDIA") is None
