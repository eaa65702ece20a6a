"""Vectorised PatchMatch between two pairs of feature maps (CPU and CUDA alike).

The patch distance is the one of the authors' release: the negated mean, over the patch
pixels that fall inside both maps, of the summed dot products of the L2-normalised
features of both pairs. Maximising that similarity equals minimising the paper's
Σ‖F̄_A − F̄_B‖² + ‖F̄_A' − F̄_B'‖² for unit features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ._check import check_shape
from .masks import FREE, IGNORED, SearchConstraint, allowed_targets, nearest_allowed
from .nnf import _resample_coords, clamp_nnf
from .progress import InterruptFn, ProgressFn, ProgressTracker

_EPS = 1e-12
_PENALTY = 16.0
"""Subtracted from the similarity of a match a ``SearchConstraint`` forbids: similarities
lie in [-2, 2], so any allowed match scores higher."""


def normalise_features(f: torch.Tensor) -> torch.Tensor:
    """Per-position L2 normalisation over channels; all-zero positions stay zero.

    Args:
        f: (N, C, H, W) features.

    Returns:
        (N, C, H, W) features of unit norm (or zero) at each position.
    """
    norm = f.norm(dim=1, keepdim=True)
    out: torch.Tensor = f / norm.clamp_min(_EPS)
    return out


def random_search_radii(radius: int) -> list[int]:
    """Radii of one random-search pass: ``radius`` halved down to 1 (``[]`` for 0)."""
    radii = []
    r = radius
    while r >= 1:
        radii.append(r)
        r //= 2
    return radii


def _padded_rows(maps: Sequence[torch.Tensor], r: int) -> torch.Tensor:
    """((H + 2r)·(W + 2r), ΣC) rows of the normalised maps (C_i, H, W), zero-padded by r."""
    h, w = maps[0].shape[-2:]
    out = maps[0].new_zeros(h + 2 * r, w + 2 * r, sum(f.shape[0] for f in maps))
    c0 = 0
    for f in maps:
        out[r : r + h, r : r + w, c0 : c0 + f.shape[0]] = normalise_features(f[None])[0].permute(1, 2, 0)
        c0 += f.shape[0]
    return out.view(-1, out.shape[-1])


@dataclass(frozen=True)
class _Workers:
    """Threads that score chunks side by side: the pool and its size."""

    pool: ThreadPoolExecutor
    count: int


@contextmanager
def _chunk_workers(device: torch.device) -> Iterator[_Workers | None]:
    """Threads that score a CPU search's chunks, with torch's own threads at 1 meanwhile.

    A chunk's operations are small, and as parallel torch operations each would end in a
    barrier at which torch's threads wait for one another; on a CPU that another process
    also uses, a thread then waits for one that is not running, and a search slowed
    several times over (``python -m bench.contention``). Instead torch runs every operation
    of the search on one thread, and as many Python threads as torch had score the chunks
    side by side (torch releases the interpreter lock inside an operation). The thread
    count is restored afterwards. It is a process-wide setting: torch work that another
    thread does during the search runs on one thread too. On CUDA, or with one thread,
    nothing changes.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2:
        yield None
        return
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="patchmatch") as pool:
            yield _Workers(pool, threads)
    finally:
        torch.set_num_threads(threads)


class _PatchScorer:
    """Scores candidate matches of source pixels; one source/target image pair."""

    # Rows per chunk: on CPU the gathered rows of one chunk stay in cache (about 1 MiB per
    # side); on CUDA one chunk is a large kernel.
    _CHUNK_BYTES = {"cpu": 1 << 20, "cuda": 256 << 20}

    def __init__(
        self,
        src: Sequence[torch.Tensor],
        tgt: Sequence[torch.Tensor],
        patch_size: int,
        workers: _Workers | None = None,
    ) -> None:
        # src, tgt: maps of shape (C_i, H, W) for one batch item, normalised and stacked
        # into zero-padded (pixel, channel) rows here, one map at a time (large images);
        # workers: threads that score the chunks (``_chunk_workers``), or None
        self.workers = workers
        self.r = r = patch_size // 2
        self.hs, self.ws = src[0].shape[-2:]
        self.ht, self.wt = tgt[0].shape[-2:]
        self.ws2, self.wt2 = self.ws + 2 * r, self.wt + 2 * r
        self.src = _padded_rows(src, r)
        self.tgt = _padded_rows(tgt, r)
        offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
        self.offsets = [(dy * self.ws2 + dx, dy * self.wt2 + dx) for dy, dx in offsets]
        row_bytes = self.src.shape[1] * self.src.element_size()
        self.chunk = max(256, self._CHUNK_BYTES.get(self.src.device.type, 1 << 20) // row_bytes)

    def score(self, sy: torch.Tensor, sx: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
        """Mean similarity of patches at source (sy, sx) and target (ty, tx), each (M,).

        Zero padding outside the maps contributes nothing to the sum; the mean is over the
        patch pixels inside both maps.
        """
        r = self.r
        base_s = (sy + r) * self.ws2 + (sx + r)
        base_t = (ty + r) * self.wt2 + (tx + r)
        m = sy.numel()
        acc = torch.zeros(m, device=self.src.device, dtype=self.src.dtype)
        starts = range(0, m, self.chunk)
        # inference and grad mode are per thread: a worker takes the caller's (ComfyUI runs
        # nodes in inference mode, whose tensors may only be updated in that mode)
        inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

        def chunks(share: range) -> None:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                # one patch offset at a time: two row gathers and a row-wise dot product, far
                # faster than gathering whole patches, as the rows stay in cache; into buffers
                # made once per thread, and the dot product as a product and a row sum (the
                # same sums as torch.linalg.vecdot's, which on CPU took twice as long)
                size = min(self.chunk, m)  # no larger than the call needs (CUDA's chunks are large)
                rows = torch.empty(2, size, self.src.shape[1], device=acc.device, dtype=acc.dtype)
                index = torch.empty(2, size, device=acc.device, dtype=base_s.dtype)
                dot = torch.empty(size, device=acc.device, dtype=acc.dtype)
                for i in share:
                    bs, bt, out = base_s[i : i + self.chunk], base_t[i : i + self.chunk], acc[i : i + self.chunk]
                    k = bs.numel()
                    a, b, ia, ib, d = rows[0, :k], rows[1, :k], index[0, :k], index[1, :k], dot[:k]
                    for off_s, off_t in self.offsets:
                        torch.index_select(self.src, 0, torch.add(bs, off_s, out=ia), out=a)
                        torch.index_select(self.tgt, 0, torch.add(bt, off_t, out=ib), out=b)
                        out += torch.sum(a.mul_(b), 1, out=d)

        if self.workers is None or len(starts) < 2:
            chunks(starts)
        else:
            # every thread writes its own chunks of acc: the sums are the same as in one thread
            n = self.workers.count
            for done in [self.workers.pool.submit(chunks, starts[k::n]) for k in range(n)]:
                done.result()
        lo_y = torch.maximum(torch.maximum(-sy, -ty), torch.full_like(sy, -r))
        hi_y = torch.minimum(torch.minimum(self.hs - 1 - sy, self.ht - 1 - ty), torch.full_like(sy, r))
        lo_x = torch.maximum(torch.maximum(-sx, -tx), torch.full_like(sx, -r))
        hi_x = torch.minimum(torch.minimum(self.ws - 1 - sx, self.wt - 1 - tx), torch.full_like(sx, r))
        count = ((hi_y - lo_y + 1) * (hi_x - lo_x + 1)).to(acc.dtype)
        return acc / count


def _check_maps(feats: Sequence[torch.Tensor], name: str) -> tuple[int, ...]:
    for i, f in enumerate(feats):
        check_shape(f, "N C H W", f"{name}[{i}]")
        if f.numel() == 0:
            raise ValueError(f"{name}[{i}] is empty, shape {tuple(f.shape)}")
    if len({tuple(f.shape) for f in feats}) != 1:
        raise ValueError(f"{name} maps must share one shape, got {[tuple(f.shape) for f in feats]}")
    n, c, h, w = feats[0].shape
    return n, c * len(feats), h, w


def patchmatch(
    source: Sequence[torch.Tensor],
    target: Sequence[torch.Tensor],
    *,
    patch_size: int,
    pm_iters: int,
    search_radius: int | None,
    init: torch.Tensor | None = None,
    pm_jumps: Sequence[int] = (8, 4, 2, 1),
    generator: torch.Generator | None = None,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
    constraint: SearchConstraint | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-neighbour field from ``source`` patches to ``target`` patches.

    For φ_a→b pass ``source=(F_A, F_A')`` and ``target=(F_B, F_B')``; for φ_b→a pass
    ``source=(F_B', F_B)`` and ``target=(F_A', F_A)``. Each map is L2-normalised per
    position; the similarity of two patches is the mean over their overlapping pixels of
    the summed dot products.

    Each iteration propagates good matches by jump flooding (steps ``pm_jumps`` in four
    directions, accepted only where strictly better) and then samples random candidates
    around the current match at ``search_radius`` halved down to 1, kept within
    ``search_radius`` of ``init`` (the whole target when ``search_radius`` is ``None``).

    Args:
        source: maps of shape (N, C, Hs, Ws), all the same shape.
        target: as many maps of shape (N, C, Ht, Wt).
        patch_size: odd patch width.
        pm_iters: PatchMatch iterations.
        search_radius: random-search radius around ``init`` in pixels, or ``None`` for
            global.
        init: (N, Hs, Ws, 2) int64 initial field; default the scaled identity.
        pm_jumps: propagation steps.
        generator: CPU generator for the random search (deterministic for a seed).
        check_interrupt: called before every propagation step; raise from it to stop.
        progress: ``progress(done, total, stage)``, one unit per iteration and batch
            item (``total = N · pm_iters``), stage ``"patchmatch"``.
        constraint: which targets each source pixel may match (``analogy_core.masks``),
            codes of shape (N, Hs, Ws) and (N, Ht, Wt). Starting targets that break it
            move to the nearest allowed pixel, candidates that break it are never
            accepted, and the global random search draws among allowed targets.

    Returns:
        ``(nnf, score)``: (N, Hs, Ws, 2) int64 absolute target (x, y) and (N, Hs, Ws)
        float similarity of each match (higher is better, at most 2 for two pairs).

    Raises:
        ValueError: bad shapes, patch size or radius.
    """
    src_shape = _check_maps(source, "source")
    tgt_shape = _check_maps(target, "target")
    if len(source) != len(target) or src_shape[:2] != tgt_shape[:2]:
        raise ValueError(f"source and target need the same batch and channels, got {src_shape} and {tgt_shape}")
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd and >= 1, got {patch_size}")
    if search_radius is not None and search_radius < 0:
        raise ValueError(f"search_radius must be >= 0 or None, got {search_radius}")
    n, _, hs, ws = src_shape
    ht, wt = tgt_shape[-2:]
    dev = source[0].device
    if init is None:
        from .nnf import identity_nnf

        ident = identity_nnf(n, hs, ws, dev)
        init = clamp_nnf(torch.round(_resample_coords(ident, (hs, ws), (hs, ws), (ht, wt))).long(), (ht, wt))
    else:
        check_shape(init, f"{n} {hs} {ws} 2", "init")
        init = clamp_nnf(init.to(device=dev, dtype=torch.long), (ht, wt))
    if constraint is not None:
        check_shape(constraint.source, f"{n} {hs} {ws}", "constraint.source")
        check_shape(constraint.target, f"{n} {ht} {wt}", "constraint.target")
    tracker = ProgressTracker(progress, n * pm_iters, "patchmatch")
    fields, scores = [], []
    with _chunk_workers(dev) as workers:
        for i in range(n):
            codes = None if constraint is None else (constraint.source[i].to(dev), constraint.target[i].to(dev))
            f, s = _patchmatch_one(
                [m[i] for m in source], [m[i] for m in target], init[i], patch_size, pm_iters, search_radius,
                tuple(pm_jumps), generator, check_interrupt, tracker.advance, codes, workers,
            )
            fields.append(f)
            scores.append(s)
    return torch.stack(fields), torch.stack(scores)


def _patchmatch_one(
    src: Sequence[torch.Tensor],
    tgt: Sequence[torch.Tensor],
    init: torch.Tensor,
    patch_size: int,
    pm_iters: int,
    search_radius: int | None,
    pm_jumps: tuple[int, ...],
    generator: torch.Generator | None,
    check_interrupt: InterruptFn | None,
    advance: Callable[[int], None],
    codes: tuple[torch.Tensor, torch.Tensor] | None = None,
    workers: _Workers | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    scorer = _PatchScorer(src, tgt, patch_size, workers)
    hs, ws = scorer.hs, scorer.ws
    ht, wt = scorer.ht, scorer.wt
    dev = scorer.src.device
    sy, sx = torch.meshgrid(torch.arange(hs, device=dev), torch.arange(ws, device=dev), indexing="ij")
    sy, sx = sy.reshape(-1), sx.reshape(-1)
    cur_x, cur_y = init[..., 0].reshape(-1).clone(), init[..., 1].reshape(-1).clone()
    rules = None if codes is None else _Rules(codes[0].reshape(-1), codes[1], generator)
    if rules is not None:
        cur_x, cur_y = rules.fix(cur_x, cur_y)
    best = scorer.score(sy, sx, cur_y, cur_x)
    if rules is not None:
        best = best - _PENALTY * (~rules.allowed(torch.arange(sy.numel(), device=dev), cur_x, cur_y)).to(best.dtype)
    if search_radius is None:
        lo_x, hi_x = torch.zeros_like(cur_x), torch.full_like(cur_x, wt - 1)
        lo_y, hi_y = torch.zeros_like(cur_y), torch.full_like(cur_y, ht - 1)
        radii = random_search_radii(max(ht, wt))
    else:
        lo_x, hi_x = (cur_x - search_radius).clamp(0, wt - 1), (cur_x + search_radius).clamp(0, wt - 1)
        lo_y, hi_y = (cur_y - search_radius).clamp(0, ht - 1), (cur_y + search_radius).clamp(0, ht - 1)
        radii = random_search_radii(search_radius)

    # Candidates scored before are not scored again: a pixel's score only rises, so a target
    # it scored and does not hold now would lose again, and the fields are the same. A
    # propagation step proposes φ(p − k·e) + k·e, the same candidate as in its last run while
    # p − k·e keeps its match: each pixel records the pass in which its match last changed,
    # each step the pass in which it last ran, and a step only proposes the candidates of
    # neighbours that moved since. Other repeats (two steps or a random draw proposing one
    # target) are caught by each pixel's last few discarded targets (``_Discarded``).
    passes = 0
    moved = torch.full_like(cur_x, -1)
    last_run: dict[tuple[int, int, int], int] = {}
    discarded = _Discarded(sy.numel(), wt, dev)

    def try_candidates(cx: torch.Tensor, cy: torch.Tensor, valid: torch.Tensor) -> None:
        nonlocal best
        changed = valid & ((cx != cur_x) | (cy != cur_y))
        idx = changed.nonzero().squeeze(1)
        if rules is not None and idx.numel():
            idx = idx[rules.allowed(idx, cx[idx], cy[idx])]
        if idx.numel():
            idx = idx[discarded.fresh(idx, cx[idx], cy[idx])]
        if idx.numel() == 0:
            return
        tx, ty = cx[idx], cy[idx]
        s = scorer.score(sy[idx], sx[idx], ty, tx)
        better = s > best[idx]
        # a pixel discards the candidate, or the match that the candidate replaces
        discarded.add(idx, torch.where(better, cur_x[idx], tx), torch.where(better, cur_y[idx], ty))
        upd = idx[better]
        cur_x[upd] = tx[better]
        cur_y[upd] = ty[better]
        best[upd] = s[better]
        moved[upd] = passes

    for _ in range(pm_iters):
        for k in pm_jumps:
            if check_interrupt is not None:
                check_interrupt()
            for ey, ex in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                # candidate for p: φ(p − k·e) + k·e, defined where p − k·e lies in the source
                ny, nx = sy - k * ey, sx - k * ex
                valid = (ny >= 0) & (ny < hs) & (nx >= 0) & (nx < ws)
                nidx = (ny.clamp(0, hs - 1) * ws + nx.clamp(0, ws - 1))
                passes += 1
                step = (k, ey, ex)
                if step in last_run:
                    valid &= moved[nidx] >= last_run[step]
                last_run[step] = passes
                cx = (cur_x[nidx] + k * ex).clamp(0, wt - 1)
                cy = (cur_y[nidx] + k * ey).clamp(0, ht - 1)
                try_candidates(cx, cy, valid)
        for r in radii:
            passes += 1
            offs = torch.randint(-r, r + 1, (2, sy.numel()), generator=generator).to(dev)
            cx = torch.minimum(torch.maximum(cur_x + offs[0], lo_x), hi_x)
            cy = torch.minimum(torch.maximum(cur_y + offs[1], lo_y), hi_y)
            if rules is not None and search_radius is None:
                cx, cy = rules.redraw(cx, cy)
            try_candidates(cx, cy, torch.ones_like(best, dtype=torch.bool))
        advance(1)
    nnf = torch.stack((cur_x.view(hs, ws), cur_y.view(hs, ws)), dim=-1)
    return nnf, best.view(hs, ws)


class _Discarded:
    """The last targets each source pixel scored and did not keep (a ring of ``SLOTS``)."""

    SLOTS = 8

    def __init__(self, pixels: int, wt: int, device: torch.device) -> None:
        # targets as flat indices y·wt + x (int32: maps of up to 2^31 pixels)
        self.wt = wt
        self.targets = torch.full((pixels, self.SLOTS), -1, dtype=torch.int32, device=device)
        self.slot = torch.zeros(pixels, dtype=torch.uint8, device=device)

    def fresh(self, idx: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
        """Whether pixels ``idx`` have not discarded (cx, cy) lately."""
        return ~(self.targets[idx] == (cy * self.wt + cx).unsqueeze(1)).any(1)

    def add(self, idx: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> None:
        """Record that pixels ``idx`` (each once) discarded (cx, cy)."""
        slot = self.slot[idx].long()
        self.targets[idx, slot] = (cy * self.wt + cx).to(torch.int32)
        self.slot[idx] = ((slot + 1) % self.SLOTS).to(torch.uint8)


class _Rules:
    """A ``SearchConstraint`` for one batch item, as the search uses it."""

    def __init__(self, source: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None) -> None:
        self.source, self.target = source, target  # (Hs·Ws,), (Ht, Wt)
        self.flat = target.reshape(-1)
        self.wt = int(target.shape[1])
        self.generator = generator
        # allowed target indices per source code, for the redraws of the global search
        self.pools = {
            int(code): allowed_targets(int(code), target).reshape(-1).nonzero().squeeze(1)
            for code in torch.unique(source).tolist()
        }

    def allowed(self, idx: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
        """Whether source pixels ``idx`` may match (cx, cy)."""
        tc = self.flat[cy * self.wt + cx]
        sc = self.source[idx]
        return (tc != IGNORED) & ((sc == FREE) | (sc == tc))

    def fix(self, cx: torch.Tensor, cy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move forbidden starting targets to the nearest allowed pixel."""
        bad = ~self.allowed(torch.arange(cx.numel(), device=cx.device), cx, cy)
        if not bool(bad.any()):
            return cx, cy
        pts = torch.stack((cx[bad], cy[bad]), dim=1).double()
        fixed = torch.round(nearest_allowed(pts, self.source[bad], self.target)).long()
        cx, cy = cx.clone(), cy.clone()
        cx[bad], cy[bad] = fixed[:, 0], fixed[:, 1]
        return cx, cy

    def redraw(self, cx: torch.Tensor, cy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace forbidden random candidates by uniform draws among allowed targets."""
        bad = ~self.allowed(torch.arange(cx.numel(), device=cx.device), cx, cy)
        if not bool(bad.any()):
            return cx, cy
        cx, cy = cx.clone(), cy.clone()
        for code, pool in self.pools.items():
            rows = (bad & (self.source == code)).nonzero().squeeze(1)
            if rows.numel() == 0 or pool.numel() == 0:
                continue
            pick = pool[torch.randint(0, pool.numel(), (rows.numel(),), generator=self.generator).to(pool.device)]
            cx[rows], cy[rows] = pick % self.wt, pick // self.wt
        return cx, cy
