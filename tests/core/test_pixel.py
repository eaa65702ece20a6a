"""Pixel-level field refinement: known sub-pixel answers under appearance changes, the
gates that keep unrelated pairs untouched, the pyramid, and the continuous vote."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from analogy_core import pixel, pixel_grid, sample_bilinear
from analogy_core.pixel import (
    MIN_MATCHED,
    box_mean,
    exchange_whole_pixels,
    gate_work,
    matched_fraction,
    pyramid_sizes,
    pyramid_work,
    refine_field,
    refine_levels,
    refine_pyramid,
    refine_work,
    resample_field,
    smooth_field,
)
from analogy_core.vote import patch_vote


def _smooth_image(h: int, w: int, device: torch.device, seed: int = 0, cells: int = 4) -> torch.Tensor:
    """A photo-like RGB image: band-limited grey texture under a slowly varying colour
    tint (a photo's channels move together; independent noise per channel does not)."""
    g = torch.Generator().manual_seed(seed)
    texture = F.interpolate(torch.rand(1, 1, max(2, h // cells), max(2, w // cells), generator=g), size=(h, w),
                            mode="bicubic", align_corners=False)
    tint = F.interpolate(0.4 + 0.6 * torch.rand(1, 3, 3, 3, generator=g), size=(h, w), mode="bilinear",
                         align_corners=False)
    return (texture * tint).clamp(0, 1).to(device)


def _mix_gamma(x: torch.Tensor) -> torch.Tensor:
    mix = torch.tensor([[0.3, 0.6, 0.1], [0.15, 0.25, 0.6], [0.65, 0.05, 0.3]], device=x.device)
    return torch.einsum("ij,njhw->nihw", mix, x).clamp(0, 1) ** 0.6


def _shifted_pair(device: torch.device, shift: tuple[float, float], size: int = 64, margin: int = 8):
    """A and B' = appearance(A moved by -shift): pixel p of A shows at p + shift in B'."""
    big = _smooth_image(size + 2 * margin, size + 2 * margin, device)
    a = big[..., margin : margin + size, margin : margin + size]
    grid = pixel_grid(size, size, device=device).unsqueeze(0)
    back = grid - torch.tensor(shift, device=device) + margin  # B'(q) = A(q - shift)
    bp = _mix_gamma(sample_bilinear(big, back))
    return a, bp, grid


def test_box_mean_matches_average_pooling(device):
    x = torch.rand(2, 3, 17, 23, device=device)
    ref = F.avg_pool2d(x, 7, stride=1, padding=3, count_include_pad=False)
    assert torch.allclose(box_mean(x, 3), ref, atol=1e-6)


def test_known_subpixel_shift_is_recovered_under_a_colour_change(device):
    shift = (1.6, -0.7)
    a, bp, grid = _shifted_pair(device, shift)
    start = grid + torch.tensor([shift[0] + 1.0, shift[1] - 1.0], device=device).round()  # 1-2 px off, integer
    field, _ = refine_field(a, bp, start)
    err = (field - grid - torch.tensor(shift, device=device))[0, 8:-8, 8:-8].norm(dim=-1)
    start_err = (start - grid - torch.tensor(shift, device=device))[0, 8:-8, 8:-8].norm(dim=-1)
    assert start_err.median() > 0.9
    assert err.median() < 0.15
    assert (err < 0.5).float().mean() > 0.9


def test_refined_field_stays_inside_the_target(device):
    a, bp, grid = _shifted_pair(device, (3.0, 2.0), size=40)
    start = grid + torch.tensor([3.0, 2.0], device=device) + torch.randn(1, 40, 40, 2, device=device) * 2
    field, _ = refine_field(a, bp[..., :30, :35], start)
    assert field[..., 0].min() >= 0 and field[..., 0].max() <= 34
    assert field[..., 1].min() >= 0 and field[..., 1].max() <= 29


def test_unrelated_pairs_and_flat_sources_are_left_alone(device):
    """A painting/photo-like pair whose windows do not correlate keeps the deep field."""
    a = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1)).to(device)
    bp = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2)).to(device)
    start = pixel_grid(48, 48, device=device).unsqueeze(0) + torch.tensor([2.0, 1.0], device=device)
    start = start.clamp(0, 47)
    field, moved = refine_field(a, bp, start, smooth_radius=0)
    assert (field == start).all(dim=-1).float().mean() > 0.99
    assert moved.float().mean() < 0.01
    flat = torch.full_like(a, 0.5)
    field, moved = refine_field(flat, bp, start, smooth_radius=0)
    assert torch.equal(field, start) and not moved.any()


def test_pair_gate_confirms_the_matches_of_one_scene_and_no_others(device):
    """The pair gate counts a match where the other field leads back and the windows
    correlate there distinctly: true fields between a view and its posterised, colour-mixed
    copy are confirmed; the same fields with the way back broken, and another picture,
    are not."""
    shift = (3.0, 2.0)
    a, bp, grid = _shifted_pair(device, shift)
    posterised = (bp * 3).floor().clamp(max=2) / 2
    field = grid + torch.tensor(shift, device=device)  # A(p) shows at p + shift in B'
    inverse = grid - torch.tensor(shift, device=device)
    assert float(matched_fraction(a, posterised, field, inverse)) > 0.8
    # the way back 6 px off: no match leads back, none counts
    assert float(matched_fraction(a, posterised, field, inverse.roll(6, dims=2))) == 0.0
    # another picture, even with fields that lead back
    other = _smooth_image(64, 64, device, seed=5)
    assert float(matched_fraction(a, other, grid, grid)) < MIN_MATCHED / 2
    checks = []
    matched_fraction(a, posterised, field, inverse, check_interrupt=lambda: checks.append(1))
    assert len(checks) == gate_work()


def test_smoothing_keeps_pieces_of_a_collage_apart(device):
    grid = pixel_grid(20, 20, device=device).unsqueeze(0)
    disp = torch.zeros(1, 20, 20, 2, device=device)
    disp[:, :, 10:, 0] = 8.0  # right half matches 8 px further right
    noisy = grid + disp + torch.randint(-1, 2, (1, 20, 20, 2), generator=torch.Generator().manual_seed(0)).to(device)
    out = smooth_field(noisy, 3, 1.5) - grid
    assert (out[0, :, :8, 0].abs() < 1.0).all() and (out[0, :, 12:, 0] - 8).abs().max() < 1.0
    assert (out - disp).abs().mean() < (noisy - grid - disp).abs().mean()


def test_progress_counts_every_scored_offset_and_interrupt_stops(device):
    a, bp, grid = _shifted_pair(device, (1.0, 1.0), size=32)
    seen: list[tuple[int, int, str]] = []
    refine_field(a, bp, grid, radii=(2, 1), progress=lambda d, t, s: seen.append((d, t, s)))
    assert seen[-1] == (refine_work((2, 1)), 34, "pixel refinement")
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)

    class Stop(Exception):
        pass

    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 5:
            raise Stop

    with pytest.raises(Stop):
        refine_field(a, bp, grid, check_interrupt=check)


def test_bad_arguments_raise(device):
    a = torch.rand(1, 3, 16, 16, device=device)
    grid = pixel_grid(16, 16, device=device).unsqueeze(0)
    with pytest.raises(ValueError, match="must be >= 0"):
        refine_field(a, a, grid, radii=(-1,))
    with pytest.raises(ValueError, match="field"):
        refine_field(a, a, grid[:, :8])
    with pytest.raises(ValueError, match="batch"):
        refine_field(a, a.expand(2, -1, -1, -1), grid)


def test_pyramid_levels_double_up_to_the_final_size():
    assert pyramid_sizes((100, 150), (450, 600)) == [(100, 150), (200, 300), (450, 600)]
    assert pyramid_sizes((224, 224), (224, 224)) == [(224, 224)]
    assert pyramid_sizes((300, 300), (200, 260)) == [(200, 260)]
    # the refinement starts two halvings below the field's grid (not below 32 px)
    assert refine_levels((100, 150), (450, 600)) == [(50, 75), (100, 150), (200, 300), (450, 600)]
    assert refine_levels((40, 40), (40, 40)) == [(40, 40)]
    first = refine_work((2, 1), (8, 4, 2, 1), True)
    assert pyramid_work((100, 150), (450, 600)) == first + 3 * refine_work((1, 1), (), True) + 3 + refine_work((), whole_pixel=True)


def test_pyramid_carries_a_half_size_field_to_full_size(device):
    """A field found on half-size images ends up sub-pixel accurate at full size."""
    shift = (2.4, -1.2)
    a, bp, grid = _shifted_pair(device, shift, size=96)
    half = pixel_grid(48, 48, device=device).unsqueeze(0)
    start = half + torch.tensor([shift[0] / 2, shift[1] / 2], device=device).round()  # integer, half-size grid
    field, _ = refine_pyramid(a, bp, start, (48, 48))
    assert field.shape == (1, 96, 96, 2)
    err = (field - grid - torch.tensor(shift, device=device))[0, 10:-10, 10:-10].norm(dim=-1)
    assert err.median() < 0.2


def test_a_whole_pixel_shift_is_copied_exactly(device, monkeypatch):
    """Where a region moved by whole pixels and the whole-pixel position correlates as well
    as the sub-pixel match, the last level takes it: under an integer shift and a colour
    change the targets are exact whole pixels, so the vote copies B' instead of
    interpolating it (which blurs). A sub-pixel shift keeps its sub-pixel matches."""
    start = pixel_grid(48, 48, device=device).unsqueeze(0) + torch.tensor([2.0, -1.0], device=device)  # ~1 px off
    inner = (slice(None), slice(12, -12), slice(12, -12))

    def errors(shift: tuple[float, float]) -> torch.Tensor:
        a, bp, grid = _shifted_pair(device, shift, size=96, margin=12)
        field, _ = refine_pyramid(a, bp, start, (48, 48))
        return (field - grid - torch.tensor(shift, device=device))[inner]

    whole = errors((3.0, -2.0))
    assert float((whole.abs().amax(-1) == 0).float().mean()) > 0.9
    part = errors((3.4, -1.7))
    assert float(part.norm(dim=-1).median()) < 0.1
    disp = part + torch.tensor((3.4, -1.7), device=device)
    assert float(((disp - disp.round()).abs().amax(-1) == 0).float().mean()) < 0.01  # none rounded
    monkeypatch.setattr(pixel, "WHOLE_PIXEL_TOL", None)
    assert float((errors((3.0, -2.0)).abs().amax(-1) == 0).float().mean()) < 0.5  # a few hundredths off


def test_a_region_moved_by_whole_pixels_is_copied_whole_where_its_matches_strayed(device, monkeypatch):
    """Under a whole-pixel shift, pixels whose matches strayed (a block 6 px off, beyond
    any search radius; a flat square as far off; a band half a pixel off) take the
    region's whole-pixel displacement at the last step: the blocks from the pair's
    dominant displacement, the band from its neighbourhood. Without that step they stay
    off. A sub-pixel shift has no exact matches to spread and keeps its sub-pixel field."""
    shift = (3.0, -2.0)
    a, bp, grid = _shifted_pair(device, shift, size=96, margin=12)
    # a flat grey square in both views (its windows correlate with nothing), left 6 px off too
    a, bp = a.clone(), bp.clone()
    a[..., 66:86, 66:86] = 0.5
    bp[..., 64:84, 69:89] = _mix_gamma(torch.full((1, 3, 1, 1), 0.5, device=device))
    field = grid + torch.tensor(shift, device=device)
    field[:, 30:50, 30:50] += torch.tensor([6.0, 0.0], device=device)  # the deep search failed here
    field[:, 60:64, 20:60] += torch.tensor([0.5, 0.5], device=device)
    field[:, 66:86, 66:86] += torch.tensor([0.0, 6.0], device=device)

    def exact(f: torch.Tensor, rows: slice, cols: slice) -> float:
        err = (f - grid - torch.tensor(shift, device=device))[0, rows, cols]
        return float((err.abs().amax(-1) == 0).float().mean())

    def refined() -> torch.Tensor:
        return refine_field(a, bp, field, radii=(1,), smooth_radius=0, whole_pixel_tol=0.003)[0]

    out = refined()
    assert exact(out, slice(30, 50), slice(30, 50)) > 0.95
    assert exact(out, slice(60, 64), slice(20, 60)) > 0.95
    # the flat square's lower half, whose match left the square: its windows (flat) confirm
    # nothing, so it takes the displacement where that correlates no worse (the upper half
    # still points into the square, which the vote copies the same)
    assert exact(out, slice(76, 81), slice(71, 81)) == 1.0
    assert exact(out, slice(12, -12), slice(12, -12)) > 0.95
    monkeypatch.setattr(pixel, "DOMINANT_MODES", 0)
    off = refined()
    assert exact(off, slice(30, 50), slice(30, 50)) < 0.05  # the blocks stay off
    assert exact(off, slice(76, 81), slice(71, 81)) < 0.05
    monkeypatch.setattr(pixel, "REGION_SUPPORT", 2.0)
    assert exact(refined(), slice(60, 64), slice(20, 60)) < 0.5
    monkeypatch.undo()
    part = (3.4, -1.7)
    a, bp, grid = _shifted_pair(device, part, size=96, margin=12)
    start = grid + torch.tensor(part, device=device).round()
    disp = refine_field(a, bp, start, radii=(1, 1), whole_pixel_tol=0.003)[0] - grid
    inner = disp[0, 12:-12, 12:-12]
    assert float((inner - torch.tensor(part, device=device)).norm(dim=-1).median()) < 0.1
    assert float(((inner - inner.round()).abs().amax(-1) == 0).float().mean()) < 0.01


def _posterised_pair(device: torch.device, shift: tuple[float, float], size: int = 96, margin: int = 12):
    """A and B' = A moved by -shift, colours mixed and posterised to four levels a channel."""
    big = _smooth_image(size + 2 * margin, size + 2 * margin, device, cells=6)
    a = big[..., margin : margin + size, margin : margin + size]
    grid = pixel_grid(size, size, device=device).unsqueeze(0)
    bp = _mix_gamma(sample_bilinear(big, grid - torch.tensor(shift, device=device) + margin))
    return a, (torch.floor(bp * 4) / 4 + 0.125).clamp(0, 1), grid


def test_exact_matches_of_one_direction_correct_the_other(device, monkeypatch):
    """Posterised, B' sampled between pixels is smoothed, which a smooth A window
    correlates with better than with the exact copy: under a whole-pixel shift no A→B'
    match is exact (about 0.2 px off), while the B'→A field, sampling the smooth A, is.
    The exchange makes both exact; it leaves a sub-pixel shift, which has no dominant
    whole-pixel displacement, as it was."""
    half = pixel_grid(48, 48, device=device).unsqueeze(0)
    inner = (0, slice(12, -12), slice(12, -12))

    def fields(shift: tuple[float, float]) -> tuple[torch.Tensor, ...]:
        a, bp, grid = _posterised_pair(device, shift)
        back = (-shift[0], -shift[1])
        fab, _ = refine_pyramid(a, bp, half + torch.tensor([shift[0] / 2 + 0.5, shift[1] / 2], device=device).round(),
                                (48, 48))
        fba, _ = refine_pyramid(bp, a, half + torch.tensor([back[0] / 2, back[1] / 2 + 0.5], device=device).round(),
                                (48, 48))
        return a, bp, grid, fab, fba

    def exact(field: torch.Tensor, grid: torch.Tensor, shift: tuple[float, float]) -> float:
        err = (field - grid - torch.tensor(shift, device=device))[inner]
        return float((err.abs().amax(-1) == 0).float().mean())

    shift, back = (3.0, -2.0), (-3.0, 2.0)
    a, bp, grid, fab, fba = fields(shift)
    assert exact(fab, grid, shift) < 0.05 and exact(fba, grid, back) > 0.8
    xab, xba = exchange_whole_pixels(a, bp, fab, fba)
    assert exact(xab, grid, shift) > 0.95 and exact(xba, grid, back) > 0.95
    monkeypatch.setattr(pixel, "DOMINANT_SHARE", 2.0)  # no displacement is dominant
    xab, xba = exchange_whole_pixels(a, bp, fab, fba)
    assert torch.equal(xab, fab) and torch.equal(xba, fba)
    monkeypatch.undo()
    a, bp, grid, fab, fba = fields((3.4, -1.7))
    xab, xba = exchange_whole_pixels(a, bp, fab, fba)
    assert torch.equal(xab, fab) and torch.equal(xba, fba)


def test_resample_field_scales_targets(device):
    f = pixel_grid(4, 6, device=device).unsqueeze(0) + torch.tensor([1.0, 0.0], device=device)
    out = resample_field(f, (8, 12), (4, 6), (8, 12))
    assert out.shape == (1, 8, 12, 2)
    inner = out[0, 2:-2, 2:-4] - pixel_grid(8, 12, device=device)[2:-2, 2:-4]
    assert torch.allclose(inner, torch.tensor([2.0, 0.0], device=device).expand_as(inner), atol=1e-5)


def test_continuous_vote_reproduces_and_interpolates(device):
    img = torch.rand(1, 3, 10, 12, device=device)
    ident = pixel_grid(10, 12, device=device).unsqueeze(0)
    assert torch.allclose(patch_vote(img, ident, 3), img, atol=1e-6)
    half = patch_vote(img, (ident + torch.tensor([0.5, 0.0], device=device)).clamp(max=11), 1)
    assert torch.allclose(half[..., :-1], 0.5 * (img[..., :-1] + img[..., 1:]), atol=1e-6)


def test_resample_field_keeps_the_edge_between_two_pieces(device):
    """Left half of the source matches 10 px right, the right half 30 px right: doubled,
    every pixel keeps one of the two displacements (20 or 60 px), none points in between;
    a gentle slope of displacements is still interpolated."""
    f = pixel_grid(6, 8, device=device).unsqueeze(0).clone()
    f[..., :4, 0] += 10.0
    f[..., 4:, 0] += 30.0
    out = resample_field(f, (12, 16), (6, 48), (12, 96))  # the target doubles too
    dx = (out - pixel_grid(12, 16, device=device))[0, :, :, 0]
    assert set(dx.unique().round(decimals=4).tolist()) == {20.0, 60.0}
    slope = pixel_grid(6, 8, device=device).unsqueeze(0) * torch.tensor([1.1, 1.0], device=device)  # 0.1 px per px
    fine = resample_field(slope, (12, 16), (6, 9), (12, 18))
    dx = (fine - pixel_grid(12, 16, device=device))[0, 4, 2:-2, 0]
    assert len(dx.unique()) == dx.numel()  # interpolated: every column its own value


def _median_error(field: torch.Tensor, grid: torch.Tensor, shift: tuple[float, float], border: int = 8) -> float:
    err = (field - grid - torch.tensor(shift, device=field.device))[0, border:-border, border:-border].norm(dim=-1)
    return float(err.median())


def test_coarse_levels_recover_an_error_beyond_the_search_radius(device):
    """A start 6 px off is out of reach of a ±2 px search at full size, not of the pyramid's
    coarse levels (a quarter of the size): the pyramid lands sub-pixel accurate."""
    shift = (2.3, -1.4)
    a, bp, grid = _shifted_pair(device, shift, size=128, margin=12)
    start = grid + torch.tensor([shift[0] + 6.0, shift[1] - 5.0], device=device).round()
    alone, _ = refine_field(a, bp, start)
    assert _median_error(alone, grid, shift) > 3.0
    field, _ = refine_pyramid(a, bp, start, (128, 128))
    assert _median_error(field, grid, shift, border=16) < 0.1


def test_propagation_spreads_a_good_match_into_a_wrong_patch(device):
    """A 12×12 block whose matches are 5 px off (beyond a ±1 px search) takes over its
    neighbours' displacement; without propagation it stays wrong."""
    shift = (1.0, 2.0)
    a, bp, grid = _shifted_pair(device, shift)
    start = grid + torch.tensor(shift, device=device)
    start[:, 26:38, 26:38] += torch.tensor([5.0, 0.0], device=device)
    block = (slice(None), slice(26, 38), slice(26, 38))
    kept, _ = refine_field(a, bp, start, radii=(1,), smooth_radius=0)
    assert ((kept - grid)[block] - torch.tensor(shift, device=device)).norm(dim=-1).median() > 4.0
    fixed, _ = refine_field(a, bp, start, radii=(1,), propagate=(8, 4, 2, 1), smooth_radius=0)
    assert ((fixed - grid)[block] - torch.tensor(shift, device=device)).norm(dim=-1).max() < 0.5


def test_consensus_settles_the_aperture_problem_along_an_edge(device):
    """B' is A (a straight vertical edge beside a textured strip) moved 3 px down. Edge
    pixels that start 2 px off along the edge correlate perfectly there (the aperture
    problem): only the textured strip's agreed displacement moves them."""
    h = w = 64
    g = torch.Generator().manual_seed(3)
    big = torch.zeros(1, 1, h + 16, w + 16)
    big[..., :, 42:] = 1.0  # the edge, at A's column 34
    strip = F.interpolate(torch.rand(1, 1, (h + 16) // 4, 3, generator=g), size=(h + 16, 12), mode="bicubic")
    big[..., :, 22:34] = strip  # A's columns 14..25
    big = big.expand(1, 3, -1, -1).clamp(0, 1).to(device)
    a = big[..., 8:-8, 8:-8]
    grid = pixel_grid(h, w, device=device).unsqueeze(0)
    shift = (0.0, 3.0)
    bp = sample_bilinear(big, grid - torch.tensor(shift, device=device) + 8)
    start = grid + torch.tensor(shift, device=device)
    start[:, :, 28:40] += torch.tensor([0.0, 2.0], device=device)  # along the edge: no window can tell
    edge = (slice(None), slice(12, -12), slice(31, 37))

    def err(f: torch.Tensor) -> float:
        return float(((f - grid)[edge] - torch.tensor(shift, device=device)).norm(dim=-1).median())

    alone, _ = refine_field(a, bp, start, radii=(2, 1))
    assert err(alone) > 1.5
    agreed, _ = refine_field(a, bp, start, radii=(2, 1), consensus_radius=12)
    assert err(agreed) < 0.5  # from 2 px: a few tenths left where the strip is 8-11 px away


def test_gradient_steps_reach_a_subpixel_shift_under_gain_and_bias(device):
    """From the nearest whole pixel, Gauss-Newton steps find a (0.3, -0.2) px shift of a
    picture whose brightness is halved and lifted, to well under a tenth of a pixel."""
    shift = (0.3, -0.2)
    a, _, grid = _shifted_pair(device, shift)
    big = _smooth_image(80, 80, device)
    bp = 0.5 * sample_bilinear(big, grid - torch.tensor(shift, device=device) + 8) + 0.2
    start = grid.clone()
    plain, _ = refine_field(a, bp, start, radii=())
    assert _median_error(plain, grid, shift) > 0.3
    stepped, _ = refine_field(a, bp, start, radii=(), gradient_steps=3)
    assert _median_error(stepped, grid, shift) < 0.08  # bilinear sampling of B' bounds it


def _psnr(x: torch.Tensor, y: torch.Tensor, border: int = 4) -> float:
    err = (x - y)[..., border:-border, border:-border]
    return float(-10 * torch.log10(err.pow(2).mean()))


def _shapes_pair(device: torch.device, shift: tuple[float, float], size: int = 64, margin: int = 8, seed: int = 0):
    """A photo-like A (sharp-edged discs of colour over a faint texture) and the look of it
    moved by ``shift`` px; returns A, B' and the true field from A into B'."""
    g = torch.Generator().manual_seed(seed)
    side = size + 2 * margin
    big = 0.2 + 0.3 * _smooth_image(side, side, torch.device("cpu"), seed=seed, cells=8)
    ys, xs = torch.meshgrid(torch.arange(side).float(), torch.arange(side).float(), indexing="ij")
    for _ in range(12):
        cy, cx, r = (torch.rand(3, generator=g) * torch.tensor([side, side, side / 4])).tolist()
        disc = ((ys - cy) ** 2 + (xs - cx) ** 2 <= (r + 3) ** 2).float()
        big = big * (1 - disc) + torch.rand(3, 1, 1, generator=g) * disc
    big = big.clamp(0, 1).to(device)
    grid = pixel_grid(size, size, device=device).unsqueeze(0)
    bp = _mix_gamma(sample_bilinear(big, grid - torch.tensor(shift, device=device) + margin))
    return big[..., margin : margin + size, margin : margin + size], bp, grid + torch.tensor(shift, device=device)


@pytest.mark.parametrize("shift", [(0.5, 0.3), (0.25, 0.0)])
def test_a_vote_between_pixels_is_redrawn_sharp_from_the_source(device, shift):
    # voted through the true field between pixels, A' is blurred by the bilinear samples; redrawn
    # from A, its edges are A's own
    a, bp, field = _shapes_pair(device, shift)
    voted = patch_vote(bp, field, 3).clamp(0, 1)
    truth = _mix_gamma(a)
    redrawn = pixel.redraw_from_source(a, voted, field)
    assert _psnr(redrawn, truth) > _psnr(voted, truth) + 1.0
    # a whole-pixel field is a copy: the vote is returned as it is
    assert torch.equal(pixel.redraw_from_source(a, voted, field.round()), voted)


def test_the_vote_stays_where_the_fit_does_not_explain_it(device):
    # noise that no colour transform of A makes: with the tests on it stays, with them off the
    # fit smooths it away
    a, bp, field = _shapes_pair(device, (0.5, 0.3))
    noise = torch.randn(a.shape, generator=torch.Generator().manual_seed(1)).to(device)
    noisy = (patch_vote(bp, field, 3) + 0.1 * noise).clamp(0, 1)
    kept = pixel.redraw_from_source(a, noisy, field)
    forced = pixel.redraw_from_source(a, noisy, field, max_residual=1e9, min_explained=0.0)
    assert float((kept - noisy).abs().mean()) < 0.2 * float((forced - noisy).abs().mean())


def _redrawn_pair(device: torch.device, shift: tuple[float, float], size: int = 96):
    """The shapes pair voted through its true field and redrawn from A: returns A, the field
    A → B', the field B' → A (moved back by ``shift``, inside A) and the redrawn vote."""
    a, bp, field = _shapes_pair(device, shift, size=size)
    back = pixel_grid(size, size, device=device).unsqueeze(0) - torch.tensor(shift, device=device)
    redrawn = pixel.redraw_from_source(a, patch_vote(bp, field, 3).clamp(0, 1), field)
    return a, field, pixel.clamp_field(back, (size, size)), redrawn


@pytest.mark.parametrize("shift", [(0.5, 0.3), (0.25, 0.0)])
def test_a_look_of_colour_alone_is_redrawn_as_one_colour_map_of_the_source(device, shift):
    # B' is a colour mix and gamma of A (a function of colour alone): the map learnt through
    # the true field draws A's discs sharp in the look's colours, past the local redraw
    # (measured: 33.7 -> 42.0 dB and 39.2 -> 47.5 dB)
    a, field, inverse, redrawn = _redrawn_pair(device, shift)
    truth = _mix_gamma(a)
    looked = pixel.redraw_global_look(a, redrawn, field, inverse)
    assert _psnr(looked, truth) > _psnr(redrawn, truth) + 5.0
    # where the match leads back, the map replaces only a vote that lies within its range
    # over the 3x3 neighbourhood (the map itself: every pixel takes it at any tolerance)
    mapped = pixel.redraw_global_look(a, redrawn, field, inverse, tolerance=1e9)
    lo, hi = pixel._range_3x3(mapped[0])
    changed = (looked != redrawn).any(dim=1)[0] & pixel._leads_back(field, inverse, pixel.LOOK_CYCLE_TOL)[0]
    inside = ((redrawn[0] >= lo - pixel.LOOK_TOLERANCE) & (redrawn[0] <= hi + pixel.LOOK_TOLERANCE)).all(dim=0)
    assert bool(changed.any()) and bool(inside[changed].all())
    assert not torch.equal(looked, mapped)  # and some votes outside that range stay


def test_a_look_that_is_not_one_colour_map_keeps_its_vote(device):
    a, field, inverse, voted = _redrawn_pair(device, (0.5, 0.3))
    # one look on the left half, its negative on the right: no colour map of A makes both
    halves = torch.cat((voted[..., :48], 1 - voted[..., 48:]), dim=-1)
    assert torch.equal(pixel.redraw_global_look(a, halves, field, inverse), halves)
    # strong stripes that A's colours do not predict stay where they are
    stripes = (voted + 0.2 * ((torch.arange(96, device=device) // 6) % 2)).clamp(0, 1)
    assert torch.equal(pixel.redraw_global_look(a, stripes, field, inverse), stripes)
    # a field of whole pixels is a copy: nothing to redraw
    whole = field.round()
    assert torch.equal(pixel.redraw_global_look(a, voted, whole, inverse), voted)
    # and none of it holds if the test is switched off: the map does replace the halves
    assert not torch.equal(pixel.redraw_global_look(a, halves, field, inverse, min_explained=0.0), halves)


def test_the_global_look_rejects_bad_settings():
    a = torch.rand(1, 3, 8, 8)
    ident = pixel_grid(8, 8).unsqueeze(0)
    with pytest.raises(ValueError, match="bins >= 1"):
        pixel.redraw_global_look(a, a, ident, ident, bins=0)


def test_a_small_image_gets_fewer_colour_bins(device):
    # 96 x 96 px: floor(cbrt(96 * 96 / 3)) = 14 bins per channel, whatever the most allowed
    a, field, inverse, voted = _redrawn_pair(device, (0.5, 0.3))
    default = pixel.redraw_global_look(a, voted, field, inverse)
    assert torch.equal(default, pixel.redraw_global_look(a, voted, field, inverse, bins=14))
    assert not torch.equal(default, pixel.redraw_global_look(a, voted, field, inverse, bins=13))
