"""Clips: frames streamed one at a time, independent or with temporal coherence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from analogy_core import load_image, pixel_grid, resolve_config, run_analogy
from analogy_core.video import (
    Motion,
    PreviousFrame,
    TemporalConfig,
    carry_fields,
    consistent_motion,
    estimate_motion,
    run_video,
    temporal_blend,
)
from bench.quality.appearance import hue_rotate
from bench.video import flicker, make_clip

CHELSEA = Path(__file__).resolve().parents[1] / "data" / "chelsea.png"
SMALL = resolve_config("photo2style", min_side=32, max_side=96, pm_iters=2, lbfgs_iters=3)


@pytest.fixture(scope="module")
def clip():
    return make_clip(load_image(CHELSEA), hue_rotate, frames=4, height=48, width=64)


def test_frames_with_temporal_off_equal_single_image_runs(vgg, device, clip):
    frames, bp = clip.frames.to(device), clip.bp.to(device)
    results = list(run_video(vgg, frames, bp, SMALL, seed=3))
    assert [r.index for r in results] == [0, 1, 2, 3]
    for t, res in enumerate(results):
        alone = run_analogy(vgg, frames[t : t + 1], bp, SMALL, seed=3)
        for got, want in ((res.ap, alone.ap), (res.b, alone.b), (res.flow_ab, alone.flow_ab),
                          (res.flow_ba, alone.flow_ba)):
            if device.type == "cpu":
                assert torch.equal(got, want)
            else:
                torch.testing.assert_close(got, want)


def test_frames_are_pulled_one_at_a_time_and_progress_names_them(vgg, device, clip):
    pulled = []

    def source():
        for t in range(3):
            pulled.append(t)
            yield clip.frames[t : t + 1].to(device)

    seen = []
    run = run_video(vgg, source(), clip.bp.to(device), SMALL, frame_count=3,
                    progress=lambda d, t, s: seen.append((d, t, s)))
    first = next(run)
    assert first.index == 0 and pulled == [0]  # the next frame is not read before it is needed
    rest = list(run)
    assert len(rest) == 2 and pulled == [0, 1, 2]
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and seen[-1][0] == seen[-1][1]
    stages = {s for _, _, s in seen}
    assert any(s.startswith("frame 1 of 3: nnf") for s in stages)
    assert any(s.startswith("frame 3 of 3: vote") for s in stages)


def test_cancel_stops_the_clip_and_keeps_the_frames_already_yielded(vgg, device, clip):
    class Stop(Exception):
        pass

    stop = {"now": False}

    def check():
        if stop["now"]:
            raise Stop

    run = run_video(vgg, clip.frames[:3].to(device), clip.bp.to(device), SMALL, check_interrupt=check)
    first = next(run)
    stop["now"] = True  # e.g. Cancel pressed while the caller writes frame 1
    with pytest.raises(Stop):
        next(run)
    assert first.index == 0 and first.ap.shape == (1, 3, 48, 64) and torch.isfinite(first.ap).all()


def test_bad_clips_raise_one_line_errors(vgg, device, clip):
    bp = clip.bp.to(device)
    with pytest.raises(ValueError, match="no frames"):
        list(run_video(vgg, iter([]), bp, SMALL))
    mixed = [clip.frames[:1].to(device), clip.frames[:1, :, :40, :].to(device)]
    with pytest.raises(ValueError, match="frame 2 is 64x40 px but frame 1 is 64x48 px"):
        list(run_video(vgg, iter(mixed), bp, SMALL))
    with pytest.raises(ValueError, match="B' has 2 images but the clip has 4 frames"):
        list(run_video(vgg, clip.frames.to(device), bp.expand(2, -1, -1, -1), SMALL))
    with pytest.raises(ValueError, match="weight"):
        TemporalConfig(weight=1.0)


def test_consistency_marks_occlusions_and_the_border_unreliable():
    h, w = 8, 10
    grid = pixel_grid(h, w).unsqueeze(0)
    back = grid + torch.tensor([1.0, 0.0])  # frame t's pixel x was at x + 1: a pan
    fwd = grid - torch.tensor([1.0, 0.0])
    ok = consistent_motion(back.clamp(0, w - 1), fwd.clamp(0, w - 1), 0.5)[0]
    assert ok[1:-1, 1 : w - 2].all()
    assert not ok[:, w - 2 :].any()  # entering the view: matched onto the border
    broken = fwd.clone()
    broken[0, 3:5, 3:6] += 3.0  # the two directions disagree there
    ok2 = consistent_motion(back, broken, 0.5)[0]
    assert not ok2[3:5, 2:5].any() and ok2[6, 2:5].all()


def test_motion_of_a_known_pan_is_recovered_and_carries_fields(vgg, device, clip):
    prev, cur = clip.frames[1:2].to(device), clip.frames[2:3].to(device)
    feats = [vgg.extract(x)["relu3_1"] for x in (prev, cur)]
    motion = estimate_motion(prev, cur, feats[0], feats[1], radius=3, iters=3)
    truth = clip.backward[2].to(device)
    rel = motion.reliable[0]
    assert rel.float().mean() > 0.7
    err = (motion.backward[0] - truth).norm(dim=-1)[rel]
    assert err.median() < 0.5
    # the previous frame's field carried by a pure shift is the field shifted
    ident = pixel_grid(3, 4, dtype=torch.long).unsqueeze(0)
    shift = Motion(backward=(pixel_grid(48, 64) + torch.tensor([16.0, 0.0])).clamp(0, 63).unsqueeze(0),
                   forward=(pixel_grid(48, 64) - torch.tensor([16.0, 0.0])).clamp(0, 63).unsqueeze(0),
                   reliable=torch.ones(1, 48, 64, dtype=torch.bool))
    ab, ba = carry_fields(ident, ident, shift, (3, 4))
    assert ab[0, :, :3].tolist() == ident[0, :, 1:].tolist()
    assert ba[0, :, 1:, 0].tolist() == (ident[0, :, 1:, 0] - 1).tolist()
    # the temporal term leaves unreliable pixels exactly alone
    ap, prev_ap = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 48, 64)
    half = Motion(shift.backward, shift.forward, torch.zeros(1, 48, 64, dtype=torch.bool))
    assert torch.equal(temporal_blend(ap, prev_ap, half, 0.6), ap)



def test_compensated_blend_carries_the_change_through_a_blurring_warp():
    """Blending A' − A: a change c_prev of the previous frame reaches this frame exactly,
    even through a half-pixel motion whose bilinear warp blurs the picture itself."""
    g = torch.Generator().manual_seed(0)
    fine = 0.2 + 0.6 * torch.rand(1, 3, 24, 66, generator=g)
    a_prev = F.avg_pool2d(fine[..., :64], (1, 2))  # two frames half a pixel apart, both sharp
    a = F.avg_pool2d(fine[..., 1:65], (1, 2))
    back = (pixel_grid(24, 32) + torch.tensor([0.5, 0.0])).unsqueeze(0)
    inside = back[..., 0] <= 31
    motion = Motion(backward=back, forward=back, reliable=inside)
    ap_prev, ap = a_prev + 0.05, a + 0.15  # all in 0..1: no clamping
    out = temporal_blend(ap, ap_prev, motion, 0.5, (a, a_prev))
    keep = inside[0]
    assert torch.allclose(out[..., keep], (a + 0.1)[..., keep], atol=1e-6)
    assert torch.equal(out[..., ~keep], ap[..., ~keep])
    # blending A' itself brings the warp's blur of the previous picture into the result
    plain = temporal_blend(ap, ap_prev, motion, 0.5)
    assert (plain - (a + 0.1))[..., keep].abs().max() > 0.05


def test_temporal_coherence_lowers_flicker_on_the_known_clip(vgg, device, clip):
    frames, bp = clip.frames.to(device), clip.bp.to(device)
    temporal = TemporalConfig()
    indep = [r.ap.cpu() for r in run_video(vgg, frames, bp, SMALL)]
    runs = list(run_video(vgg, frames, bp, SMALL, temporal=temporal))
    coherent = [r.ap.cpu() for r in runs]
    assert torch.equal(coherent[0], indep[0])  # the first frame is solved cold, as alone
    assert [r.warm for r in runs] == [False, True, True, True]

    def mean_flicker(aps):
        return sum(flicker(aps[t], aps[t - 1], clip.backward[t]) for t in range(1, 4)) / 3

    assert mean_flicker(coherent) < 0.8 * mean_flicker(indep)
    # a resumed run blends its first frame with the previous output (no warm start)
    resumed = list(run_video(vgg, frames[2:], bp, SMALL, temporal=temporal, first_index=2,
                             previous=PreviousFrame(a=frames[1:2], ap=coherent[1].to(device))))
    assert [r.index for r in resumed] == [2, 3] and not resumed[0].warm and resumed[0].reliable > 0.5
