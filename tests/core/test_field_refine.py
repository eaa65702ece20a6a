"""Flow fields (colour coding, warping) and the WLS refinement, with known answers."""

from __future__ import annotations

import pytest
import torch

from analogy_core import FlowField, flow_to_colour, warp_by_field, wls_apply, wls_filter, wls_refine, wls_weights
from analogy_core.nnf import identity_nnf, nnf_to_flow
from analogy_core.refine import _SOLVERS
from analogy_core.vote import warp
from bench.wls_speed import blocks


def _constant_flow(dx: float, dy: float, h: int = 4, w: int = 5, n: int = 1) -> torch.Tensor:
    return torch.tensor([dx, dy], dtype=torch.float32).expand(n, h, w, 2).contiguous()


# ------------------------------------------------------------------------- FlowField
def test_field_sizes_and_targets():
    f = FlowField(_constant_flow(1.0, 2.0, 3, 4, n=2), (6, 8))
    assert f.source_hw == (3, 4) and f.target_hw == (6, 8) and f.batch == 2
    t = f.targets()
    assert t.shape == (2, 3, 4, 2)
    assert t[0, 2, 3].tolist() == [4.0, 4.0]  # (x, y) = (3 + 1, 2 + 2)


@pytest.mark.parametrize(
    ("flow", "target", "error", "match"),
    [
        (torch.zeros(1, 4, 4), (4, 4), ValueError, r"shape \(N H W 2\)"),
        (torch.zeros(1, 4, 4, 2, dtype=torch.float64), (4, 4), TypeError, "float32"),
        (torch.zeros(1, 4, 4, 2), (0, 4), ValueError, "positive"),
    ],
)
def test_field_rejects_bad_values(flow, target, error, match):
    with pytest.raises(error, match=match):
        FlowField(flow, target)


# -------------------------------------------------------------------- colour coding
@pytest.mark.parametrize(
    ("dx", "dy", "rgb"),
    [
        (1.0, 0.0, (1.0, 0.0, 0.0)),  # +x: red
        (-1.0, 0.0, (0.0, 1.0, 1.0)),  # -x: cyan
        (0.0, 1.0, (0.5, 1.0, 0.0)),  # +y (down): yellow-green
        (0.0, -1.0, (0.5, 0.0, 1.0)),  # -y: violet
        (0.0, 0.0, (1.0, 1.0, 1.0)),  # still: white
    ],
)
def test_direction_colours(dx, dy, rgb):
    out = flow_to_colour(FlowField(_constant_flow(dx, dy), (4, 5)), max_flow=1.0)
    assert out.shape == (1, 3, 4, 5)
    torch.testing.assert_close(out[0, :, 1, 1], torch.tensor(rgb), atol=1e-6, rtol=0)


def test_direction_saturation_scales_with_length():
    flow = torch.zeros(1, 1, 2, 2)
    flow[0, 0, 0] = torch.tensor([2.0, 0.0])
    flow[0, 0, 1] = torch.tensor([4.0, 0.0])
    auto = flow_to_colour(FlowField(flow, (1, 8)))  # longest flow (4 px) is fully saturated
    torch.testing.assert_close(auto[0, :, 0, 1], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(auto[0, :, 0, 0], torch.tensor([1.0, 0.5, 0.5]))
    fixed = flow_to_colour(FlowField(flow, (1, 8)), max_flow=8.0)
    torch.testing.assert_close(fixed[0, :, 0, 1], torch.tensor([1.0, 0.5, 0.5]))


def test_coordinate_colours_of_identity_field():
    flow = nnf_to_flow(identity_nnf(1, 3, 5))
    out = flow_to_colour(FlowField(flow, (3, 5)), mode="coordinates")
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))  # top left: blue
    torch.testing.assert_close(out[0, :, 0, 4], torch.tensor([1.0, 0.0, 0.0]))  # top right: red
    torch.testing.assert_close(out[0, :, 2, 0], torch.tensor([0.0, 1.0, 1.0]))  # bottom left: cyan
    torch.testing.assert_close(out[0, :, 2, 4], torch.tensor([1.0, 1.0, 0.0]))  # bottom right: yellow
    torch.testing.assert_close(out[0, 0, 1], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))


def test_colour_rejects_bad_mode_and_max_flow():
    f = FlowField(_constant_flow(1.0, 0.0), (4, 5))
    with pytest.raises(ValueError, match="mode"):
        flow_to_colour(f, mode="rainbow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_flow"):
        flow_to_colour(f, max_flow=0.0)


# ------------------------------------------------------------------------- warping
def test_warp_identity_and_integer_shift():
    img = torch.rand(2, 3, 6, 7)
    ident = FlowField(torch.zeros(1, 6, 7, 2), (6, 7))
    for mode in ("bilinear", "nearest"):
        torch.testing.assert_close(warp_by_field(img, ident, mode=mode), img)
    shift = FlowField(_constant_flow(2.0, 1.0, 4, 5), (6, 7))
    out = warp_by_field(img, shift, mode="bilinear")
    assert out.shape == (2, 3, 4, 5)
    torch.testing.assert_close(out, img[:, :, 1:5, 2:7])
    torch.testing.assert_close(warp_by_field(img, shift, mode="nearest"), img[:, :, 1:5, 2:7])


def test_warp_half_pixel_is_bilinear_average():
    img = torch.tensor([[[[0.0, 1.0, 2.0, 3.0]]]])
    out = warp_by_field(img, FlowField(_constant_flow(0.5, 0.0, 1, 3), (1, 4)))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.5, 1.5, 2.5]))


def test_warp_matches_core_nnf_warp():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 9, 11, generator=g)
    nnf = torch.stack(
        (torch.randint(0, 11, (1, 5, 6), generator=g), torch.randint(0, 9, (1, 5, 6), generator=g)), dim=-1
    )
    field = FlowField(nnf_to_flow(nnf), (9, 11))
    torch.testing.assert_close(warp_by_field(img, field, mode="nearest"), warp(img, nnf))
    torch.testing.assert_close(warp_by_field(img, field, mode="bilinear"), warp(img, nnf))


def test_warp_size_mismatch_raises_or_resizes(caplog):
    field = FlowField(torch.zeros(1, 4, 4, 2), (4, 4))
    img = torch.full((1, 1, 8, 8), 0.5)
    with pytest.raises(ValueError, match="8x8 px but the field points into a 4x4 px image"):
        warp_by_field(img, field)
    with caplog.at_level("INFO", logger="analogy_core.field"):
        out = warp_by_field(img, field, resize=True)
    assert out.shape == (1, 1, 4, 4) and torch.allclose(out, torch.full_like(out, 0.5))
    assert "resizing" in caplog.text


def test_warp_batches_broadcast_and_mismatch_raises():
    img = torch.rand(1, 3, 4, 4)
    field = FlowField(torch.zeros(3, 4, 4, 2), (4, 4))
    assert warp_by_field(img, field).shape == (3, 3, 4, 4)
    with pytest.raises(ValueError, match="batch 2 but the field has batch 3"):
        warp_by_field(torch.rand(2, 3, 4, 4), field)


# ---------------------------------------------------------------------------- WLS
def _guide(h: int = 24, w: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(1, 3, h, w, generator=g) * 0.1 + 0.2
    img[..., :, w // 2 :] += 0.6  # a strong vertical edge
    return img


_blocks = blocks  # the WLS benchmark's guide: flat areas and sharp block edges


def _step(h: int, w: int, col: int) -> torch.Tensor:
    """Two flat halves, 0.2 | 0.8, split left of column ``col``."""
    img = torch.full((1, 3, h, w), 0.2)
    img[..., col:] = 0.8
    return img


def _lines(h: int, w: int) -> torch.Tensor:
    """1-px lines of equal pixels on odd and even rows and columns over a noisy background."""
    img = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(4)) * 0.5 + 0.25
    img[..., 3, 2:-2] = 0.9
    img[..., 6, 1:-3] = 0.1
    img[..., 2:-2, 5] = 0.9
    img[..., 1:-1, w - 4] = 0.05
    return img


def _dense_solve(image: torch.Tensor, guide: torch.Tensor, **kw: float) -> torch.Tensor:
    """Direct float64 solve of (I + L) u = image, building the matrix from ``wls_apply``."""
    wx, wy = wls_weights(guide.double(), **kw)
    h, w = image.shape[-2:]
    basis = torch.eye(h * w, dtype=torch.float64).view(h * w, 1, h, w)
    out = torch.empty(image.shape, dtype=torch.float64)
    for i in range(image.shape[0]):
        k = i if wx.shape[0] > 1 else 0
        mat = wls_apply(basis, wx[k : k + 1], wy[k : k + 1]).reshape(h * w, h * w)
        out[i] = torch.linalg.solve(mat, image[i].double().reshape(-1, h * w).T).T.reshape(-1, h, w)
    return out


def _iterations(image: torch.Tensor, guide: torch.Tensor, **kw: object) -> tuple[torch.Tensor, int]:
    done: list[int] = []
    out = wls_filter(image, guide, progress=lambda d, total, stage: done.append(d), **kw)  # type: ignore[arg-type]
    iterations = sum(1 for i, d in enumerate(done) if d == i + 1)  # one unit per iteration
    assert done[iterations:] in ([], [done[-1]])  # then at most the jump to the total
    return out, iterations


def _relative_error(x: torch.Tensor, ref: torch.Tensor, image: torch.Tensor) -> float:
    """max over channels of ‖x − ref‖ / ‖image‖."""
    return ((x.double() - ref).norm(dim=(-2, -1)) / image.double().norm(dim=(-2, -1))).max().item()


GUIDES = {
    "random": lambda h, w: torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h + w)),
    "step-even": lambda h, w: _step(h, w, w // 2 - w // 2 % 2),
    "step-odd": lambda h, w: _step(h, w, w // 2 - w // 2 % 2 + 1),
    "blocks": lambda h, w: _blocks(h, w),
    "lines": _lines,
}


@pytest.mark.parametrize("guide_name", sorted(GUIDES))
@pytest.mark.parametrize("size", [(24, 32), (31, 17)])
def test_wls_multigrid_matches_a_direct_solve(guide_name, size):
    """Since I + L ≥ I, a residual ≤ tol·‖rhs‖ bounds the error by tol·‖rhs‖ too."""
    guide = GUIDES[guide_name](*size)
    rhs = torch.rand(1, 2, *size, generator=torch.Generator().manual_seed(7)) - 0.3
    ref = _dense_solve(rhs, guide)
    x64 = wls_filter(rhs.double(), guide.double(), tol=1e-6)
    assert _relative_error(x64, ref, rhs) <= 1e-6
    x32 = wls_filter(rhs, guide)  # float32, tol 1e-4
    assert x32.dtype == torch.float32
    assert _relative_error(x32, ref, rhs) <= 1e-4


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1), (2, 2), (2, 7), (3, 5)])
def test_wls_multigrid_handles_tiny_images(size):
    guide = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(3))
    rhs = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(4))
    x = wls_filter(rhs.double(), guide.double(), tol=1e-8)
    assert _relative_error(x, _dense_solve(rhs, guide), rhs) <= 1e-8


def test_wls_solvers_agree():
    guide = _blocks(40, 48, seed=2)
    rhs = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(5))
    ref = _dense_solve(rhs, guide)
    for solver in _SOLVERS:
        assert _relative_error(wls_filter(rhs.double(), guide.double(), tol=1e-6, solver=solver), ref, rhs) <= 1e-6


def test_wls_iterations_are_few_and_grow_slowly_with_size():
    rhs = {s: torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(1)) for s in (128, 256, 512)}
    its = {s: _iterations(rhs[s], _blocks(s, s))[1] for s in rhs}
    assert its[256] <= 40
    assert its[512] <= 1.5 * its[128]
    step = {s: _iterations(rhs[s], _step(s, s, s // 2 + 1))[1] for s in (128, 512)}
    assert step[128] <= 15 and step[512] <= 1.5 * step[128]


def test_wls_channels_and_batch_items_are_solved_independently():
    guide = torch.cat([_blocks(20, 28, seed=1), _step(20, 28, 13)]).double()
    rhs = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    rhs[1, 2] *= 100.0  # a channel with a far larger norm stops on its own tolerance
    together = wls_filter(rhs, guide, tol=1e-10)
    for i in range(2):
        for c in range(3):
            alone = wls_filter(rhs[i : i + 1, c : c + 1], guide[i : i + 1], tol=1e-10)
            torch.testing.assert_close(together[i : i + 1, c : c + 1], alone, rtol=0, atol=1e-8 * rhs[i, c].abs().max().item())
    shared = wls_filter(rhs, guide[1:], tol=1e-10)  # one guide for the whole batch
    torch.testing.assert_close(shared[1], together[1], rtol=0, atol=1e-6)


def test_wls_calls_progress_and_interrupt_once_per_iteration():
    guide, rhs = _blocks(32, 32), torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    for solver in _SOLVERS:
        ticks: list[tuple[int, int, str]] = []
        checks: list[int] = []
        wls_filter(rhs, guide, solver=solver, max_iters=500,
                   progress=lambda *call: ticks.append(call), check_interrupt=lambda: checks.append(1))
        n = len(checks)
        assert 0 < n <= 500
        assert ticks == [(k, 500, "wls") for k in range(1, n + 1)] + [(500, 500, "wls")] * (n < 500)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wls_filter(rhs, guide, check_interrupt=interrupt)


def test_wls_solves_the_system():
    guide = _guide().double()
    rhs = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = wls_filter(rhs, guide, lam=0.8, alpha=1.0, tol=1e-8, max_iters=5000)
    wx, wy = wls_weights(guide, lam=0.8, alpha=1.0)
    residual = (wls_apply(out, wx, wy) - rhs).norm() / rhs.norm()
    assert residual < 1e-7


def test_wls_float32_agrees_with_float64():
    guide = _guide()
    rhs = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(2))
    x32 = wls_filter(rhs, guide)
    x64 = wls_filter(rhs.double(), guide.double(), tol=1e-10, max_iters=5000)
    assert x32.dtype == torch.float32
    assert (x32.double() - x64).abs().max() < 1e-3


@pytest.mark.parametrize("solver", _SOLVERS)
def test_wls_lambda_zero_returns_input_and_constant_stays_constant(solver):
    guide = _guide()
    img = torch.rand(2, 3, 24, 32)
    assert torch.equal(wls_filter(img, guide, lam=0.0, solver=solver), img)
    flat = torch.full((1, 3, 24, 32), 0.3)
    torch.testing.assert_close(wls_filter(flat, guide, lam=5.0, solver=solver), flat)
    torch.testing.assert_close(wls_filter(flat, _blocks(24, 32), solver=solver), flat)


def test_wls_smooths_within_regions_but_keeps_the_edge():
    guide = torch.full((1, 3, 24, 32), 0.2)
    guide[..., 16:] = 0.8  # flat regions, one vertical edge
    noise = torch.rand(1, 1, 24, 32, generator=torch.Generator().manual_seed(3)) * 0.2
    step = torch.zeros(1, 1, 24, 32)
    step[..., 16:] = 1.0
    out = wls_filter(step + noise, guide, lam=0.8)
    left, right = out[..., 2:-2, 2:14], out[..., 2:-2, 18:-2]
    assert left.std() < 0.25 * noise.std() and right.std() < 0.25 * noise.std()
    assert right.mean() - left.mean() > 0.9  # the edge survives


def test_wls_refine_keeps_a_when_ap_equals_a_and_moves_towards_ap():
    a = _guide()
    torch.testing.assert_close(wls_refine(a, a), a)
    tinted = (a + torch.tensor([0.1, -0.05, 0.0]).view(1, 3, 1, 1)).clamp(0, 1)
    out = wls_refine(tinted, a)
    assert out.shape == a.shape and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out, tinted, atol=2e-3, rtol=0)  # a smooth colour shift passes through


def test_wls_rejects_bad_inputs():
    a = _guide()
    with pytest.raises(ValueError, match="A' is 16x24 px but A is 32x24 px"):
        wls_refine(torch.rand(1, 3, 24, 16), a)
    with pytest.raises(ValueError, match="batch 2 and A has batch 3"):
        wls_refine(torch.rand(2, 3, 24, 32), torch.rand(3, 3, 24, 32))
    with pytest.raises(ValueError, match="alpha > 0"):
        wls_filter(a, a, alpha=0.0)
    with pytest.raises(ValueError, match="NaN"):
        wls_filter(torch.full_like(a, float("nan")), a)
    with pytest.raises(ValueError, match="solver must be one of multigrid, cg-jacobi"):
        wls_filter(a, a, solver="lu")  # type: ignore[arg-type]


def test_wls_weights_on_a_known_step_in_both_guide_scales():
    """A vertical step from 0.25 to 0.75 in a gray guide: only the pair across it is weak."""
    guide = torch.full((1, 1, 3, 4), 0.25)
    guide[..., 2:] = 0.75
    for scale, step in (("linear", 0.5), ("log", float(torch.log(torch.tensor(0.75 + 1e-4)) - torch.log(torch.tensor(0.25 + 1e-4))))):
        wx, wy = wls_weights(guide, lam=0.8, alpha=1.0, eps=1e-4, guide_scale=scale)
        torch.testing.assert_close(wx[..., 1], torch.full((1, 1, 3), 0.8 / (step + 1e-4)))
        torch.testing.assert_close(wx[..., 0], torch.full((1, 1, 3), 0.8 / 1e-4))
        torch.testing.assert_close(wy, torch.full((1, 1, 2, 4), 0.8 / 1e-4))
    with pytest.raises(ValueError, match="guide_scale must be one of log, linear"):
        wls_weights(guide, guide_scale="gamma")  # type: ignore[arg-type]


def test_photo_mode_keeps_the_structure_image_and_takes_the_colour_change():
    """finish_photo on a vote that is A under a global colour shift plus a patch texture
    that A does not have: the shift survives (WLS keeps constants), the texture goes."""
    from analogy_core import AnalogyState
    from analogy_core.pipeline import finish_photo

    a = _blocks(32, 48) * 0.8 + 0.1  # flat regions and sharp edges, in 0.1..0.9
    shift = torch.tensor([0.08, -0.05, 0.1]).view(1, 3, 1, 1)
    texture = 0.08 * (torch.rand(1, 1, 32, 48, generator=torch.Generator().manual_seed(3)) - 0.5)
    state = AnalogyState(a=a, bp=a + shift, a_net=a, bp_net=a, feat_a={}, feat_bp={}, feat_ap={}, feat_b={})
    ap, b = finish_photo(state, a + shift + texture, a + texture)
    assert (ap - (a + shift)).abs().mean() < 0.1 * texture.abs().mean()
    assert (b - a).abs().mean() < 0.1 * texture.abs().mean()  # B: B''s structure in A's colours
