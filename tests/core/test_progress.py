"""The progress and cancellation contract (analogy_core.progress), counted in work units.

Nothing here measures time: cancellation latency is bounded by the work done between two
``check_interrupt`` calls, which these tests count.
"""

from __future__ import annotations

import pytest
import torch

from analogy_core import (
    LAYERS,
    ProgressTracker,
    patchmatch,
    resolve_config,
    run_analogy,
    search_layer,
    total_work,
    wls_filter,
)

TINY = resolve_config("photo2style", min_side=32, max_side=64, pm_iters=2, lbfgs_iters=3)


class Recorder:
    """Records progress reports and interrupt checks in the order they happen."""

    def __init__(self, stop_at_unit: int | None = None) -> None:
        self.events: list[tuple] = []
        self.stop_at_unit = stop_at_unit
        self.flag = False

    def progress(self, done: int, total: int, stage: str) -> None:
        self.events.append(("progress", done, total, stage))
        if self.stop_at_unit is not None and done >= self.stop_at_unit:
            self.flag = True  # as a UI thread sets the cancel flag between two reports

    def check(self) -> None:
        self.events.append(("check",))
        if self.flag:
            raise KeyboardInterrupt

    def reports(self) -> list[tuple]:
        return [e for e in self.events if e[0] == "progress"]


def _pair(device, batch: int = 1):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(batch, 3, 32, 40, generator=g).to(device)
    bp = torch.rand(1, 3, 36, 32, generator=g).to(device)
    return a, bp


def test_tracker_shares_and_prefixes():
    seen = []
    clip = ProgressTracker(lambda *c: seen.append(c), total=6)
    frame = clip.share(3, prefix="frame 1 of 2: ")
    inner = ProgressTracker(frame, total=6, stage="nnf relu5_1")
    inner.advance(2)
    inner.advance(4)
    assert seen == [(1, 6, "frame 1 of 2: nnf relu5_1"), (3, 6, "frame 1 of 2: nnf relu5_1")]
    clip.begin("vote")
    part = clip.share(3)
    part(10, 10, "ignored: the clip names its own stage now")
    assert seen[-1] == (6, 6, "vote")
    silent = ProgressTracker(None, 5)
    silent.advance(9)
    silent.finish()
    assert silent.done == 5


def test_full_run_reports_every_unit_once_with_checks_in_between(vgg, device):
    rec = Recorder()
    a, bp = _pair(device, batch=2)
    run_analogy(vgg, a, bp, TINY, progress=rec.progress, check_interrupt=rec.check)
    reports = rec.reports()
    total = total_work(TINY, batch=2)
    assert {r[2] for r in reports} == {total} and reports[-1][1] == total
    assert all(r1[1] <= r2[1] for r1, r2 in zip(reports, reports[1:]))
    stages = list(dict.fromkeys(r[3] for r in reports))
    expected = ["features"]
    for i, layer in enumerate(LAYERS):
        expected += ([f"fusion {layer}"] if i else []) + [f"nnf {layer}"] + ([f"deconv {layer}"] if i < 4 else [])
    assert TINY.pixel_refine
    # the pairs of a batch run one after another, each named in the stage
    assert stages == [f"pair {k} of 2: {stage}" for k in (1, 2) for stage in expected + ["pixel refinement", "vote"]]
    # cancellation latency in work units: at most one unit between two interrupt checks.
    # Two noise images do not correlate, so the pixel refinement's pair gate (which checks
    # before each offset it scores) skips the refinement: its units pass in one report
    # per direction right after a check, with no work behind them
    done, since_check, most, skipped = 0, 0, 0, 0
    for previous, event in zip([("check",), *rec.events], rec.events):
        if event[0] == "check":
            most, since_check = max(most, since_check), 0
        elif event[3].endswith("pixel refinement") and event[1] - done > 1:
            assert previous == ("check",)
            skipped += 1
            done = event[1]
        else:
            since_check += event[1] - done
            done = event[1]
    assert most <= 1 and skipped == 2 * 2  # two directions in each of the two pairs
    # one check per propagation step (2 images x 2 directions x 5 layers x iterations x jumps),
    # and at least one per L-BFGS iteration (2 directions x 4 layers)
    checks = len([e for e in rec.events if e[0] == "check"])
    assert checks >= 2 * 2 * 5 * TINY.pm_iters * len(TINY.pm_jumps) + 2 * 4 * TINY.lbfgs_iters


@pytest.mark.parametrize("stop_at_unit", [1, 4, 30])  # features; a PatchMatch iteration; an L-BFGS iteration
def test_cancel_stops_at_the_first_check_after_the_flag(vgg, device, stop_at_unit):
    rec = Recorder(stop_at_unit=stop_at_unit)
    a, bp = _pair(device)
    with pytest.raises(KeyboardInterrupt):
        run_analogy(vgg, a, bp, TINY, progress=rec.progress, check_interrupt=rec.check)
    flagged = next(i for i, e in enumerate(rec.events) if e[0] == "progress" and e[1] >= stop_at_unit)
    after = rec.events[flagged + 1 :]
    # the run ends at the first check after the flag, and at most one unit is reported before it
    assert after[-1] == ("check",) and after.count(("check",)) == 1
    assert [e[1] for e in after if e[0] == "progress"][-1:] <= [stop_at_unit + 1]


def test_a_clip_of_runs_nests_its_progress(vgg, device):
    """How a frame sequence reports: one tracker over all frames, one share per frame."""
    seen = []
    a, bp = _pair(device)
    per_frame = total_work(TINY)
    clip = ProgressTracker(lambda *c: seen.append(c), 2 * per_frame)
    for k in range(2):
        run_analogy(vgg, a, bp, TINY, progress=clip.share(per_frame, prefix=f"frame {k + 1} of 2: "))
    assert seen[-1] == (2 * per_frame, 2 * per_frame, "frame 2 of 2: vote")
    assert (per_frame, 2 * per_frame, "frame 1 of 2: vote") in seen
    assert all(c1[0] <= c2[0] for c1, c2 in zip(seen, seen[1:]))


def test_step_functions_count_their_own_units(vgg, device):
    from analogy_core import prepare

    a, bp = _pair(device, batch=2)
    state = prepare(vgg, a, bp, TINY)
    seen = []
    search_layer(state, "relu5_1", patch_size=3, pm_iters=2, search_radius=None, progress=lambda *c: seen.append(c))
    assert seen == [(k, 8, "nnf relu5_1") for k in range(1, 9)]
    seen.clear()
    f = torch.rand(2, 4, 6, 6, device=device)
    patchmatch((f,), (f,), patch_size=3, pm_iters=3, search_radius=None, progress=lambda *c: seen.append(c))
    assert seen == [(k, 6, "patchmatch") for k in range(1, 7)]


def test_wls_progress_ends_at_its_total_when_it_converges_early(device):
    seen, checks = [], []
    img = torch.full((1, 3, 8, 8), 0.25, device=device)
    wls_filter(img, torch.rand(1, 3, 8, 8, device=device), max_iters=50, progress=lambda *c: seen.append(c),
               check_interrupt=lambda: checks.append(1))
    assert seen[-1] == (50, 50, "wls") and len(checks) < 50
