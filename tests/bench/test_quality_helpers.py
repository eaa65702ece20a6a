"""Checks of the known-answer machinery of bench/quality/ (no VGG, milliseconds each)."""

from __future__ import annotations

import math
import zipfile

import pytest
import torch

from analogy_core.image import pixel_grid, sample_bilinear
from bench._photos import PhotoError, extract_photos, skimage_photos
from bench.quality.appearance import colour_transfer, hue_rotate, lab_to_rgb, mix_gamma, posterise, rgb_to_lab
from bench.quality.cases import build_cases, inside, make_case, margin_for, texture_mask
from bench.quality.metrics import end_point_error, markdown_table, mean_row, psnr, score
from bench.quality.warps import AffineWarp, ShiftWarp, standard_warps


def _photo(h: int = 80, w: int = 100, seed: int = 0) -> torch.Tensor:
    """A smooth random picture with some texture, (1, 3, h, w) in 0..1."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return (0.8 * smooth + 0.2 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def _pull(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """image(p + flow(p)), bilinear."""
    h, w = flow.shape[:2]
    return sample_bilinear(image, pixel_grid(h, w, dtype=torch.float64) + flow)


def test_shift_case_flows_land_on_the_right_pixels() -> None:
    size = 48
    big = _photo(size + 2 * margin_for(size), size + 2 * margin_for(size))
    case = make_case("t/shift", big, size, ShiftWarp(5, -3), lambda x: x, border=2)
    # B'(q) = A(q + (5, -3)) where that is inside A
    assert torch.allclose(case.bp[..., 3:, : size - 5], case.a[..., : size - 3, 5:])
    # flows are the constant shift and its negation
    assert torch.all(case.flow_ba == torch.tensor([5.0, -3.0], dtype=torch.float64))
    assert torch.all(case.flow_ab == torch.tensor([-5.0, 3.0], dtype=torch.float64))
    # pulling B' through the true flow_ab gives A (the identity appearance) where visible ...
    vis = case.visible_ab
    assert torch.allclose(_pull(case.bp, case.flow_ab)[0][:, vis], case.a[0][:, vis], atol=1e-6)
    # ... and pulling A through the true flow_ba gives B
    vis = case.visible_ba
    assert torch.allclose(_pull(case.a, case.flow_ba)[0][:, vis], case.b_true[0][:, vis], atol=1e-6)
    # the visible region is exactly what the shift keeps
    assert int(case.visible_ab.sum()) == (size - 5) * (size - 3)
    # the edge band: covered pixels whose match lies within 12 px of B''s edge (all but 24 x 24 targets)
    assert int(case.edge_ab.sum()) == (size - 5) * (size - 3) - (size - 24) ** 2
    assert not (case.edge_ab & ~case.visible_ab).any() and not (case.edge_ba & ~case.visible_ba).any()


def test_perfect_answer_scores_better_than_baselines() -> None:
    size = 48
    big = _photo(size + 2 * margin_for(size), size + 2 * margin_for(size))
    case = make_case("t/shift+mix", big, size, ShiftWarp(4, 2), mix_gamma, border=2)
    r = score(case, case.ap_true, case.b_true, case.flow_ab.float(), case.flow_ba.float())
    assert math.isinf(r["psnr_ap"]) and math.isinf(r["psnr_b"])
    assert math.isinf(r["psnr_ap_edge"]) and math.isinf(r["psnr_b_edge"])
    worse = case.ap_true.clone()
    worse[..., 20:28, 20:28] = 0.5  # a wrong square inside, away from the edge band
    assert math.isinf(score(case, worse, case.b_true, case.flow_ab.float(), case.flow_ba.float())["psnr_ap_edge"])
    assert r["epe_ab_median"] == pytest.approx(0.0, abs=1e-6) and r["epe_ba_mean"] == pytest.approx(0.0, abs=1e-6)
    assert r["epe_ab_zero_mean"] == pytest.approx(math.hypot(4, 2))
    assert r["psnr_ap_identity"] < 30 and r["psnr_b_identity"] < 30
    # voting through the true integer flow is exact away from the unmatched band
    assert r["psnr_ap_oracle"] > 35 and r["psnr_b_oracle"] > 35


def test_psnr_identical_is_inf_and_known_value() -> None:
    x = torch.rand(1, 3, 8, 8)
    assert math.isinf(psnr(x, x))
    assert psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)) == pytest.approx(20.0)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 0] = True
    y = torch.zeros(1, 3, 4, 4)
    y[..., 1:, :] = 1.0  # differs only outside the mask
    assert math.isinf(psnr(torch.zeros(1, 3, 4, 4), y, mask))


@pytest.mark.parametrize("warp_index", [0, 1, 2])
def test_inverse_warps_compose_to_identity(warp_index: int) -> None:
    warp = standard_warps(96, seed=3)[warp_index]
    q = pixel_grid(96, 96, dtype=torch.float64) + 0.37  # off-grid points too
    assert torch.allclose(warp.inverse(warp.forward(q)), q, atol=1e-6)
    assert torch.allclose(warp.forward(warp.inverse(q)), q, atol=1e-6)


def test_elastic_warp_is_smooth_bounded_and_seeded() -> None:
    size = 112
    warps_a, warps_b = standard_warps(size, seed=1), standard_warps(size, seed=2)
    q = pixel_grid(size, size, dtype=torch.float64)
    d = warps_a[2].forward(q) - q
    assert d.norm(dim=-1).max() == pytest.approx(5 * size / 224)
    assert (d[1:] - d[:-1]).abs().max() < 0.5  # smooth: well below 1 px per px
    assert not torch.allclose(d, warps_b[2].forward(q) - q)


def test_affine_matches_rotation_and_scale() -> None:
    w = AffineWarp.similarity(90.0, 2.0, (1.0, 0.0), (0.0, 0.0))
    p = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(w.forward(p), torch.tensor([[1.0, 2.0]], dtype=torch.float64), atol=1e-12)


def test_cases_fit_inside_the_margin_and_are_named() -> None:
    cases = build_cases([("pic", _photo(90, 120))], 64, extra=False)
    assert len(cases) == 9
    assert {c.name for c in cases} >= {"pic/shift+mix_gamma@64", "pic/affine+posterise@64", "pic/elastic+hue120@64"}
    assert [c.name for c in build_cases([("pic", _photo(90, 120))], 64, select=["elastic+post"], extra=False)] == [
        "pic/elastic+posterise@64"
    ]
    for c in cases:
        assert c.a.shape == c.bp.shape == (1, 3, 64, 64)
        assert 0 < int(c.scored_ab.sum()) < int(c.visible_ab.sum())
        assert c.bp.min() >= 0 and c.bp.max() <= 1


def test_overlap_and_zoom_scenes_have_known_coverage_and_sizes() -> None:
    """overlap: B' shows A moved by 30 % of its side, so about 70 % of A is covered; zoom:
    B' has another size and shows A shrunk; the true flows invert each other on the
    covered region."""
    cases = {c.name: c for c in build_cases([("pic", _photo(150, 200))], 64, select=["overlap+mix", "zoom+mix"])}
    overlap, zoom = cases["pic/overlap+mix_gamma@64"], cases["pic/zoom+mix_gamma@64"]
    assert 0.6 < float(overlap.visible_ab.float().mean()) < 0.75
    assert overlap.bp.shape == (1, 3, 64, 64)
    assert zoom.bp.shape == (1, 3, 51, 61) and zoom.b_true.shape == zoom.bp.shape
    assert zoom.flow_ba.shape == (51, 61, 2) and zoom.visible_ba.shape == (51, 61)
    q = pixel_grid(51, 61, dtype=torch.float64)
    p = q + zoom.flow_ba  # where B' pixels lie in A
    back = sample_bilinear(zoom.flow_ab.permute(2, 0, 1)[None], p[None])[0].permute(1, 2, 0)
    inner = zoom.visible_ba.clone()
    inner[:3], inner[-3:], inner[:, :3], inner[:, -3:] = False, False, False, False
    assert torch.allclose((p + back)[inner], q[inner], atol=1e-6)


def test_texture_mask_and_inside() -> None:
    img = torch.zeros(1, 3, 32, 32)
    img[..., :, 16:] = 1.0  # a vertical edge at x = 16
    m = texture_mask(img)
    assert m[:, 14:18].all() and not m[:, :8].any() and not m[:, 26:].any()
    pts = torch.tensor([[0.0, 0.0], [31.0, 31.0], [31.5, 3.0], [-0.1, 3.0]])
    assert inside(pts, 32, 32).tolist() == [True, True, False, False]
    assert inside(pts, 32, 32, border=1).tolist() == [False, False, False, False]


def test_colour_transfer_matches_mean_and_std() -> None:
    g = torch.Generator().manual_seed(0)
    src = 0.3 + 0.3 * torch.rand(1, 3, 32, 32, generator=g)
    ref = 0.4 + 0.2 * torch.rand(1, 3, 24, 40, generator=g) * torch.tensor([1.0, 0.5, 0.2]).view(1, 3, 1, 1)
    out, lab_ref = rgb_to_lab(colour_transfer(src, ref)), rgb_to_lab(ref)
    assert torch.allclose(out.mean((2, 3)), lab_ref.mean((2, 3)), atol=0.05)
    assert torch.allclose(out.std((2, 3)), lab_ref.std((2, 3)), rtol=0.02, atol=0.05)


def test_lab_round_trip_and_white() -> None:
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-5)
    white = rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten()
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0]), atol=1e-3)


def test_appearances() -> None:
    x = 0.2 + 0.6 * torch.rand(1, 3, 16, 16)
    levels = torch.unique(posterise(torch.rand(1, 3, 64, 64)))
    assert torch.allclose(levels, torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]))
    grey = torch.full((1, 3, 2, 2), 0.25)
    assert torch.allclose(mix_gamma(grey), grey**0.6, atol=1e-6)  # greys stay grey
    rotated = hue_rotate(x, clamp=False)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose((rotated * luma).sum(1), (x * luma).sum(1), atol=1e-5)
    thrice = hue_rotate(hue_rotate(rotated, clamp=False), clamp=False)
    assert torch.allclose(thrice, x, atol=1e-5) and not torch.allclose(rotated, x, atol=0.05)


def test_end_point_error_and_table() -> None:
    truth = torch.zeros(4, 4, 2)
    flow = torch.zeros(4, 4, 2)
    flow[0, :, 0] = 3.0
    flow[1, :, 1] = 4.0
    mask = torch.ones(4, 4, dtype=torch.bool)
    med, mean = end_point_error(flow, truth, mask)
    assert mean == pytest.approx((4 * 3 + 4 * 4) / 16) and med == pytest.approx(0.0)
    row = dict.fromkeys(mean_row([]), 1.0)
    table = markdown_table(["x/shift+posterise"], [row], [2.0])
    assert table.count("\n") == 4 and "**mean**" in table and "| x/shift+posterise |" in table
    row["psnr_b_edge"] = math.nan  # no pixel near the edge: a dash, and the mean skips it
    table = markdown_table(["x/shift+posterise"], [row], [2.0])
    assert "| 1.00 | – | 2 |" in table and math.isnan(mean_row([row])["psnr_b_edge"])


def test_photos_extracted_from_a_wheel_without_network(tmp_path) -> None:
    wheel = tmp_path / "scikit_image-0.26.0-cp311-cp311-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("skimage/data/chelsea.png", b"png-bytes")
        zf.writestr("skimage/other.py", b"")
    out = extract_photos(wheel, ("chelsea",), tmp_path / "x")
    assert [p.name for p in out] == ["chelsea.png"] and out[0].read_bytes() == b"png-bytes"
    assert not (tmp_path / "x" / "other.py").exists()
    with pytest.raises(PhotoError, match="coffee"):
        extract_photos(wheel, ("coffee",), tmp_path / "x")
    # a cache that holds the wheel is used without calling pip
    assert skimage_photos(("chelsea",), tmp_path)[0].read_bytes() == b"png-bytes"
    with pytest.raises(PhotoError, match="unknown"):
        skimage_photos(("lena",), tmp_path)
