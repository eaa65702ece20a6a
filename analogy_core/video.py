"""A clip after one painting: frames streamed one at a time, with optional temporal coherence.

Each frame is its own single-pair problem (``pipeline``); only the little a frame hands
to the next (the ``_Carry``: the previous frame, its features at one layer, its A' and
its relu5_1 fields) outlives it, so memory holds one frame's state however long the clip.
With ``temporal=None`` every frame's result equals ``run_analogy`` on that frame alone,
bit for bit on CPU.

With a ``TemporalConfig`` three things tie frame t to frame t − 1:

- **Motion** between A_{t−1} and A_t from the project's own correspondence code: a
  PatchMatch of the frames' VGG features (``motion_layer``) within a small radius of
  the identity, refined to sub-pixel precision on the frames' pixels
  (``pixel.refine_pyramid``), in both directions. A pixel's motion is *reliable* where the
  two directions agree (forward/backward consistency within ``consistency_px``) and its
  match does not leave the frame; elsewhere (occlusions, content entering the frame) the
  frame is left free.
- **Warm start**: the relu5_1 fields start from frame t − 1's carried by that motion,
  and the relu5_1 random search stays within ``warm_radius`` of that start, so the
  matches do not jump between frames; warm frames use ``warm_pm_iters`` PatchMatch and
  ``warm_lbfgs_iters`` L-BFGS iterations, as their start is already close.
- **Temporal term**: A'_t ← A'_t + w·R·(A_t + warp(A'_{t−1} − A_{t−1}) − A'_t), with
  w = ``weight``, R the reliability and warp() the previous frame carried by the motion:
  the change that frame t − 1 received is carried over, so the warp's blur and the
  motion's errors, which show in warp(A_{t−1}) as much as in warp(A'_{t−1}), cancel.

The first frame of a run (and any frame after a resume without fields) is solved cold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from ._check import check_shape
from .config import LAYERS, AnalogyConfig
from .image import pixel_grid, sample_bilinear
from .patchmatch import patchmatch
from .pipeline import _net_inputs, _run_pair, _solve, _Stages, limited_size, prepare, total_work
from .pixel import pyramid_work, refine_pyramid, resample_field
from .progress import InterruptFn, ProgressFn, ProgressTracker
from .vgg import VGG19

Size = tuple[int, int]

_TOP = LAYERS[0]
_POOLS = {"relu1_1": 0, "relu2_1": 1, "relu3_1": 2, "relu4_1": 3, "relu5_1": 4}


@dataclass(frozen=True)
class TemporalConfig:
    """Settings of the temporal coherence of a clip (``run_video``).

    Attributes:
        weight: blend weight w of the temporal term in [0, 1): A'_t is pulled toward the
            previous output carried by the motion by w where the motion is reliable (0:
            no temporal term; 0.7 halves the flicker of the bench clip).
        warm_start: start each frame's relu5_1 fields from the previous frame's, carried
            by the motion.
        warm_pm_iters: PatchMatch iterations per layer on a warm-started frame.
        warm_lbfgs_iters: L-BFGS iterations per deconvolution on a warm-started frame.
        warm_radius: relu5_1 random-search radius around the carried fields (that layer's
            pixels; 16 image pixels each at the network size).
        motion_layer: VGG19 layer whose features the motion PatchMatch compares.
        motion_radius: motion search radius around the identity, in ``motion_layer``
            pixels.
        motion_iters: PatchMatch iterations of the motion search per direction.
        consistency_px: largest forward/backward disagreement (px) of a reliable motion.
        compensate: blend the change A' − A instead of A' itself: A'_t is pulled toward
            A_t + warp(A'_{t−1} − A_{t−1}), so the warp's own blur and the motion's
            errors, which A shows as much as A', cancel (on the bench clip this turns a
            loss of up to 1.4 dB on the frames after the painted one into a gain on every
            frame); ``False`` pulls toward warp(A'_{t−1}).
    """

    weight: float = 0.7
    warm_start: bool = True
    warm_pm_iters: int = 2
    warm_lbfgs_iters: int = 5
    warm_radius: int = 2
    motion_layer: str = "relu3_1"
    motion_radius: int = 4
    motion_iters: int = 3
    consistency_px: float = 1.0
    compensate: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight < 1.0:
            raise ValueError(f"temporal weight must lie in [0, 1), got {self.weight}")
        if self.warm_pm_iters < 1 or self.warm_lbfgs_iters < 0 or self.warm_radius < 0:
            raise ValueError("warm_pm_iters must be >= 1, warm_lbfgs_iters and warm_radius >= 0")
        if self.motion_layer not in LAYERS:
            raise ValueError(f"unknown motion_layer {self.motion_layer!r}; use one of {LAYERS}")
        if self.motion_radius < 1 or self.motion_iters < 1 or self.consistency_px <= 0:
            raise ValueError("motion_radius and motion_iters must be >= 1 and consistency_px > 0")


@dataclass(frozen=True)
class Motion:
    """Motion between two consecutive frames, at the frames' own size.

    Attributes:
        backward: (1, H, W, 2) float32 (x, y) position in the previous frame of every
            pixel of the current frame.
        forward: (1, H, W, 2) float32 position in the current frame of every pixel of the
            previous frame.
        reliable: (1, H, W) bool on the current frame: the two directions agree and the
            match stays inside the previous frame.
    """

    backward: torch.Tensor
    forward: torch.Tensor
    reliable: torch.Tensor


@dataclass(frozen=True)
class PreviousFrame:
    """The frame before the first one of a run (e.g. the last one written before a resume).

    Attributes:
        a: (1, 3, H, W) RGB 0..1, that frame of A.
        ap: (1, 3, H, W) RGB 0..1, its A' as written.
    """

    a: torch.Tensor
    ap: torch.Tensor


@dataclass(frozen=True)
class FrameResult:
    """One frame of ``run_video``.

    Attributes:
        index: 0-based frame index in the clip.
        ap: (1, 3, H, W) A' in 0..1 (after the temporal term).
        b: (1, 3, H', W') B in 0..1.
        flow_ab: (1, H, W, 2) float32 (dx, dy) from the frame into B'.
        flow_ba: (1, H', W', 2) float32 (dx, dy) from B' into the frame.
        timings: seconds per stage (``"motion"`` and ``"temporal"`` included).
        warm: the frame was warm-started.
        reliable: fraction of the frame's pixels with reliable motion (``None`` without
            motion: temporal off, or the first frame).
    """

    index: int
    ap: torch.Tensor
    b: torch.Tensor
    flow_ab: torch.Tensor
    flow_ba: torch.Tensor
    timings: dict[str, float]
    warm: bool
    reliable: float | None


@dataclass(frozen=True)
class _Carry:
    a: torch.Tensor
    feat: torch.Tensor
    ap: torch.Tensor
    nnf_ab: torch.Tensor | None
    nnf_ba: torch.Tensor | None
    bp_top: Size | None


def consistent_motion(backward: torch.Tensor, forward: torch.Tensor, tol: float) -> torch.Tensor:
    """Where two motion fields agree: forward(backward(p)) lands within ``tol`` px of p.

    Args:
        backward: (N, H, W, 2) positions in the other frame (H', W') of this frame's pixels.
        forward: (N, H', W', 2) positions in this frame of the other frame's pixels.
        tol: largest disagreement in px.

    Returns:
        (N, H, W) bool; pixels whose match touches the other frame's border (clamped:
        content entering the view) are not reliable.

    Example:
        >>> ident = pixel_grid(4, 5).unsqueeze(0)
        >>> consistent_motion(ident, ident, 0.5)[0].int().tolist()[1]
        [0, 1, 1, 1, 0]
    """
    check_shape(backward, "N H W 2", "backward")
    check_shape(forward, "N H W 2", "forward")
    h, w = backward.shape[1:3]
    ho, wo = forward.shape[1:3]
    back = sample_bilinear(forward.permute(0, 3, 1, 2).contiguous(), backward).permute(0, 2, 3, 1)
    err = (back - pixel_grid(h, w, device=backward.device)).norm(dim=-1)
    x, y = backward[..., 0], backward[..., 1]
    inside = (x > 0) & (x < wo - 1) & (y > 0) & (y < ho - 1)
    reliable: torch.Tensor = (err <= tol) & inside
    return reliable


def motion_work(feature_hw: Size, frame_hw: Size, iters: int) -> int:
    """Progress units of ``estimate_motion``: PatchMatch and pixel refinement, both ways."""
    return 2 * (iters + pyramid_work(feature_hw, frame_hw))


def estimate_motion(
    prev: torch.Tensor,
    cur: torch.Tensor,
    feat_prev: torch.Tensor,
    feat_cur: torch.Tensor,
    *,
    radius: int = 4,
    iters: int = 3,
    patch_size: int = 3,
    tol: float = 1.0,
    seed: int = 0,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
) -> Motion:
    """Motion between two frames with the analogy's own correspondence code.

    A PatchMatch of the frames' features within ``radius`` of the identity, in each
    direction, refined to sub-pixel precision on the frames' pixels up to their size
    (``pixel.refine_pyramid``), then checked for forward/backward consistency.

    Args:
        prev: (1, 3, H, W) RGB 0..1, frame t − 1.
        cur: (1, 3, H, W) RGB 0..1, frame t.
        feat_prev: (1, C, h, w) features of ``prev`` at one VGG layer.
        feat_cur: (1, C, h, w) features of ``cur`` at the same layer.
        radius: search radius around the identity, in feature pixels.
        iters: PatchMatch iterations per direction.
        patch_size: odd patch width of the feature search.
        tol: consistency tolerance in px.
        seed: seed of the random search.
        check_interrupt: called before every propagation step and scored offset.
        progress: ``progress(done, total, stage)``, ``motion_work`` units, stage ``"motion"``.

    Returns:
        The ``Motion``.

    Raises:
        ValueError: frames or features of different shapes.
    """
    check_shape(prev, "1 3 H W", "previous frame")
    check_shape(cur, f"1 3 {prev.shape[2]} {prev.shape[3]}", "frame")
    check_shape(feat_cur, f"1 {feat_prev.shape[1]} {feat_prev.shape[2]} {feat_prev.shape[3]}", "frame features")
    fhw = (int(feat_prev.shape[-2]), int(feat_prev.shape[-1]))
    hw = (int(prev.shape[-2]), int(prev.shape[-1]))
    tracker = ProgressTracker(progress, motion_work(fhw, hw, iters), "motion")
    fields = []
    for direction, (src, tgt, fs, ft) in enumerate(((cur, prev, feat_cur, feat_prev), (prev, cur, feat_prev, feat_cur))):
        g = torch.Generator(device="cpu")
        g.manual_seed(seed * 100 + 90 + direction)
        nnf, _ = patchmatch([fs], [ft], patch_size=patch_size, pm_iters=iters, search_radius=radius,
                            generator=g, check_interrupt=check_interrupt, progress=tracker.share(iters))
        field, _ = refine_pyramid(src, tgt, nnf.float(), fhw, check_interrupt=check_interrupt,
                                  progress=tracker.share(pyramid_work(fhw, hw)))
        fields.append(field)
    tracker.finish()
    backward, forward = fields
    return Motion(backward=backward, forward=forward, reliable=consistent_motion(backward, forward, tol))


def carry_fields(
    nnf_ab: torch.Tensor | None, nnf_ba: torch.Tensor | None, motion: Motion, a_top: Size
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The previous frame's relu5_1 fields carried to the current frame by the motion.

    φ_a→b,t(p) = φ_a→b,t−1(p moved back to frame t − 1); φ_b→a,t(q) = φ_b→a,t−1(q) moved
    forward to frame t.

    Args:
        nnf_ab: (1, h, w, 2) int64 field of frame t − 1 into B' (or ``None``).
        nnf_ba: (1, h', w', 2) int64 field of B' into frame t − 1 (or ``None``).
        motion: the motion between the frames (at the frames' size).
        a_top: (h, w) of the frames' relu5_1 grid.

    Returns:
        ``(init_ab, init_ba)``, int64 fields for the current frame (``None`` where the
        input was ``None``).
    """
    hw = (int(motion.backward.shape[1]), int(motion.backward.shape[2]))
    init_ab = init_ba = None
    if nnf_ab is not None:
        back = torch.round(resample_field(motion.backward, a_top, hw, a_top)).long()
        init_ab = nnf_ab[0, back[0, ..., 1], back[0, ..., 0]].unsqueeze(0)
    if nnf_ba is not None:
        fwd = torch.round(resample_field(motion.forward, a_top, hw, a_top)).long()
        init_ba = fwd[0, nnf_ba[0, ..., 1], nnf_ba[0, ..., 0]].unsqueeze(0)
    return init_ab, init_ba


def temporal_blend(
    ap: torch.Tensor, ap_prev: torch.Tensor, motion: Motion, weight: float,
    frames: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """A'_t pulled toward the previous output warped by the motion, where it is reliable.

    Args:
        ap: (1, 3, H, W) this frame's A'.
        ap_prev: (1, 3, H, W) the previous frame's output.
        motion: the motion between the frames.
        weight: blend weight in [0, 1).
        frames: ``(a, a_prev)``, this frame and the previous one of A, to blend the
            change A' − A (``TemporalConfig.compensate``) instead of A'.

    Returns:
        (1, 3, H, W) in 0..1; exactly ``ap`` where the motion is not reliable.
    """
    warped = sample_bilinear(ap_prev.to(ap), motion.backward)
    if frames is not None:  # A_t + warp(A'_{t−1} − A_{t−1}): the warp's error on A cancels
        a, a_prev = frames
        warped = warped - sample_bilinear(a_prev.to(ap), motion.backward) + a.to(ap)
    w = weight * motion.reliable.unsqueeze(1).to(ap.dtype)
    return torch.where(w > 0, ap + w * (warped - ap), ap).clamp(0, 1)


def _feature_hw(frame_hw: Size, cfg: AnalogyConfig, layer: str) -> Size:
    lh, lw = limited_size(*frame_hw, min_side=cfg.min_side, max_side=cfg.max_side, max_area=cfg.max_area, name="A")
    nh, nw = max(16, round(lh * cfg.ratio)), max(16, round(lw * cfg.ratio))
    for _ in range(_POOLS[layer]):
        nh, nw = nh // 2, nw // 2
    return nh, nw


def _frames(frames: torch.Tensor | Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    if isinstance(frames, torch.Tensor):
        check_shape(frames, "N 3 H W", "frames")
        for i in range(frames.shape[0]):
            yield frames[i : i + 1]
    else:
        yield from frames


def _count(frames: torch.Tensor | Iterable[torch.Tensor], frame_count: int | None) -> int | None:
    if frame_count is not None:
        return frame_count
    if isinstance(frames, torch.Tensor):
        return int(frames.shape[0])
    try:
        return len(frames)  # type: ignore[arg-type]
    except TypeError:
        return None


def run_video(
    vgg: VGG19,
    frames: torch.Tensor | Iterable[torch.Tensor],
    bp: torch.Tensor | Iterable[torch.Tensor],
    cfg: AnalogyConfig,
    *,
    temporal: TemporalConfig | None = None,
    seed: int = 0,
    frame_count: int | None = None,
    first_index: int = 0,
    previous: PreviousFrame | None = None,
    progress: ProgressFn | None = None,
    check_interrupt: InterruptFn | None = None,
) -> Iterator[FrameResult]:
    """Paint a clip after B', one frame at a time; a generator of per-frame results.

    Frames are taken from ``frames`` only as they are needed and each frame's state is
    released before the next starts; hold on to the yielded results only as long as
    needed (write them out) and memory stays that of one frame.

    Args:
        vgg: loaded network (its device and dtype are used).
        frames: A as a (N, 3, H, W) tensor or an iterable of (1, 3, H, W) frames, RGB 0..1,
            all of one size.
        bp: B', (1, 3, H', W') for every frame, a (N, 3, H', W') tensor (one per frame) or
            an iterable of (1, 3, H', W') images, one per frame.
        cfg: settings of every frame (see ``AnalogyConfig``).
        temporal: temporal coherence (``TemporalConfig``); ``None`` solves every frame
            independently, each equal to ``run_analogy`` on it alone.
        seed: seed of every frame's random search.
        frame_count: number of frames, when ``frames`` has no length (needed for
            ``progress``).
        first_index: index of the first frame in the clip (a resumed run), for the
            results' ``index`` and the progress stage names.
        previous: the frame before the first one and its output (a resumed run): its
            motion to the first frame drives the temporal term (no warm start, as its
            fields are gone).
        progress: ``progress(done, total, stage)``; stages ``"frame k of N: <stage>"``
            with the stages of ``run_analogy`` plus ``"motion"`` and ``"temporal"``.
        check_interrupt: called between frames and inside every long step; raise from it
            to stop (the frames yielded so far stay valid).

    Yields:
        One ``FrameResult`` per frame, in order.

    Raises:
        ValueError/TypeError: bad frames (shape, mixed sizes, dtype), B' count not matching
            the frames, or no frames at all.
    """
    count = _count(frames, frame_count)
    if progress is not None and count is None:
        raise ValueError("frames have no length: pass frame_count to get progress")
    single_bp = isinstance(bp, torch.Tensor) and bp.shape[0] == 1
    if isinstance(bp, torch.Tensor):
        check_shape(bp, "N 3 H W", "B'")
        if not single_bp and count is not None and bp.shape[0] != count:
            raise ValueError(f"B' has {bp.shape[0]} images but the clip has {count} frames; pass one B' or one per frame")
        bp_iter: Iterator[torch.Tensor] | None = None
    else:
        bp_iter = iter(bp)
    layer = temporal.motion_layer if temporal is not None else _TOP
    warm_cfg = cfg if temporal is None else dataclasses.replace(
        cfg, pm_iters=temporal.warm_pm_iters, lbfgs_iters=temporal.warm_lbfgs_iters
    )
    size: Size | None = None
    carry: _Carry | None = None
    tracker: ProgressTracker | None = None
    n_done = 0
    for i, a in enumerate(_frames(frames)):
        index = first_index + i
        check_shape(a, "1 3 H W", f"frame {index + 1}")
        hw = (int(a.shape[-2]), int(a.shape[-1]))
        if size is None:
            size = hw
            units = total_work(cfg) + (0 if temporal is None else motion_work(_feature_hw(hw, cfg, layer), hw,
                                                                                temporal.motion_iters))
            if count is not None:
                tracker = ProgressTracker(progress, count * units)
        elif hw != size:
            raise ValueError(
                f"frame {index + 1} is {hw[1]}x{hw[0]} px but frame {first_index + 1} is {size[1]}x{size[0]} px; "
                "all frames of a clip must share one size"
            )
        if bp_iter is not None:
            try:
                bp_t = next(bp_iter)
            except StopIteration:
                raise ValueError(f"B' ran out at frame {index + 1}; pass one B' or one per frame") from None
        else:
            assert isinstance(bp, torch.Tensor)
            if not single_bp and i >= bp.shape[0]:
                raise ValueError(f"B' has {bp.shape[0]} images but the clip has more frames")
            bp_t = bp if single_bp else bp[i : i + 1]
        if check_interrupt is not None:
            check_interrupt()  # between two frames
        label = f"frame {index + 1} of {first_index + count}: " if count is not None else ""
        share = tracker.share(units, prefix=label) if tracker is not None else None
        if temporal is None:
            res = _run_pair(vgg, a, bp_t, cfg, seed, share or _silent, check_interrupt, None)
            yield FrameResult(index, res.ap, res.b, res.flow_ab, res.flow_ba, res.timings, False, None)
        else:
            if carry is None and previous is not None and i == 0:
                carry = _carry_from_previous(vgg, previous, cfg, layer, hw)
            result, carry = _temporal_frame(vgg, a, bp_t, cfg, warm_cfg, temporal, seed, carry, single_bp,
                                            share, check_interrupt, index)
            yield result
        n_done += 1
    if n_done == 0:
        raise ValueError("the clip has no frames")
    if tracker is not None:
        tracker.finish()


def _silent(done: int, total: int, stage: str) -> None:
    """A ``ProgressFn`` that reports nowhere."""


def _carry_from_previous(vgg: VGG19, previous: PreviousFrame, cfg: AnalogyConfig, layer: str, hw: Size) -> _Carry:
    param = next(vgg.parameters())
    a = previous.a.to(device=param.device, dtype=param.dtype)
    check_shape(a, f"1 3 {hw[0]} {hw[1]}", "previous frame")
    check_shape(previous.ap, f"1 3 {hw[0]} {hw[1]}", "previous A'")
    with torch.no_grad():
        feat = vgg.extract(_net_inputs(a, cfg, "A"))[layer]
    return _Carry(a=a, feat=feat, ap=previous.ap.to(a), nnf_ab=None, nnf_ba=None, bp_top=None)


def _temporal_frame(
    vgg: VGG19,
    a: torch.Tensor,
    bp: torch.Tensor,
    cfg: AnalogyConfig,
    warm_cfg: AnalogyConfig,
    temporal: TemporalConfig,
    seed: int,
    carry: _Carry | None,
    single_bp: bool,
    progress: ProgressFn | None,
    check_interrupt: InterruptFn | None,
    index: int,
) -> tuple[FrameResult, _Carry]:
    """One frame with motion, warm start and temporal term; returns what the next frame needs."""
    param = next(vgg.parameters())
    hw = (int(a.shape[-2]), int(a.shape[-1]))
    layer = temporal.motion_layer
    with_motion = carry is not None
    warm = with_motion and temporal.warm_start and carry is not None and carry.nnf_ab is not None
    frame_cfg = warm_cfg if warm else cfg
    m_units = motion_work(_feature_hw(hw, cfg, layer), hw, temporal.motion_iters) if with_motion else 0
    tracker = ProgressTracker(progress, total_work(frame_cfg) + m_units)
    stages = _Stages(tracker, param.device)
    with stages.stage("features"):
        state = prepare(vgg, a, bp, cfg)
        tracker.advance(1)
    motion = None
    top_init = None
    if carry is not None:
        with stages.stage("motion"):
            motion = estimate_motion(
                carry.a, state.a, carry.feat, state.feat_a[layer], radius=temporal.motion_radius,
                iters=temporal.motion_iters, tol=temporal.consistency_px, seed=seed,
                check_interrupt=check_interrupt, progress=tracker.share(m_units),
            )
        if warm:
            same_bp = carry.bp_top == state.size("b", _TOP)
            top_init = carry_fields(carry.nnf_ab if same_bp else None, carry.nnf_ba if single_bp else None,
                                    motion, state.size("a", _TOP))
    result = _solve(vgg, state, frame_cfg, seed, stages, check_interrupt, top_init=top_init,
                    top_radius=temporal.warm_radius if top_init is not None else None)
    ap = result.ap
    reliable = None
    if motion is not None and carry is not None:
        reliable = float(motion.reliable.float().mean())
        if temporal.weight > 0:
            with stages.stage("temporal"):
                ap = temporal_blend(ap, carry.ap, motion, temporal.weight,
                                    (result.state.a, carry.a) if temporal.compensate else None)
    tracker.finish()
    final = result.state
    new_carry = _Carry(
        a=final.a, feat=final.feat_a[layer], ap=ap, nnf_ab=final.nnf_ab[_TOP], nnf_ba=final.nnf_ba[_TOP],
        bp_top=final.size("b", _TOP),
    )
    frame = FrameResult(index, ap, result.b, result.flow_ab, result.flow_ba, stages.timings, warm, reliable)
    return frame, new_carry


__all__ = [
    "FrameResult", "Motion", "PreviousFrame", "TemporalConfig", "carry_fields", "consistent_motion",
    "estimate_motion", "motion_work", "run_video", "temporal_blend",
]
