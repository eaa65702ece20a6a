"""The video node: a frame batch in, A' and B frames out; temporal off equals the one-image node per frame."""

from __future__ import annotations

import torch

from tests.nodes.test_execute import DEMO, SMALL, comfy_image, run


def test_video_node_paints_every_frame(node_classes, vgg):
    a = comfy_image(DEMO / "a.png", (72, 48))
    frames = torch.cat([a[:, :, s : s + 64] for s in (0, 2, 4)])  # a slow pan, [3, 48, 64, 3]
    bp = comfy_image(DEMO / "bp.png")
    node = node_classes["DeepAnalogy_VideoAnalogy"]
    off_ap, off_b = run(node, vgg=vgg, frames=frames, image_bp=bp, temporal=False, temporal_weight=0.6, **SMALL)
    assert off_ap.shape == (3, 48, 64, 3) and off_b.shape == (3, 48, 64, 3)
    one = node_classes["DeepAnalogy_DeepImageAnalogy"]
    for t in range(3):
        ap, b, _, _ = run(one, vgg=vgg, image_a=frames[t : t + 1], image_bp=bp, **SMALL)
        assert torch.equal(ap[0], off_ap[t]) and torch.equal(b[0], off_b[t])
    on_ap, _ = run(node, vgg=vgg, frames=frames, image_bp=bp, temporal=True, temporal_weight=0.6, **SMALL)
    assert torch.equal(on_ap[0], off_ap[0]) and not torch.equal(on_ap[1], off_ap[1])
    assert 0 <= float(on_ap.min()) and float(on_ap.max()) <= 1
