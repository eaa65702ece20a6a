"""Seeded fuzz over sizes, aspect ratios and presets: no crash, clear refusals, valid fields."""

from __future__ import annotations

import random

import pytest
import torch

from analogy_core import PRESETS, resolve_config, run_analogy


@pytest.mark.parametrize("case", range(6))
def test_random_sizes_and_presets(vgg, device, case):
    rng = random.Random(1000 + case)
    sizes = [(rng.randint(16, 1024), rng.randint(16, 1024)) for _ in range(2)]
    if case == 0:
        sizes[0] = (16, 1024)  # an aspect ratio no limits can hold
    preset = rng.choice(sorted(PRESETS))
    # size limits scaled down 4x (like the presets' 200..700 px, 350k px²) to keep CPU time small
    cfg = resolve_config(preset, pm_iters=1, lbfgs_iters=1, min_side=50, max_side=175, max_area=21_875)
    g = torch.Generator().manual_seed(case)
    (ha, wa), (hb, wb) = sizes
    a = torch.rand(1, 3, ha, wa, generator=g).to(device)
    bp = torch.rand(1, 3, hb, wb, generator=g).to(device)
    try:
        res = run_analogy(vgg, a, bp, cfg, seed=case)
    except ValueError as e:
        msg = str(e)
        assert "aspect ratio cannot fit" in msg and "\n" not in msg, msg
        assert max(ha, wa) / min(ha, wa) > 175 / 50 or max(hb, wb) / min(hb, wb) > 175 / 50
        return
    assert res.ap.shape == a.shape and res.b.shape == bp.shape
    for flow, (hs, ws), (ht, wt) in ((res.flow_ab, (ha, wa), (hb, wb)), (res.flow_ba, (hb, wb), (ha, wa))):
        assert flow.shape == (1, hs, ws, 2) and torch.isfinite(flow).all()
        ys, xs = torch.meshgrid(torch.arange(hs, device=device), torch.arange(ws, device=device), indexing="ij")
        tx, ty = xs + flow[0, ..., 0], ys + flow[0, ..., 1]
        assert tx.min() >= 0 and tx.max() <= wt - 1 and ty.min() >= 0 and ty.max() <= ht - 1
    assert torch.isfinite(res.ap).all() and torch.isfinite(res.b).all()
