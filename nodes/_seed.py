"""The ``seed`` inputs of the pack: one spec, so every seed widget behaves the same.

A seed here picks PatchMatch's random draws, and a graph of step nodes repeats the
one-node result only with the same seed on every layer, so a seed must never change by
itself. ComfyUI's frontend puts a "control after generate" widget under every INT input
named ``seed`` and, by default, sets it to "randomize", which would re-roll the seed
after every queue (and rerun the whole, slow, analogy).

- Newer ComfyUI versions take the mode itself in ``control_after_generate``
  (``io.ControlAfterGenerate.fixed``) and their frontend uses it as the default; we pass
  it where the running ComfyUI has it.
- ComfyUI 0.3.75 only takes a bool there, and its frontend (1.32.9) then always starts
  the control at "randomize" (a string would become the widget's *name*). There the
  pack's frontend extension ``web/deep_image_analogy.js`` sets the control of each seed
  of our nodes to "fixed" when a node is created; a saved workflow keeps its own choice.

The control widget is kept (``False`` would remove it) so that saved workflows, whose
``widgets_values`` hold a value for it, keep their layout.
"""

from __future__ import annotations

from typing import Any

from comfy_api.latest import io

SEED_MAX = 0xFFFFFFFF


def fixed_control() -> Any:
    """What ``control_after_generate`` gets: the "fixed" mode where the API has it, else ``True``."""
    modes = getattr(io, "ControlAfterGenerate", None)
    return modes.fixed if modes is not None else True


def seed_input(tooltip: str) -> io.Int.Input:
    """The ``seed`` input: 0 … 2³² − 1, default 0, control after generate fixed."""
    return io.Int.Input(
        "seed",
        default=0,
        min=0,
        max=SEED_MAX,
        step=1,
        control_after_generate=fixed_control(),
        tooltip=f"{tooltip} Stays fixed after each run (control after generate: fixed); 0–{SEED_MAX}.",
    )
