"""Progress and cancellation: the one contract between the core and whoever runs it.

Every core function that runs for long takes two optional keyword hooks, and never
imports anything for them (nodes adapt ComfyUI's progress bar and interrupt flag, the
command line draws a text bar, tests record calls):

``progress(done, total, stage)`` (``ProgressFn``)
    ``done`` of ``total`` work units are finished; ``stage`` names what runs now, e.g.
    ``"nnf relu4_1"``. ``total`` is fixed for the whole call and known before the work
    starts (``pipeline.total_work`` for a full analogy); ``done`` never decreases and
    is ``total`` when the function returns. A unit is one PatchMatch iteration of one
    image pair and direction, one L-BFGS iteration of one deconvolution, one
    conjugate-gradient iteration of the WLS filter, and one unit each for feature
    extraction and the final vote.

``check_interrupt()`` (``InterruptFn``)
    Called before every PatchMatch propagation step, every L-BFGS function evaluation
    and every conjugate-gradient iteration; raise from it to cancel, and the exception
    reaches the caller unchanged. At most one work unit is done between two calls.

A task that runs others inside it (a full analogy runs NNF searches and
deconvolutions; a clip will run one analogy per frame) counts its own units with a
``ProgressTracker`` and hands each part ``tracker.share(units)``: a ``ProgressFn`` that
maps the part's own ``(done, total)`` onto ``units`` of the whole. A stage is named by
the outermost task that names one (a task without a stage name of its own passes its
parts' names through, optionally with a prefix such as ``"frame 3 of 10: "``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class ProgressFn(Protocol):
    """``progress(done, total, stage)``: ``done`` of ``total`` units finished, in ``stage``."""

    def __call__(self, done: int, total: int, stage: str) -> None:
        """Report progress (see the module docstring for the contract)."""


InterruptFn = Callable[[], None]
"""``check_interrupt()``: raises to cancel the running computation."""


class ProgressTracker:
    """Counts the work units of one task and reports them through a ``ProgressFn``.

    Args:
        progress: where to report; ``None`` counts silently.
        total: units of the whole task.
        stage: the task's stage name ("" when it has none of its own).

    Example:
        >>> seen = []
        >>> tracker = ProgressTracker(lambda d, t, s: seen.append((d, t, s)), 4, "outer")
        >>> part = tracker.share(2)
        >>> part(1, 4, "inner"); part(4, 4, "inner"); tracker.advance(2)
        >>> seen
        [(0, 4, 'outer'), (2, 4, 'outer'), (4, 4, 'outer')]
    """

    def __init__(self, progress: ProgressFn | None, total: int, stage: str = "") -> None:
        self.progress = progress
        self.total = max(int(total), 0)
        self.stage = stage
        self.done = 0

    def _report(self, stage: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, stage)

    def begin(self, stage: str) -> None:
        """Name the stage that starts now and report the units done so far under it."""
        self.stage = stage
        self._report(stage)

    def advance(self, units: int = 1) -> None:
        """Count ``units`` more finished units (never past ``total``) and report them."""
        self.done = min(self.done + units, self.total)
        self._report(self.stage)

    def finish(self) -> None:
        """Count the task as complete (units skipped, e.g. by early convergence, included)."""
        if self.done < self.total:
            self.advance(self.total - self.done)

    def share(self, units: int, *, prefix: str = "") -> ProgressFn:
        """A ``ProgressFn`` for a part of this task worth ``units`` units.

        The part reports its own ``(done, total, stage)``; this tracker advances by the
        same fraction of ``units`` (rounded down, so the part's end lands exactly on
        ``units``) and reports under its own stage, or under ``prefix`` plus the part's
        stage when it has none of its own.

        Args:
            units: how many of this tracker's units the part is worth.
            prefix: put before the part's stage names (only when this tracker has no
                stage name of its own).

        Returns:
            The part's ``progress`` hook.
        """
        start = self.done

        def report(done: int, total: int, stage: str) -> None:
            part = units if total <= 0 else min(units, done * units // total)
            self.done = min(self.total, max(self.done, start + part))
            self._report(self.stage or prefix + stage)

        return report
