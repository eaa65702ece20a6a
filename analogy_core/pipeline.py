"""The coarse-to-fine Deep Image Analogy, as composable steps and one call.

Every step takes an immutable ``AnalogyState`` and returns a new one, so the ComfyUI
step nodes, the one-shot node and the CLI all run exactly the same code.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from ._check import check_finite, check_shape
from .config import LAYERS, AnalogyConfig, DeconvMode, MaskMode
from .deconv import deconvolve
from .fusion import feature_mask, fuse
from .image import pixel_grid
from .masks import (
    Regions,
    SearchConstraint,
    blend_limit,
    check_regions,
    constrain_field,
    feather_weights,
    regions_item,
    search_constraint,
)
from .nnf import _resample_coords, identity_nnf, nnf_to_flow, upsample_nnf
from .patchmatch import patchmatch
from .pixel import (
    MIN_MATCHED,
    REFINE_RADII,
    clamp_field,
    exchange_whole_pixels,
    exchange_work,
    matched_fraction,
    redraw_from_source,
    redraw_global_look,
    refine_pyramid,
    refine_work,
    resample_field,
)
from .progress import InterruptFn, ProgressFn, ProgressTracker
from .refine import wls_refine
from .vgg import VGG19, layer_above, layer_below
from .vote import patch_vote

logger = logging.getLogger(__name__)

Size = tuple[int, int]


@dataclass(frozen=True)
class AnalogyState:
    """Everything one analogy has computed so far; a new object after every step.

    Images are (N, 3, H, W) float RGB in 0..1; maps are dicts from layer name to
    (N, C, h, w) features; the layers' fields are (N, h, w, 2) int64 absolute (x, y)
    targets; the pixel-refined fields are continuous (float32) targets at the images' own
    sizes.

    Attributes:
        a: A at the caller's size.
        bp: B' at the caller's size.
        a_net: A as fed to the network (size-limited, times ``ratio``).
        bp_net: B' as fed to the network.
        feat_a: F_A per layer.
        feat_bp: F_B' per layer.
        feat_ap: F_A' per layer, filled from relu5_1 downwards.
        feat_b: F_B per layer, filled from relu5_1 downwards.
        nnf_ab: φ_a→b per layer searched so far.
        nnf_ba: φ_b→a per layer searched so far.
        recon_bp: deconvolved R_B' per layer (on A's grid).
        recon_a: deconvolved R_A per layer (on B's grid).
        moved: per searched layer (and ``"pixel"`` after the pixel refinement), the
            fraction of pixels whose match left its start, ``(a→b, b→a)``: at relu5_1 the
            start is the scaled identity, below it the upsampled field of the layer above,
            and for ``"pixel"`` the relu1_1 field carried to the images' sizes (a move is
            0.25 px or more there).
        field_ab: φ_a→b refined at pixel level, (N, H_A, W_A, 2) float32 into B' at the
            caller's sizes, or ``None`` before ``refine_pixels``.
        field_ba: φ_b→a likewise, (N, H_B', W_B', 2) into A.
        regions: limit, guide and ignore masks at the images' sizes (``masks.Regions``),
            or ``None``.
    """

    a: torch.Tensor
    bp: torch.Tensor
    a_net: torch.Tensor
    bp_net: torch.Tensor
    feat_a: Mapping[str, torch.Tensor]
    feat_bp: Mapping[str, torch.Tensor]
    feat_ap: Mapping[str, torch.Tensor]
    feat_b: Mapping[str, torch.Tensor]
    nnf_ab: Mapping[str, torch.Tensor] = field(default_factory=dict)
    nnf_ba: Mapping[str, torch.Tensor] = field(default_factory=dict)
    recon_bp: Mapping[str, torch.Tensor] = field(default_factory=dict)
    recon_a: Mapping[str, torch.Tensor] = field(default_factory=dict)
    moved: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    field_ab: torch.Tensor | None = None
    field_ba: torch.Tensor | None = None
    regions: Regions | None = None

    def size(self, side: str, layer: str) -> Size:
        """(H, W) of the ``"a"`` or ``"b"`` side at ``layer`` (or ``"input"``/``"original"``)."""
        if layer == "original":
            t = self.a if side == "a" else self.bp
        elif layer == "input":
            t = self.a_net if side == "a" else self.bp_net
        else:
            t = (self.feat_a if side == "a" else self.feat_bp)[layer]
        return (int(t.shape[-2]), int(t.shape[-1]))


@dataclass(frozen=True)
class AnalogyResult:
    """Output of ``run_analogy``.

    Attributes:
        ap: (N, 3, H_A, W_A) A' in 0..1, at A's size.
        b: (N, 3, H_B', W_B') B in 0..1, at B''s size.
        flow_ab: (N, H_A, W_A, 2) float32 (dx, dy) from A into B' (original sizes).
        flow_ba: (N, H_B', W_B', 2) float32 (dx, dy) from B' into A.
        state: the final state (all layers' fields and features).
        timings: seconds per stage.
    """

    ap: torch.Tensor
    b: torch.Tensor
    flow_ab: torch.Tensor
    flow_ba: torch.Tensor
    state: AnalogyState
    timings: dict[str, float]


def limited_size(
    height: int, width: int, *, min_side: int, max_side: int, max_area: int, name: str = "image"
) -> Size:
    """Size an image is resized to so that its sides lie in [min_side, max_side] and its
    area is at most ``max_area``, keeping the aspect ratio.

    Raises:
        ValueError: no such size exists for this aspect ratio; the message says which
            limit to change.

    Example:
        >>> limited_size(1400, 900, min_side=200, max_side=700, max_area=350_000)
        (700, 450)
    """
    if height < 1 or width < 1:
        raise ValueError(f"{name} is empty ({width}x{height})")
    scale = min(1.0, max_side / max(height, width), math.sqrt(max_area / (height * width)))
    if min(height, width) * scale < min_side - 0.5:
        up = min_side / min(height, width)
        if scale < 1.0 or max(height, width) * up > max_side + 0.5 or height * width * up * up > max_area * 1.0001:
            raise ValueError(
                f"{name} is {width}x{height} px: its aspect ratio cannot fit sides in [{min_side}, {max_side}] "
                f"with area <= {max_area}; crop it, or lower min_side / raise max_side and max_area"
            )
        scale = up
    if scale >= 1.0:
        return (round(height * scale), round(width * scale))
    # round down so the area and side limits hold exactly
    return (max(1, math.floor(height * scale + 1e-9)), max(1, math.floor(width * scale + 1e-9)))


def _resize(image: torch.Tensor, size: Size) -> torch.Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def _net_inputs(
    image: torch.Tensor, cfg: AnalogyConfig, name: str
) -> torch.Tensor:
    h, w = image.shape[-2:]
    lh, lw = limited_size(h, w, min_side=cfg.min_side, max_side=cfg.max_side, max_area=cfg.max_area, name=name)
    if (lh, lw) != (h, w):
        logger.info("%s: %dx%d px resized to %dx%d px to fit the size limits", name, w, h, lw, lh)
    nh, nw = max(16, round(lh * cfg.ratio)), max(16, round(lw * cfg.ratio))
    return _resize(image, (nh, nw))


def _check_images(a: torch.Tensor, bp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    check_shape(a, "N 3 H W", "A")
    check_shape(bp, "N 3 H W", "B'")
    if a.shape[0] != bp.shape[0]:
        if bp.shape[0] == 1:
            bp = bp.expand(a.shape[0], -1, -1, -1)
        elif a.shape[0] == 1:
            a = a.expand(bp.shape[0], -1, -1, -1)
        else:
            raise ValueError(
                f"A has batch {a.shape[0]} and B' has batch {bp.shape[0]}; pass equal batches or one image on a side"
            )
    for name, t in (("A", a), ("B'", bp)):
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a float image in 0..1, got dtype {t.dtype}")
        check_finite(t, name)
    return a, bp


def prepare(
    vgg: VGG19, a: torch.Tensor, bp: torch.Tensor, cfg: AnalogyConfig, *, regions: Regions | None = None
) -> AnalogyState:
    """Resize the inputs to the network size and extract their features (step 1).

    Sets F_A' = F_A and F_B = F_B' at relu5_1.

    Args:
        vgg: the feature network.
        a: (N, 3, H, W) RGB 0..1 image whose structure is kept.
        bp: (N or 1, 3, H', W') RGB 0..1 image whose appearance is transferred.
        cfg: size limits and ``ratio`` are read from it.
        regions: optional limit, guide and ignore masks (``analogy_core.masks``), at any
            size; they are resized to the images and kept on the state.

    Returns:
        The initial state.

    Raises:
        ValueError/TypeError: bad shapes, batch sizes, dtype, NaN, sizes beyond limits,
            or bad masks (the message names the mask and the fix).
    """
    a, bp = _check_images(a, bp)
    param = next(vgg.parameters())
    a = a.to(device=param.device, dtype=param.dtype)
    bp = bp.to(device=param.device, dtype=param.dtype)
    checked = None if regions is None or regions.empty else check_regions(regions, a, bp)
    a_net, bp_net = _net_inputs(a, cfg, "A"), _net_inputs(bp, cfg, "B'")
    with torch.no_grad():
        fa, fbp = vgg.extract(a_net), vgg.extract(bp_net)
    top = LAYERS[0]
    return AnalogyState(
        a=a, bp=bp, a_net=a_net, bp_net=bp_net, feat_a=fa, feat_bp=fbp,
        feat_ap={top: fa[top]}, feat_b={top: fbp[top]}, regions=checked,
    )


def _generator(seed: int, layer: str, direction: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed * 100 + LAYERS.index(layer) * 2 + direction)
    return g


def _require(mapping: Mapping[str, torch.Tensor], layer: str, what: str, step: str) -> torch.Tensor:
    if layer not in mapping:
        raise ValueError(f"{what} at {layer} is not computed yet; run {step} first")
    return mapping[layer]


def search_layer(
    state: AnalogyState,
    layer: str,
    *,
    patch_size: int,
    pm_iters: int,
    search_radius: int | None,
    seed: int = 0,
    pm_jumps: tuple[int, ...] = (8, 4, 2, 1),
    progress: ProgressFn | None = None,
    check_interrupt: InterruptFn | None = None,
    init: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
) -> AnalogyState:
    """Bidirectional NNF search at ``layer`` (step 2).

    Below relu5_1 both fields start from the upsampled fields of the layer above and the
    random search stays within ``search_radius`` of that start; at relu5_1 they start
    from the scaled identity and ``search_radius=None`` searches globally. ``init``
    replaces those starts (a clip's warm start: the previous frame's fields carried by
    the motion, ``analogy_core.video``).

    Args:
        state: the state after the fusion at ``layer`` (or after ``prepare`` at relu5_1).
        layer: VGG19 layer name.
        patch_size: odd patch width in feature pixels.
        pm_iters: PatchMatch iterations per direction.
        search_radius: random-search radius in the layer's pixels, ``None`` for global.
        seed: seed of the random search (with the layer and direction).
        pm_jumps: propagation steps.
        progress: ``progress(done, total, stage)``, ``total = 2 · N · pm_iters``, stage
            ``"nnf <layer>"``.
        check_interrupt: called before every propagation step.
        init: ``(init_ab, init_ba)``, (N, h, w, 2) int64 starts of φ_a→b and φ_b→a at
            ``layer`` (either may be ``None``: that direction keeps its usual start).

    Returns:
        A new state with ``nnf_ab[layer]`` and ``nnf_ba[layer]``.

    Raises:
        ValueError: unknown layer, or F_A'/F_B at ``layer`` not computed yet.
    """
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; use one of {LAYERS}")
    fap = _require(state.feat_ap, layer, "F_A'", "the fusion of the layer above")
    fb = _require(state.feat_b, layer, "F_B", "the fusion of the layer above")
    fa, fbp = state.feat_a[layer], state.feat_bp[layer]
    above = layer_above(layer)
    init_ab = init_ba = None
    if above is not None and above in state.nnf_ab:
        a_hw, b_hw = state.size("a", layer), state.size("b", layer)
        init_ab = upsample_nnf(state.nnf_ab[above], a_hw, state.size("b", above), b_hw)
        init_ba = upsample_nnf(state.nnf_ba[above], b_hw, state.size("a", above), a_hw)
    if init is not None:
        init_ab = init[0] if init[0] is not None else init_ab
        init_ba = init[1] if init[1] is not None else init_ba
    per_direction = fa.shape[0] * pm_iters
    tracker = ProgressTracker(progress, 2 * per_direction, f"nnf {layer}")

    def search(
        source: tuple[torch.Tensor, torch.Tensor], target: tuple[torch.Tensor, torch.Tensor],
        init: torch.Tensor | None, direction: int,
    ) -> torch.Tensor:
        src_hw = (int(source[0].shape[-2]), int(source[0].shape[-1]))
        tgt_hw = (int(target[0].shape[-2]), int(target[0].shape[-1]))
        constraint = search_constraint(state.regions, "ab" if direction == 0 else "ba", src_hw, tgt_hw)
        nnf, _ = patchmatch(
            source, target, patch_size=patch_size, pm_iters=pm_iters, search_radius=search_radius, init=init,
            pm_jumps=pm_jumps, generator=_generator(seed, layer, direction), check_interrupt=check_interrupt,
            progress=tracker.share(per_direction), constraint=constraint,
        )
        return nnf

    nnf_ab = search((fa, fap), (fb, fbp), init_ab, 0)
    nnf_ba = search((fbp, fb), (fap, fa), init_ba, 1)
    moved = (_moved_fraction(nnf_ab, init_ab, state.size("b", layer)),
             _moved_fraction(nnf_ba, init_ba, state.size("a", layer)))
    return dataclasses.replace(
        state, nnf_ab={**state.nnf_ab, layer: nnf_ab}, nnf_ba={**state.nnf_ba, layer: nnf_ba},
        moved={**state.moved, layer: moved},
    )


def moved_fractions(state: AnalogyState) -> dict[str, dict[str, float]]:
    """The fraction of pixels each search moved from its start, per stage and direction.

    Returns:
        ``{stage: {"ab": fraction, "ba": fraction}}`` for every searched layer, from
        relu5_1 down, and ``"pixel"`` after the pixel refinement (see
        ``AnalogyState.moved``).
    """
    return {stage: {"ab": ab, "ba": ba} for stage, (ab, ba) in state.moved.items()}


def _moved_fraction(nnf: torch.Tensor, init: torch.Tensor | None, target_hw: Size) -> float:
    """Fraction of pixels whose match differs from its start (the scaled identity when
    ``init`` is ``None``, as in ``patchmatch``)."""
    if init is None:
        n, h, w, _ = nnf.shape
        init = upsample_nnf(identity_nnf(n, h, w, nnf.device), (h, w), (h, w), target_hw)
    return float((nnf != init).any(dim=-1).float().mean())


def _features(vgg: VGG19, image: torch.Tensor, layer: str) -> torch.Tensor:
    """F at ``layer`` of a network input, by the same layers as ``prepare`` (equal bit for bit)."""
    with torch.no_grad():
        feat: torch.Tensor = vgg.subnet("input", layer)(vgg.preprocess(image))
    return feat


def _map_at(state: AnalogyState, side: str, layer: str, vgg: VGG19) -> torch.Tensor:
    """``side``'s features at ``layer`` (or its preprocessed image at ``"input"``).

    A map that a lean run has released is recomputed for this read and not kept.
    """
    image = state.a_net if side == "a" else state.bp_net
    if layer == "input":
        return vgg.preprocess(image)
    feat = (state.feat_a if side == "a" else state.feat_bp)[layer]
    return _features(vgg, image, layer) if feat.device.type == "meta" else feat


def deconv_start(layer: str, deconv: DeconvMode) -> str:
    """Where the deconvolution of ``layer`` optimises: the layer below (``"direct"``), or
    two layers below, or the image below relu2_1 (``"release"``).

    Example:
        >>> deconv_start("relu4_1", "release"), deconv_start("relu2_1", "release")
        ('relu2_1', 'input')
    """
    lower = layer_below(layer)
    return lower if deconv == "direct" else (layer_below(lower) if lower != LAYERS[-1] else "input")


def deconvolve_layer(
    vgg: VGG19,
    state: AnalogyState,
    layer: str,
    *,
    patch_size: int,
    lbfgs_iters: int,
    lbfgs_history: int = 4,
    deconv: DeconvMode = "direct",
    progress: ProgressFn | None = None,
    check_interrupt: InterruptFn | None = None,
) -> AnalogyState:
    """Warp the appearance features at ``layer`` and deconvolve them one layer down (step 3).

    The target is F_B' at ``layer`` voted through φ_a→b (patches of ``patch_size``
    averaged). ``"direct"`` optimises R_B' at the layer below, starting from F_B' there
    voted through the upsampled field; ``"release"`` optimises the map two layers below
    (or the image) the same way and forwards it one layer. Symmetrically for R_A.

    Args:
        vgg: the network that extracted the state's features.
        state: the state after the NNF search at ``layer``.
        layer: VGG19 layer name (not relu1_1).
        patch_size: odd width of the patches the warped features are voted with.
        lbfgs_iters: L-BFGS iterations per direction.
        lbfgs_history: L-BFGS history size.
        deconv: ``"direct"`` or ``"release"`` (see above).
        progress: ``progress(done, total, stage)``, ``total = 2 · lbfgs_iters``, stage
            ``"deconv <layer>"``.
        check_interrupt: called before every L-BFGS function evaluation.

    Returns:
        A new state with ``recon_bp`` and ``recon_a`` at the layer below.

    Raises:
        ValueError: ``layer`` is relu1_1, its fields are missing, or the mode is unknown.
    """
    if deconv not in ("direct", "release"):
        raise ValueError(f"deconvolution mode must be 'direct' or 'release', got {deconv!r}")
    lower = layer_below(layer)
    start = deconv_start(layer, deconv)
    nnfs = {
        "a": _require(state.nnf_ab, layer, "φ_a→b", "the NNF search"),
        "b": _require(state.nnf_ba, layer, "φ_b→a", "the NNF search"),
    }
    tracker = ProgressTracker(progress, 2 * lbfgs_iters, f"deconv {layer}")
    results = {}
    for side, other in (("a", "b"), ("b", "a")):
        # R on `side`'s grid, built from the other image's features.
        nnf = nnfs[side]
        target = patch_vote(_map_at(state, other, layer, vgg), nnf, patch_size)
        up = upsample_nnf(nnf, state.size(side, start), state.size(other, layer), state.size(other, start))
        init = patch_vote(_map_at(state, other, start, vgg), up, patch_size)  # a recomputed map dies here
        x = deconvolve(vgg, start, layer, target, init, lbfgs_iters=lbfgs_iters, lbfgs_history=lbfgs_history,
                       check_interrupt=check_interrupt, progress=tracker.share(lbfgs_iters))
        if start != lower:
            with torch.no_grad():
                x = vgg.subnet(start, lower)(x)
        results[side] = x
    return dataclasses.replace(
        state,
        recon_bp={**state.recon_bp, lower: results["a"]},
        recon_a={**state.recon_a, lower: results["b"]},
    )


def fuse_layer(
    state: AnalogyState,
    layer: str,
    *,
    alpha: float,
    kappa: float = 300.0,
    tau: float = 0.05,
    mask: MaskMode = "sigmoid",
) -> AnalogyState:
    """F_A' = F_A∘W + R_B'∘(1 − W) and F_B = F_B'∘W' + R_A∘(1 − W') at ``layer`` (step 4).

    W = α·M(F_A), W' = α·M(F_B'), with M from ``feature_mask``.

    Returns:
        A new state with ``feat_ap[layer]`` and ``feat_b[layer]``.

    Raises:
        ValueError: α outside [0, 1], or the deconvolution at ``layer`` is missing.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    r_bp = _require(state.recon_bp, layer, "R_B'", "the deconvolution of the layer above")
    r_a = _require(state.recon_a, layer, "R_A", "the deconvolution of the layer above")
    fa, fbp = state.feat_a[layer], state.feat_bp[layer]
    w_a = alpha * feature_mask(fa, kappa=kappa, tau=tau, mode=mask)
    w_b = alpha * feature_mask(fbp, kappa=kappa, tau=tau, mode=mask)
    return dataclasses.replace(
        state,
        feat_ap={**state.feat_ap, layer: fuse(fa, r_bp, w_a)},
        feat_b={**state.feat_b, layer: fuse(fbp, r_a, w_b)},
    )


def refine_pixels(
    state: AnalogyState,
    *,
    layer: str = LAYERS[-1],
    progress: ProgressFn | None = None,
    check_interrupt: InterruptFn | None = None,
) -> AnalogyState:
    """Refine both fields at pixel level, at the caller's image sizes (after step 5).

    The fields at ``layer`` are refined on the images themselves to sub-pixel precision
    (``analogy_core.pixel.refine_pyramid``): from the network's grid up to A's and B''s
    own sizes, with a windowed luminance correlation that no appearance change can lock;
    where both directions are refined, each direction's exact whole-pixel matches then
    correct the other's (``pixel.exchange_whole_pixels``). ``reconstruct`` then votes
    through the refined fields. A pair (direction and batch
    item) whose images confirm too few matches of the deep fields (``pixel.matched_fraction``
    below ``pixel.MIN_MATCHED``: different scenes, a photo and a painting) keeps its plain
    field; when no direction of any item is refined the state is returned unchanged
    but for ``moved["pixel"]`` = (0, 0), so the vote is exactly the plain one.

    Args:
        state: the state after the NNF search at ``layer``.
        layer: the layer whose fields are refined (relu1_1).
        progress: ``progress(done, total, stage)``, ``total = 2 · refine_work()``, stage
            ``"pixel refinement"``.
        check_interrupt: called before every scored offset.

    Returns:
        A new state with ``field_ab``, ``field_ba`` and ``moved["pixel"]``.

    Raises:
        ValueError: the fields at ``layer`` are missing.
    """
    per_direction = refine_work(REFINE_RADII)
    # each direction's share of the exchange of whole-pixel matches comes out of its own units
    pyramid_units = per_direction - exchange_work() // 2
    tracker = ProgressTracker(progress, 2 * per_direction, "pixel refinement")
    fields, plains, gated = {}, {}, {}
    nnfs = {side: _require(nnf, layer, f"φ at {layer}", "the NNF search")
            for side, nnf in (("a", state.nnf_ab), ("b", state.nnf_ba))}
    # each field as continuous coordinates on its own grid
    starts = {side: _resample_coords(nnfs[side], state.size(side, layer), state.size(other, layer),
                                     state.size(other, layer)).float() for side, other in (("a", "b"), ("b", "a"))}
    for side, source, target in (("a", state.a, state.bp), ("b", state.bp, state.a)):
        other = "b" if side == "a" else "a"
        # the pair gate: only views of one scene are refined (see analogy_core.pixel)
        keep = matched_fraction(source, target, starts[side], starts[other], check_interrupt=check_interrupt)
        gated[side] = keep >= MIN_MATCHED
        logger.info("pixel refinement %s: matched fraction %s (refined where >= %.2f)", "A→B'" if side == "a"
                    else "B'→A", ", ".join(f"{float(f):.3f}" for f in keep), MIN_MATCHED)
        # the field the plain vote uses: carried to the images' sizes, whole pixels
        plains[side] = upsample_nnf(nnfs[side], state.size(side, "original"), state.size(other, layer),
                                    state.size(other, "original")).float()
        if not bool(gated[side].any()):
            tracker.advance(per_direction)
            fields[side] = plains[side]
            continue
        refined, _ = refine_pyramid(
            source, target, starts[side], state.size(other, layer), check_interrupt=check_interrupt,
            progress=tracker.share(pyramid_units),
        )
        fields[side] = torch.where(gated[side].view(-1, 1, 1, 1), refined, plains[side])
    if not any(bool(g.any()) for g in gated.values()):
        tracker.finish()
        # nothing refined: the state stays as the search left it, so the vote is the plain one
        return dataclasses.replace(state, moved={**state.moved, "pixel": (0.0, 0.0)})
    both = gated["a"] & gated["b"]
    if bool(both.any()):
        # each direction's exact whole-pixel matches correct the other's
        exchanged = exchange_whole_pixels(state.a, state.bp, fields["a"], fields["b"], check_interrupt=check_interrupt,
                                          progress=tracker.share(exchange_work()))
        for side, field_ in zip(("a", "b"), exchanged):
            fields[side] = torch.where(both.view(-1, 1, 1, 1), field_, fields[side])
    elif check_interrupt is not None:
        check_interrupt()  # the exchange's units pass unspent
    tracker.finish()
    moved = {}
    for side in ("a", "b"):
        other = "b" if side == "a" else "a"
        constraint = _final_constraint(state, side)
        if not bool(gated[side].any()):
            fields[side], moved[side] = constrain_field(constraint, plains[side]), 0.0
            continue
        # how far each pixel moved from its start carried to the images' sizes unrefined
        carried = resample_field(starts[side], state.size(side, "original"), state.size(other, layer),
                                 state.size(other, "original"))
        # a refined match never moves into a forbidden region: it keeps its start there
        carried = constrain_field(constraint, carried)
        fields[side] = constrain_field(constraint, fields[side], carried)
        moved[side] = float((((fields[side] - carried).norm(dim=-1) >= 0.25) & gated[side].view(-1, 1, 1)).float().mean())
    return dataclasses.replace(
        state, field_ab=fields["a"], field_ba=fields["b"], moved={**state.moved, "pixel": (moved["a"], moved["b"])}
    )


def _final_constraint(state: AnalogyState, side: str) -> SearchConstraint | None:
    """The region constraint of ``side``'s field at the images' own sizes (or ``None``)."""
    other = "b" if side == "a" else "a"
    return search_constraint(state.regions, "ab" if side == "a" else "ba", state.size(side, "original"),
                             state.size(other, "original"), exact=True)


def _vote_skipping_ignored(state: AnalogyState, field: torch.Tensor, vote_patch: int) -> torch.Tensor:
    """A' voted from B' pixels, where votes landing on ignored B' pixels do not count."""
    regions = state.regions
    if regions is None or regions.ignore_bp is None:
        return patch_vote(state.bp, field, vote_patch)
    keep = (regions.ignore_bp < 0.5).to(state.bp.dtype)
    votes = patch_vote(torch.cat((state.bp * keep, keep), dim=1), field, vote_patch)
    plain = patch_vote(state.bp, field, 1)  # the match itself, never ignored
    weight = votes[:, -1:]
    return torch.where(weight > 1e-6, votes[:, :-1] / weight.clamp_min(1e-6), plain)


def reconstruct(
    state: AnalogyState, *, vote_patch: int = 5, layer: str = LAYERS[-1]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels of A' and B by patch voting through the finest fields (step 6).

    With pixel-refined fields (``refine_pixels``) B' (for A') and A (for B) are voted
    through them, sampling bilinearly, and A' is redrawn from A's own pixels where it was
    sampled between pixels and a local affine colour transform of A explains it
    (``pixel.redraw_from_source``), then drawn as one colour map of A where B''s look is
    one (``pixel.redraw_global_look``; a pair the refinement left alone keeps whole-pixel
    fields and so its vote); otherwise the fields at ``layer`` are carried to the
    caller's original image sizes and the images voted through them there. Patches are
    ``vote_patch`` pixels wide.

    With region data on the state, the fields' targets are kept inside the allowed
    regions (``masks.constrain_field``) and A' takes no vote from ignored B' pixels. The
    limit masks are not applied here but by ``apply_limits``, after any refinement.

    Returns:
        ``(ap, b, flow_ab, flow_ba)``: images (N, 3, H, W) in 0..1 at A's and B''s sizes,
        and float32 (dx, dy) flows (N, H, W, 2) at those sizes.

    Raises:
        ValueError: the fields at ``layer`` are missing.
    """
    a_hw, b_hw = state.size("a", "original"), state.size("b", "original")
    if state.field_ab is not None and state.field_ba is not None:
        ap = _vote_skipping_ignored(state, state.field_ab, vote_patch).clamp(0, 1)
        ap = redraw_from_source(state.a, ap, state.field_ab)
        ap = redraw_global_look(state.a, ap, state.field_ab, state.field_ba)
        b = patch_vote(state.a, state.field_ba, vote_patch).clamp(0, 1)
        flow_ab = state.field_ab - pixel_grid(*a_hw, device=state.a.device)
        flow_ba = state.field_ba - pixel_grid(*b_hw, device=state.a.device)
        return ap, b, flow_ab, flow_ba
    nnf_ab = _require(state.nnf_ab, layer, "φ_a→b", "the NNF search")
    nnf_ba = _require(state.nnf_ba, layer, "φ_b→a", "the NNF search")
    a_l, b_l = state.size("a", layer), state.size("b", layer)
    if state.regions is not None and state.regions.constrains_search:
        fields = []
        for side, nnf, src_hw, tgt_l, tgt_hw in (("a", nnf_ab, a_hw, b_l, b_hw), ("b", nnf_ba, b_hw, a_l, a_hw)):
            coords = _resample_coords(nnf, src_hw, tgt_l, tgt_hw)
            coords = clamp_field(coords, tgt_hw)
            fields.append(constrain_field(_final_constraint(state, side), coords))
        ab, ba = (torch.round(f).long() for f in fields)
        ap = _vote_skipping_ignored(state, ab, vote_patch).clamp(0, 1)
        b = patch_vote(state.a, ba, vote_patch).clamp(0, 1)
        flow_ab = (fields[0] - pixel_grid(*a_hw, dtype=torch.float64, device=state.a.device)).float()
        flow_ba = (fields[1] - pixel_grid(*b_hw, dtype=torch.float64, device=state.a.device)).float()
        return ap, b, flow_ab, flow_ba
    ab = upsample_nnf(nnf_ab, a_hw, b_l, b_hw)
    ba = upsample_nnf(nnf_ba, b_hw, a_l, a_hw)
    ap = patch_vote(state.bp, ab, vote_patch).clamp(0, 1)
    b = patch_vote(state.a, ba, vote_patch).clamp(0, 1)
    flow_ab = nnf_to_flow(nnf_ab, a_hw, b_l, b_hw)
    flow_ba = nnf_to_flow(nnf_ba, b_hw, a_l, a_hw)
    return ap, b, flow_ab, flow_ba


def apply_limits(state: AnalogyState, ap: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The final composite of the limit masks: A' is A outside ``limit_a`` and B is B'
    outside ``limit_bp``, with the feathered edge (``masks.feather_weights``).

    Run it last, after the vote and any refinement. Without limit masks it returns its
    inputs.

    Args:
        state: the state (for A, B' and the region data).
        ap: (N, 3, H_A, W_A) A'.
        b: (N, 3, H_B', W_B') B.

    Returns:
        ``(ap, b)``; outside the masks exactly A and B', inside them (beyond the feather)
        exactly the inputs.
    """
    regions = state.regions
    if regions is None:
        return ap, b
    if regions.limit_a is not None:
        ap = blend_limit(state.a.to(ap.dtype), ap, feather_weights(regions.limit_a, regions.feather).to(ap.dtype))
    if regions.limit_bp is not None:
        b = blend_limit(state.bp.to(b.dtype), b, feather_weights(regions.limit_bp, regions.feather).to(b.dtype))
    return ap, b


WLS_UNITS = 50
"""Progress units of one WLS refinement in ``total_work`` (its solver converges in 10–50
iterations; the bar advances by the fraction of ``max_iters`` done, the rest at the end)."""


PHOTO_WLS_LAMBDA = 0.8
"""λ of the photo mode's WLS refinement; with the guide's plain luminance as weights
(``guide_scale="linear"``), as the authors' release does it."""


def finish_photo(
    state: AnalogyState,
    ap: torch.Tensor,
    b: torch.Tensor,
    *,
    progress: ProgressFn | None = None,
    check_interrupt: InterruptFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' photo mode after the vote: A's structure with A''s colours.

    A' = A + WLS(A' − A | A) and B = B' + WLS(B − B' | B'): the edge-aware smoothed colour
    change is added to the structure image, so none of the other image's patch structure
    survives (``refine.wls_refine``). The weights follow the release's photo mode: λ 0.8,
    α 1, differences of the guide's plain luminance in 0..1.

    Args:
        state: the state the vote came from (for A and B').
        ap: (N, 3, H_A, W_A) voted A'.
        b: (N, 3, H_B', W_B') voted B.
        progress: ``progress(done, total, stage)``, ``2 · WLS_UNITS`` units, stage
            ``"wls refinement"``.
        check_interrupt: called before every solver iteration.

    Returns:
        ``(ap, b)`` refined, in 0..1.
    """
    tracker = ProgressTracker(progress, 2 * WLS_UNITS, "wls refinement")
    ap = wls_refine(ap, state.a, lam=PHOTO_WLS_LAMBDA, guide_scale="linear", check_interrupt=check_interrupt,
                    progress=tracker.share(WLS_UNITS))
    b = wls_refine(b, state.bp, lam=PHOTO_WLS_LAMBDA, guide_scale="linear", check_interrupt=check_interrupt,
                   progress=tracker.share(WLS_UNITS))
    tracker.finish()
    return ap, b


_SPENT = {
    "recon": ("recon_bp", "recon_a"),
    "fused": ("feat_ap", "feat_b"),
    "features": ("feat_a", "feat_bp"),
}
"""The maps ``release_layer`` frees at each point of a layer's steps."""


def release_layer(state: AnalogyState, layer: str, spent: str) -> AnalogyState:
    """The state with one group of ``layer``'s maps replaced by shape-only placeholders.

    In a full run each group is read for the last time at one step: ``"recon"`` (R_B',
    R_A) by the fusion at ``layer``, ``"fused"`` (F_A', F_B) by the search at ``layer``,
    and ``"features"`` (F_A, F_B') by the deconvolution at ``layer`` (the deconvolutions
    of the layers above read only lower layers). Freed maps become tensors on the
    ``"meta"`` device: ``AnalogyState.size`` still works, and a step that would read one
    fails instead of computing with stale data (but the deconvolution recomputes any
    released F_A or F_B' it reads from the images, which cannot be stale).

    Args:
        state: the state.
        layer: VGG19 layer name.
        spent: ``"recon"``, ``"fused"`` or ``"features"``.

    Returns:
        A new state (the freed maps' memory goes once nothing else holds them).

    Raises:
        ValueError: unknown group.
    """
    if spent not in _SPENT:
        raise ValueError(f"unknown map group {spent!r}; use one of {', '.join(_SPENT)}")
    changes: dict[str, Any] = {}
    for name in _SPENT[spent]:
        maps: Mapping[str, torch.Tensor] = getattr(state, name)
        if layer in maps:
            t = maps[layer]
            changes[name] = {**maps, layer: torch.empty(t.shape, dtype=t.dtype, device="meta")}
    return dataclasses.replace(state, **changes)


LATE_LAYERS: tuple[str, ...] = ("relu2_1", "relu1_1")
"""Layers whose F_A and F_B' a lean run drops after ``prepare``: they are the largest maps
and cheap to recompute. They come back for their own layer's steps (``restore_layer``);
a deconvolution that starts from one reads a copy computed for that read alone."""


def restore_layer(state: AnalogyState, vgg: VGG19, layer: str) -> AnalogyState:
    """The state with F_A and F_B' at ``layer`` recomputed where they are placeholders.

    The features are computed by the same layers as in ``prepare``, so they are equal bit
    for bit; maps that are present are kept.

    Args:
        state: the state.
        vgg: the network that extracted the state's features.
        layer: a VGG19 layer name.

    Returns:
        The state (itself when nothing was missing).
    """
    changes: dict[str, Any] = {}
    for name, image in (("feat_a", state.a_net), ("feat_bp", state.bp_net)):
        maps: Mapping[str, torch.Tensor] = getattr(state, name)
        if maps[layer].device.type == "meta":
            changes[name] = {**maps, layer: _features(vgg, image, layer)}
    return dataclasses.replace(state, **changes) if changes else state


def total_work(cfg: AnalogyConfig, batch: int = 1) -> int:
    """Progress units of a full run (``run_analogy``'s ``total``).

    Per image pair (``run_analogy`` solves the pairs of a batch one after another): one
    unit per PatchMatch iteration, direction and layer, one per L-BFGS iteration,
    direction and deconvolved layer, one per offset scored by the pixel refinement in each
    direction (when ``cfg.pixel_refine``), ``WLS_UNITS`` for each WLS refinement of A'
    and B (when ``cfg.wls_refine``), plus one for the features and one for the vote.

    Args:
        cfg: the settings.
        batch: number of image pairs.

    Example:
        >>> total_work(AnalogyConfig(pm_iters=1, lbfgs_iters=1))
        20
    """
    pixel = 2 * refine_work(REFINE_RADII) if cfg.pixel_refine else 0
    wls = 2 * WLS_UNITS if cfg.wls_refine else 0
    per_pair = len(LAYERS) * 2 * cfg.pm_iters + (len(LAYERS) - 1) * 2 * cfg.lbfgs_iters + pixel + wls + 2
    return batch * per_pair


class _Stages:
    """Progress and per-stage timings of one ``run_analogy`` call."""

    def __init__(self, tracker: ProgressTracker, device: torch.device) -> None:
        self.tracker, self.device = tracker, device
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.tracker.begin(name)
        t0 = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


def _batch(a: torch.Tensor, bp: torch.Tensor) -> int:
    check_shape(a, "N 3 H W", "A")
    check_shape(bp, "N 3 H W", "B'")
    return max(int(a.shape[0]), int(bp.shape[0]))


def run_analogy(
    vgg: VGG19,
    a: torch.Tensor,
    bp: torch.Tensor,
    cfg: AnalogyConfig,
    *,
    seed: int = 0,
    progress: ProgressFn | None = None,
    check_interrupt: InterruptFn | None = None,
    regions: Regions | None = None,
    lean: bool = False,
) -> AnalogyResult:
    """The whole analogy: features, then for relu5_1 … relu1_1 search, deconvolve, fuse,
    then (``cfg.pixel_refine``) the pixel-level refinement of both fields, the pixel vote,
    and (``cfg.wls_refine``) the photo mode's WLS refinement.

    The pairs of a batch are solved one after another, each as a batch of one with the
    same ``seed``: an item's result does not depend on what else is in its batch (on CPU
    it is bit-identical to running it alone), and memory holds one pair's state at a time.

    Args:
        vgg: loaded network (its device and dtype are used).
        a: (N, 3, H, W) RGB 0..1; the structure of A' comes from it.
        bp: (N or 1, 3, H', W') RGB 0..1; the appearance of A' comes from it.
        cfg: settings (see ``AnalogyConfig``).
        seed: seed of the random search; the same seed gives the same fields.
        progress: ``progress(done, total, stage)`` in work units, ``total =
            total_work(cfg, N)``; stages ``"features"``, ``"nnf <layer>"``,
            ``"deconv <layer>"``, ``"fusion <layer>"``, ``"pixel refinement"``, ``"vote"``,
            ``"wls refinement"`` (see
            ``analogy_core.progress``).
        check_interrupt: called before every PatchMatch propagation step and L-BFGS
            evaluation; raise from it to cancel.
        regions: optional limit, guide and ignore masks (``analogy_core.masks``): the
            guide and ignore masks constrain every layer's search and the final fields,
            the limit masks make the final composite (``apply_limits``).
        lean: free every map as soon as no later step reads it (``release_layer``), so
            memory holds about one layer's maps at a time; the results are the same. The
            returned state then keeps the images, fields and shapes, but its feature maps
            are shape-only placeholders (device ``"meta"``): use the default where a
            later step reads the state (the step nodes do).

    Returns:
        The ``AnalogyResult``; for a batch, its ``state`` is the last pair's and its
        ``timings`` are summed over the pairs.

    Raises:
        ValueError/TypeError: invalid inputs, with the problem and the fix in the message.
    """
    batch = _batch(a, bp)
    a, bp = _check_images(a, bp)
    if batch > 1 and regions is not None and not regions.empty:
        check_regions(regions, a, bp)  # batch lengths of the masks, before any pair runs
    tracker = ProgressTracker(progress, total_work(cfg, batch))
    outputs: list[tuple[torch.Tensor, ...]] = []
    timings: dict[str, float] = {}
    last: AnalogyState | None = None
    for i in range(batch):
        share = tracker.share(total_work(cfg), prefix=f"pair {i + 1} of {batch}: " if batch > 1 else "")
        result = _run_pair(vgg, a[i : i + 1], bp[i : i + 1], cfg, seed, share, check_interrupt,
                           regions_item(regions, i) if batch > 1 else regions, lean=lean)
        if batch == 1:
            return result
        outputs.append((result.ap, result.b, result.flow_ab, result.flow_ba))
        for stage, t in result.timings.items():
            timings[stage] = timings.get(stage, 0.0) + t
        last = result.state if i == batch - 1 else None
        del result  # only the last pair's state outlives its pair
    tracker.finish()
    ap, b, flow_ab, flow_ba = (torch.cat(parts) for parts in zip(*outputs))
    assert last is not None
    return AnalogyResult(ap=ap, b=b, flow_ab=flow_ab, flow_ba=flow_ba, state=last, timings=timings)


def _run_pair(
    vgg: VGG19,
    a: torch.Tensor,
    bp: torch.Tensor,
    cfg: AnalogyConfig,
    seed: int,
    progress: ProgressFn,
    check_interrupt: InterruptFn | None,
    regions: Regions | None,
    *,
    lean: bool = False,
) -> AnalogyResult:
    """``run_analogy`` for one pair: ``a`` and ``bp`` are batches of one."""
    if check_interrupt is not None:
        check_interrupt()  # between two pairs of a batch
    param = next(vgg.parameters())
    tracker = ProgressTracker(progress, total_work(cfg))
    stages = _Stages(tracker, param.device)
    with stages.stage("features"):
        first = [prepare(vgg, a, bp, cfg, regions=regions)]
        tracker.advance(1)
    # handed over without a reference left here, so that a lean run can free its maps
    return _solve(vgg, first.pop(), cfg, seed, stages, check_interrupt, lean=lean)


def _solve(
    vgg: VGG19,
    state: AnalogyState,
    cfg: AnalogyConfig,
    seed: int,
    stages: _Stages,
    check_interrupt: InterruptFn | None,
    *,
    top_init: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
    top_radius: int | None = None,
    lean: bool = False,
) -> AnalogyResult:
    """Everything after ``prepare`` for one pair, counted on ``stages.tracker``.

    ``top_init`` and ``top_radius`` replace the relu5_1 search's start and radius (a
    clip's warm start); without them this is the single-image run. ``lean`` frees each
    map once no later step reads it (``release_layer``).
    """
    tracker = stages.tracker
    if lean:
        for late in LATE_LAYERS:
            state = release_layer(state, late, "features")
    for i, layer in enumerate(LAYERS):
        if lean and layer in LATE_LAYERS:  # its own maps; the deconvolution's start is recomputed per read
            with stages.stage("features"):
                state = restore_layer(state, vgg, layer)
        if i > 0:
            with stages.stage(f"fusion {layer}"):
                state = fuse_layer(state, layer, alpha=cfg.alphas[i], kappa=cfg.kappa, tau=cfg.tau, mask=cfg.mask)
                if lean:
                    state = release_layer(state, layer, "recon")
        warm = i == 0 and top_init is not None
        with stages.stage(f"nnf {layer}"):
            state = search_layer(
                state, layer, patch_size=cfg.patch_sizes[i], pm_iters=cfg.pm_iters,
                search_radius=top_radius if warm else cfg.search_radii[i], seed=seed, pm_jumps=cfg.pm_jumps,
                progress=tracker.share(2 * cfg.pm_iters), check_interrupt=check_interrupt,
                init=top_init if warm else None,
            )
            if lean:
                state = release_layer(state, layer, "fused")
        if i + 1 < len(LAYERS):
            with stages.stage(f"deconv {layer}"):
                state = deconvolve_layer(
                    vgg, state, layer, patch_size=cfg.patch_sizes[i], lbfgs_iters=cfg.lbfgs_iters,
                    lbfgs_history=cfg.lbfgs_history, deconv=cfg.deconv, progress=tracker.share(2 * cfg.lbfgs_iters),
                    check_interrupt=check_interrupt,
                )
        if lean:
            state = release_layer(state, layer, "features")
    if cfg.pixel_refine:
        with stages.stage("pixel refinement"):
            state = refine_pixels(
                state, progress=tracker.share(2 * refine_work(REFINE_RADII)), check_interrupt=check_interrupt
            )
    with stages.stage("vote"):
        ap, b, flow_ab, flow_ba = reconstruct(state, vote_patch=cfg.vote_patch)
        tracker.advance(1)
    if cfg.wls_refine:
        with stages.stage("wls refinement"):
            ap, b = finish_photo(state, ap, b, progress=tracker.share(2 * WLS_UNITS), check_interrupt=check_interrupt)
    ap, b = apply_limits(state, ap, b)
    return AnalogyResult(ap=ap, b=b, flow_ab=flow_ab, flow_ba=flow_ba, state=state, timings=stages.timings)
