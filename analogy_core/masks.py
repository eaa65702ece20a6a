"""Region control: masks that limit where the look is transferred, paired regions that
guide which part of A matches which part of B', and a mask of B' content never copied.

Three kinds of region data, all optional, kept together in a ``Regions`` record on the
``AnalogyState`` (they are data, not settings, so they stay out of ``AnalogyConfig``):

- **Limit** (``limit_a``, ``limit_bp``): weights in 0..1 on A (and on B' for B). A' takes
  B''s look only where the weight is above zero; it is A bit for bit elsewhere. With
  ``feather`` = 0 the weights blend as they are (a soft mask blends softly); with
  ``feather`` > 0 the mask is cut at 0.5 and the weight ramps from 0 at its edge to 1 at
  ``feather`` px inside it, so the band lies inside the mask. The limit acts only in the
  final composite (``apply_limits``): the search, and so A' inside the mask, is the same
  as without it.
- **Guide** (``Guide``: K paired region masks per side): region k of A may only match
  region k of B', in both directions, at every layer. Pixels in no pair's mask form the
  region "rest", which matches the rest of the other side; where pair masks overlap the
  later pair wins. The regions are resized to each layer's grid with nearest sampling.
  Fallback: a region that has no pixel on the other side at some layer (a small region
  vanishing at relu5_1, or a "rest" present on one side only) leaves its pixels free at
  that layer, matching anywhere (but never an ignored pixel).
- **Ignore** (``ignore_bp``): B' pixels with weight >= 0.5 are never a match target of
  A→B' and never vote into A'. At each layer a pixel is ignored when any ignored image
  pixel (grown by one pixel) falls in its footprint. B''s own pixels inside the region
  still get a field B'→A (B keeps a complete image there).

In the search a candidate that breaks these rules is never accepted (it scores below any
allowed one); the starting fields are moved to the nearest allowed target, and the
global random search at relu5_1 draws its candidates among the allowed targets. The final
fields are projected onto allowed targets as well, so the rules hold at pixel level.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._check import check_finite

logger = logging.getLogger(__name__)

Size = tuple[int, int]

MAX_PAIRS = 8
"""Most region pairs a guide made of masks can hold."""
MAX_COLOURS = 16
"""Most distinct colours a label image may hold (more means antialiasing or JPEG noise)."""
MAX_FEATHER = 256
"""Widest feather band in px."""

FREE = -1
"""Source code of a pixel that may match any target that is not ignored."""
IGNORED = -2
"""Target code of a pixel no source may match."""


@dataclass(frozen=True)
class Guide:
    """Paired regions: region k of A may only match region k of B'.

    Attributes:
        regions_a: (N or 1, K, H, W) float 0..1, one mask per region on A (>= 0.5 inside).
        regions_bp: (N or 1, K, H', W') likewise on B', the same K and order.
        names: what to call each region in error messages (e.g. ``"pair 2"``).
    """

    regions_a: torch.Tensor
    regions_bp: torch.Tensor
    names: tuple[str, ...]


@dataclass(frozen=True)
class SearchConstraint:
    """Which targets each source pixel may match, at one grid size.

    Attributes:
        source: (N, Hs, Ws) int64 code per source pixel: a region label, or ``FREE``.
        target: (N, Ht, Wt) int64 code per target pixel: a region label, or ``IGNORED``.

    A source pixel p may match target q iff ``target[q] != IGNORED`` and
    (``source[p] == FREE`` or ``source[p] == target[q]``).
    """

    source: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class Regions:
    """Region data of one analogy (see the module docstring for the rules).

    Every tensor is optional. Masks are float 0..1 of shape (N or 1, 1, H, W) at any size
    (``prepare`` resizes them to the images and broadcasts the batch).

    Attributes:
        limit_a: where A' takes B''s look (1) or stays A (0).
        limit_bp: where B takes A's look or stays B'.
        feather: width in px of the limit's soft edge (0: use the masks' own values).
        ignore_bp: B' content never matched or copied (>= 0.5).
        guide: paired regions.
    """

    limit_a: torch.Tensor | None = None
    limit_bp: torch.Tensor | None = None
    feather: int = 0
    ignore_bp: torch.Tensor | None = None
    guide: Guide | None = None

    @property
    def constrains_search(self) -> bool:
        """Whether the fields are constrained (a guide or an ignore mask is set)."""
        return self.guide is not None or self.ignore_bp is not None

    @property
    def empty(self) -> bool:
        """Whether no region data is set at all."""
        return self.limit_a is None and self.limit_bp is None and not self.constrains_search


def regions_item(regions: Regions | None, index: int) -> Regions | None:
    """The region data of one pair of a batch: item ``index`` of every batched mask
    (a mask of batch 1 serves every pair as it is).

    Example:
        >>> r = Regions(limit_a=torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)]), feather=2)
        >>> item = regions_item(r, 1)
        >>> tuple(item.limit_a.shape), float(item.limit_a.mean()), item.feather
        ((1, 1, 4, 4), 1.0, 2)
    """
    if regions is None:
        return None

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t if t.dim() < 3 or t.shape[0] == 1 else t[index : index + 1]

    def maybe(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else pick(t)

    guide = regions.guide
    if guide is not None:
        guide = dataclasses.replace(guide, regions_a=pick(guide.regions_a), regions_bp=pick(guide.regions_bp))
    return dataclasses.replace(regions, limit_a=maybe(regions.limit_a), limit_bp=maybe(regions.limit_bp),
                               ignore_bp=maybe(regions.ignore_bp), guide=guide)


def _as_masks(mask: torch.Tensor, name: str) -> torch.Tensor:
    """[H, W], [N, H, W] or [N, C, H, W] → float (N, C, H, W)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a tensor (a mask), got {type(mask).__name__}")
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() == 3:
        mask = mask[:, None]
    elif mask.dim() != 4:
        raise ValueError(f"{name} must be a mask of shape [H, W], [N, H, W] or [N, 1, H, W], got {tuple(mask.shape)}")
    if mask.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(mask.shape)}")
    mask = mask.float() if not mask.is_floating_point() else mask
    check_finite(mask, name)
    return mask


def guide_from_masks(pairs_a: Sequence[torch.Tensor | None], pairs_bp: Sequence[torch.Tensor | None]) -> Guide:
    """A guide from paired masks: ``pairs_a[k]`` on A goes with ``pairs_bp[k]`` on B'.

    Args:
        pairs_a: up to ``MAX_PAIRS`` masks on A, [H, W], [N, H, W] or [N, 1, H, W], 0..1
            (>= 0.5 inside); ``None`` entries (unused pairs) are skipped.
        pairs_bp: as many masks on B', at any size.

    Returns:
        The guide; the masks of one side are resized (bilinear) to its first mask's size.

    Raises:
        ValueError: no pair, more than ``MAX_PAIRS``, a pair with one mask only, an
            all-black mask, or batch sizes that disagree.
    """
    if len(pairs_a) != len(pairs_bp):
        raise ValueError(f"{len(pairs_a)} masks on A but {len(pairs_bp)} on B'; give one B' mask per A mask")
    used, names = [], []
    for k, (ma, mb) in enumerate(zip(pairs_a, pairs_bp), start=1):
        if ma is None and mb is None:
            continue
        if ma is None or mb is None:
            has, lacks = ("A", "B'") if ma is not None else ("B'", "A")
            raise ValueError(f"pair {k} has a mask on {has} but none on {lacks}; connect both masks of a pair")
        used.append((_as_masks(ma, f"pair {k} mask on A"), _as_masks(mb, f"pair {k} mask on B'")))
        names.append(f"pair {k}")
    if not used:
        raise ValueError("a guide needs at least one pair of masks (one on A, one on B')")
    if len(used) > MAX_PAIRS:
        raise ValueError(f"{len(used)} region pairs given; at most {MAX_PAIRS} are supported")
    sides = []
    for side in (0, 1):
        masks = [p[side] for p in used]
        hw = tuple(masks[0].shape[-2:])
        batch = {int(m.shape[0]) for m in masks} - {1}
        if len(batch) > 1:
            raise ValueError(f"the pair masks on {'A' if side == 0 else 'B'} have batch sizes {sorted(batch)}; "
                             "use one batch size (or 1)")
        n = batch.pop() if batch else 1
        stack = [F.interpolate(m[:, :1], size=hw, mode="bilinear", align_corners=False) if m.shape[-2:] != hw
                 else m[:, :1] for m in masks]
        sides.append(torch.cat([m.expand(n, -1, -1, -1) for m in stack], dim=1))
    for k, name in enumerate(names):
        for side, label in ((0, "A"), (1, "B'")):
            if not bool((sides[side][:, k] >= 0.5).any()):
                raise ValueError(f"{name}'s mask on {label} is all black (no pixel >= 0.5); paint the region white, "
                                 "or leave the pair out")
    return Guide(sides[0], sides[1], tuple(names))


def guide_from_label_images(labels_a: torch.Tensor, labels_bp: torch.Tensor) -> Guide:
    """A guide from two colour label images: each colour is one region, and the same
    colour on both images makes a pair.

    Args:
        labels_a: (N or 1, C, H, W) float 0..1 RGB (or grey) label image of A; colours
            are compared at 8 bits.
        labels_bp: likewise for B', at any size.

    Returns:
        The guide, one region per colour, named by its hex colour.

    Raises:
        ValueError: more than ``MAX_COLOURS`` colours (antialiased or JPEG labels), or a
            colour present on one image only.
    """
    codes = []
    for t, name in ((labels_a, "label image of A"), (labels_bp, "label image of B'")):
        t = _as_masks(t, name)
        q = torch.round(t.clamp(0, 1) * 255).long()
        if q.shape[1] == 1:
            q = q.expand(-1, 3, -1, -1)
        codes.append(q[:, 0] * 65536 + q[:, 1] * 256 + q[:, 2])
    colours = [set(torch.unique(c).tolist()) for c in codes]
    for side, other, label, other_label in ((0, 1, "A", "B'"), (1, 0, "B'", "A")):
        if len(colours[side]) > MAX_COLOURS:
            raise ValueError(f"the label image of {label} has {len(colours[side])} colours; at most {MAX_COLOURS} "
                             "regions are supported (save labels as PNG without antialiasing, not JPEG)")
        only = sorted(colours[side] - colours[other])
        if only:
            hexes = ", ".join(f"#{c:06x}" for c in only[:4])
            raise ValueError(f"colour(s) {hexes} of the label image of {label} are missing from the label image of "
                             f"{other_label}; every region needs the same colour on both label images")
    palette = sorted(colours[0])
    regions_a = torch.stack([(codes[0] == c).float() for c in palette], dim=1)
    regions_bp = torch.stack([(codes[1] == c).float() for c in palette], dim=1)
    return Guide(regions_a, regions_bp, tuple(f"colour #{c:06x}" for c in palette))


def _batch_to(mask: torch.Tensor, n: int, name: str) -> torch.Tensor:
    if mask.shape[0] == n:
        return mask
    if mask.shape[0] == 1:
        return mask.expand(n, *mask.shape[1:])
    raise ValueError(f"{name} has batch {mask.shape[0]} but the images have batch {n}; give one mask per image "
                     "or a single mask for all")


def _resized(mask: torch.Tensor, size: Size, device: torch.device) -> torch.Tensor:
    mask = mask.to(device=device, dtype=torch.float32)
    if tuple(mask.shape[-2:]) != tuple(size):
        mask = F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
    return mask.clamp(0, 1)


def _labels(regions: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) region masks → (N, H, W) int64 labels: k + 1 for the last region k
    holding the pixel (>= 0.5), 0 for the rest."""
    n, k, h, w = regions.shape
    labels = torch.zeros(n, h, w, dtype=torch.long, device=regions.device)
    for i in range(k):
        labels = torch.where(regions[:, i] >= 0.5, torch.full_like(labels, i + 1), labels)
    return labels


def check_regions(regions: Regions, a: torch.Tensor, bp: torch.Tensor) -> Regions:
    """Validate region data against the images and bring it to their sizes and batch.

    Args:
        regions: the caller's region data, masks at any size.
        a: (N, 3, H, W) A (after batch broadcasting).
        bp: (N, 3, H', W') B'.

    Returns:
        Regions whose masks are (N, 1, H, W) float32 on the images' device, at A's (limit
        A) or B''s size (limit B', ignore), and whose guide holds (N, K, ·, ·) masks at
        the images' sizes.

    Raises:
        ValueError: a wrong batch size, an all-black limit mask, an all-white ignore mask,
            a feather width out of range, or a guide region that vanishes at the image's
            size; the message says what to change.
    """
    n, dev = int(a.shape[0]), a.device
    a_hw, b_hw = (int(a.shape[-2]), int(a.shape[-1])), (int(bp.shape[-2]), int(bp.shape[-1]))
    if not 0 <= regions.feather <= MAX_FEATHER:
        raise ValueError(f"feather must lie in [0, {MAX_FEATHER}] px, got {regions.feather}")
    out: dict[str, object] = {}
    for key, hw, label in (("limit_a", a_hw, "mask_a (limit on A)"), ("limit_bp", b_hw, "mask_bp (limit on B')"),
                           ("ignore_bp", b_hw, "ignore_bp (ignore mask on B')")):
        mask = getattr(regions, key)
        if mask is None:
            continue
        mask = _batch_to(_as_masks(mask, label)[:, :1], n, label)
        mask = _resized(mask, hw, dev)
        if key == "ignore_bp":
            if bool((mask >= 0.5).flatten(1).all(dim=1).any()):
                raise ValueError(f"{label} covers all of B' (every pixel >= 0.5): nothing could be matched; paint "
                                 "only the content to leave out white")
        elif not bool((mask > 0).flatten(1).any(dim=1).all()):
            raise ValueError(f"{label} is all black: nothing would be transferred; paint the region to transfer "
                             "white, or leave the mask out")
        out[key] = mask
    if regions.guide is not None:
        g = regions.guide
        ra = _resized(_batch_to(g.regions_a, n, "the guide's masks on A"), a_hw, dev)
        rb = _resized(_batch_to(g.regions_bp, n, "the guide's masks on B'"), b_hw, dev)
        if ra.shape[1] != rb.shape[1]:
            raise ValueError(f"the guide has {ra.shape[1]} regions on A but {rb.shape[1]} on B'")
        la, lb = _labels(ra), _labels(rb)
        for i, name in enumerate(g.names):
            for lab, side in ((la, "A"), (lb, "B'")):
                if not bool((lab == i + 1).flatten(1).any(dim=1).all()):
                    raise ValueError(f"{name}'s region on {side} has no pixel left at the image's size (too small, "
                                     "or covered by a later pair); enlarge it or leave the pair out")
        out["guide"] = Guide(ra, rb, g.names)
    return dataclasses.replace(regions, **out)  # type: ignore[arg-type]


def feather_weights(mask: torch.Tensor, feather: int) -> torch.Tensor:
    """Blend weights of a limit mask.

    Args:
        mask: (N, 1, H, W) float 0..1.
        feather: 0 returns ``mask`` itself; otherwise the mask is cut at 0.5 and the
            weight is (d / feather) clipped to 1, d the chessboard distance in px from the
            pixel to the nearest pixel outside the mask plus one (the image border does
            not count as outside).

    Returns:
        (N, 1, H, W) weights in 0..1; exactly 0 outside the mask (< 0.5) and exactly 1 at
        ``feather`` px or more inside it.

    Example:
        >>> m = torch.zeros(1, 1, 1, 7); m[..., 1:] = 1
        >>> feather_weights(m, 3).flatten().tolist()
        [0.0, 0.3333333432674408, 0.6666666865348816, 1.0, 1.0, 1.0, 1.0]
    """
    if feather <= 0:
        return mask.clamp(0, 1)
    inside = (mask >= 0.5).to(torch.float32)
    count = torch.zeros_like(inside)
    eroded = inside
    for _ in range(feather):
        count += eroded
        eroded = -F.max_pool2d(-eroded, 3, stride=1, padding=1)
    return count / float(feather)


def blend_limit(original: torch.Tensor, result: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``result`` where the weight is 1, ``original`` where it is 0 (both exactly), and
    ``original + w · (result − original)`` between.

    Args:
        original: (N, C, H, W) the image the analogy started from (A, or B' for B).
        result: (N, C, H, W) the analogy's output at the same size.
        weights: (N, 1, H, W) in 0..1 (``feather_weights``).

    Returns:
        (N, C, H, W) blend.
    """
    mixed = original + weights * (result - original)
    out = torch.where(weights >= 1, result, mixed)
    return torch.where(weights <= 0, original, out)


def _nearest_labels(labels: torch.Tensor, size: Size) -> torch.Tensor:
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")[:, 0].long()


def _ignored_at(ignore: torch.Tensor, size: Size) -> torch.Tensor:
    """(N, 1, H, W) ignore weights → (N, h, w) bool: any ignored pixel, grown by one, in a
    cell's footprint."""
    hard = (ignore >= 0.5).float()
    grown = F.max_pool2d(hard, 3, stride=1, padding=1)
    if tuple(size) == tuple(ignore.shape[-2:]):
        return grown[:, 0] > 0
    if size[0] <= ignore.shape[-2] and size[1] <= ignore.shape[-1]:
        return F.adaptive_max_pool2d(grown, size)[:, 0] > 0
    return F.interpolate(grown, size=size, mode="bilinear", align_corners=False)[:, 0] > 0


def search_constraint(
    regions: Regions | None, direction: str, source_hw: Size, target_hw: Size, *, exact: bool = False
) -> SearchConstraint | None:
    """The constraint of the fields A→B' (``direction="ab"``) or B'→A (``"ba"``) on grids
    of the given sizes.

    Args:
        regions: region data from ``check_regions`` (``None``: no constraint).
        direction: ``"ab"`` or ``"ba"``.
        source_hw: (H, W) of the source grid.
        target_hw: (H, W) of the target grid.
        exact: at the images' own sizes, the ignored pixels are the mask's (>= 0.5), not
            grown; coarser grids use the grown footprint.

    Returns:
        The constraint, or ``None`` when nothing constrains this direction.
    """
    if regions is None or not regions.constrains_search:
        return None
    ignore = regions.ignore_bp if direction == "ab" else None
    if regions.guide is None and ignore is None:
        return None
    g = regions.guide
    ref = regions.ignore_bp if regions.ignore_bp is not None else g.regions_a  # type: ignore[union-attr]
    n, dev = int(ref.shape[0]), ref.device
    if g is not None:
        la, lb = _labels(g.regions_a), _labels(g.regions_bp)
        src_l, tgt_l = (la, lb) if direction == "ab" else (lb, la)
        source = _nearest_labels(src_l, source_hw)
        target = _nearest_labels(tgt_l, target_hw)
    else:
        source = torch.full((n, *source_hw), FREE, dtype=torch.long, device=dev)
        target = torch.zeros((n, *target_hw), dtype=torch.long, device=dev)
    if ignore is not None:
        ignored = (ignore[:, 0] >= 0.5) if exact and tuple(ignore.shape[-2:]) == tuple(target_hw) else (
            _ignored_at(ignore, target_hw))
        for i in range(n):
            if bool(ignored[i].all()):
                logger.warning("the ignore mask covers every pixel of B' at a %dx%d grid; it is dropped there",
                               target_hw[1], target_hw[0])
                ignored[i] = False
        target = torch.where(ignored, torch.full_like(target, IGNORED), target)
    if g is not None:
        # a region with no allowed target on this grid leaves its source pixels free
        for i in range(n):
            present = set(torch.unique(target[i]).tolist()) - {IGNORED}
            for code in torch.unique(source[i]).tolist():
                if code not in present:
                    source[i] = torch.where(source[i] == code, torch.full_like(source[i], FREE), source[i])
    return SearchConstraint(source, target)


def forbidden(constraint: SearchConstraint, field: torch.Tensor) -> torch.Tensor:
    """Where a field's target (rounded to the nearest pixel) breaks the constraint.

    Args:
        constraint: codes on the field's source grid and target grid.
        field: (N, Hs, Ws, 2) int64 or continuous (x, y) targets inside the target grid.

    Returns:
        (N, Hs, Ws) bool.
    """
    n, ht, wt = constraint.target.shape
    t = torch.round(field.double()).long() if field.is_floating_point() else field
    x, y = t[..., 0].clamp(0, wt - 1), t[..., 1].clamp(0, ht - 1)
    code = constraint.target.reshape(n, -1).gather(1, (y * wt + x).reshape(n, -1)).view(x.shape)
    src = constraint.source
    return (code == IGNORED) | ((src != FREE) & (src != code))


def allowed_targets(src_code: int, target_codes: torch.Tensor) -> torch.Tensor:
    """(Ht, Wt) target codes → (Ht, Wt) bool, where a source of code ``src_code`` may go."""
    if src_code == FREE:
        return target_codes != IGNORED
    return target_codes == src_code


def nearest_allowed(
    points: torch.Tensor, source_codes: torch.Tensor, target_codes: torch.Tensor
) -> torch.Tensor:
    """The allowed target pixel nearest to each point.

    Args:
        points: (M, 2) float (x, y) positions on the target grid.
        source_codes: (M,) int64 code of each point's source pixel.
        target_codes: (Ht, Wt) int64 codes of the target grid.

    Returns:
        (M, 2) float (x, y) of the nearest allowed pixel centre (the point itself when
        no pixel is allowed for its code).
    """
    out = points.clone()
    wt = int(target_codes.shape[1])
    for code in torch.unique(source_codes).tolist():
        rows = (source_codes == code).nonzero().squeeze(1)
        cand = allowed_targets(int(code), target_codes).reshape(-1).nonzero().squeeze(1)
        if cand.numel() == 0:
            continue
        cxy = torch.stack(((cand % wt).to(points.dtype), (cand // wt).to(points.dtype)), dim=1)
        chunk = max(1, (1 << 22) // max(1, cxy.shape[0]))
        for i in range(0, rows.numel(), chunk):
            r = rows[i : i + chunk]
            d = torch.cdist(points[r], cxy)
            out[r] = cxy[d.argmin(dim=1)]
    return out


def constrain_field(
    constraint: SearchConstraint | None, field: torch.Tensor, fallback: torch.Tensor | None = None
) -> torch.Tensor:
    """Move targets that break ``constraint`` to allowed ones.

    A broken target takes ``fallback``'s target where that one is allowed, else the
    nearest allowed pixel.

    Args:
        constraint: codes on the field's grids (``None`` returns ``field``).
        field: (N, Hs, Ws, 2) int64 or continuous (x, y) targets.
        fallback: optional field of the same shape (e.g. the match before a refinement).

    Returns:
        A field of ``field``'s shape and dtype whose targets are all allowed where any
        target is allowed for their source.
    """
    if constraint is None:
        return field
    bad = forbidden(constraint, field)
    if not bool(bad.any()):
        return field
    out = field.clone()
    if fallback is not None:
        ok = bad & ~forbidden(constraint, fallback)
        out[ok] = fallback[ok].to(out.dtype)
        bad = bad & ~ok
    for i in range(field.shape[0]):
        idx = bad[i].nonzero()
        if idx.numel() == 0:
            continue
        pts = out[i][bad[i]].double()
        fixed = nearest_allowed(pts, constraint.source[i][bad[i]], constraint.target[i])
        out[i][bad[i]] = fixed.to(out.dtype) if out.is_floating_point() else torch.round(fixed).long()
    return out
