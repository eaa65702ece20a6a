from __future__ import annotations

import pytest
import torch

from analogy_core import flow_to_nnf, identity_nnf, nnf_to_flow, patch_vote, upsample_nnf, warp


def test_vote_with_identity_reproduces_image(device):
    img = torch.rand(2, 3, 17, 23, device=device)
    for p in (1, 3, 5):
        assert torch.allclose(patch_vote(img, identity_nnf(2, 17, 23, device), p), img, atol=1e-6)


def test_vote_with_constant_shift_reproduces_shifted_image(device):
    img = torch.rand(1, 3, 20, 20, device=device)
    nnf = identity_nnf(1, 12, 12, device) + torch.tensor([5, 3], device=device)
    out = patch_vote(img, nnf, 5)
    assert torch.allclose(out, img[:, :, 3:15, 5:17], atol=1e-6)


def test_warp_gathers_target_pixels(device):
    img = torch.arange(12, dtype=torch.float32, device=device).view(1, 1, 3, 4)
    nnf = torch.tensor([[[[3, 2], [0, 0]]]], device=device)  # (1, 1, 2, 2)
    assert warp(img, nnf).flatten().tolist() == [11.0, 0.0]


def test_upsample_doubles_identity_and_shift(device):
    nnf = identity_nnf(1, 5, 6, device) + torch.tensor([1, 0], device=device)
    up = upsample_nnf(nnf.clamp(max=6), (10, 12), (5, 7), (10, 14))
    expect = identity_nnf(1, 10, 12, device) + torch.tensor([2, 0], device=device)
    assert torch.equal(up, expect)


def test_upsample_handles_odd_sizes_and_stays_in_bounds(device):
    g = torch.Generator().manual_seed(0)
    nnf = torch.stack((torch.randint(0, 7, (1, 5, 6), generator=g), torch.randint(0, 4, (1, 5, 6), generator=g)), -1)
    up = upsample_nnf(nnf.to(device), (11, 13), (4, 7), (9, 15))
    assert up.shape == (1, 11, 13, 2)
    assert up[..., 0].min() >= 0 and up[..., 0].max() < 15 and up[..., 1].max() < 9


def test_flow_roundtrip_and_convention(device):
    nnf = identity_nnf(1, 6, 7, device) + torch.tensor([2, -1], device=device)
    nnf = nnf.clamp(min=0)
    flow = nnf_to_flow(nnf)
    assert flow.dtype == torch.float32
    # pixel (x, y) of A matches (x + dx, y + dy)
    assert flow[0, 3, 1].tolist() == [2.0, -1.0]
    assert torch.equal(flow_to_nnf(flow, (6, 9)), nnf)


def test_flow_resampled_to_other_sizes_scales_displacement(device):
    nnf = identity_nnf(1, 8, 8, device) + torch.tensor([2, 0], device=device)
    flow = nnf_to_flow(nnf.clamp(max=7), (16, 16), (8, 8), (16, 16))
    assert flow.shape == (1, 16, 16, 2)
    assert torch.allclose(flow[0, 4:12, 2:10, 0], torch.full((8, 8), 4.0, device=device))


def test_vote_rejects_mismatched_batches(device):
    with pytest.raises(ValueError, match="batch"):
        patch_vote(torch.rand(2, 3, 4, 4, device=device), identity_nnf(1, 4, 4, device), 3)
