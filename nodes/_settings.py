"""Node settings: defaults and tooltip numbers read from the presets, the one-node
analogy's override widgets mapped onto the core's settings, and the widget checks that
several nodes share.

Input ids, Combo options and the "use the preset" widget values are public API (saved in
users' workflows) and never change; the core names every setting once
(``analogy_core.SETTINGS``). Where the two differ, they meet here and in the one core
call of each node:

==================================  ==============================================
node input                          core setting
==================================  ==============================================
Deep Image Analogy ``pm_iters`` …   the same names; -1 / 0 keep the preset's value
NNF Search ``iterations``           ``pm_iters``
NNF Search ``search_radius`` 0      ``search_radius=None`` (global search)
Feature Deconvolution ``iterations``  ``lbfgs_iters``
Feature Deconvolution ``mode``      ``deconv``
Patch-Vote ``patch_size``           ``vote_patch``
Deep Image Analogy ``pixel_refinement``  ``pixel_refine`` ("preset" keeps it)
==================================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from comfy_api.latest import io

from ..analogy_core import DEFAULT_PRESET, LAYERS, AnalogyConfig, get_preset, preset_values, resolve_config

DEFAULTS: AnalogyConfig = get_preset(DEFAULT_PRESET)
"""The settings the step nodes' widgets start from (the default preset's)."""
PAPER: AnalogyConfig = get_preset("paper")
"""The paper's settings, quoted in tooltips."""


def by_layer(values: Sequence[Any]) -> str:
    """Per-layer values in words (from relu5_1 down), runs of equal values joined.

    Example:
        >>> by_layer((3, 3, 3, 5, 5))
        '3 at relu5_1–relu3_1, 5 at relu2_1–relu1_1'
    """
    runs: list[tuple[Any, str, str]] = []
    for layer, value in zip(LAYERS, values):
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1], layer)
        else:
            runs.append((value, layer, layer))
    return ", ".join(f"{v} at {first}" + (f"–{last}" if last != first else "") for v, first, last in runs)


@dataclass(frozen=True)
class Override:
    """A widget of the one-node analogy that overrides one setting of the chosen preset.

    Attributes:
        setting: the ``AnalogyConfig`` field, also the widget's input id.
        keep: the widget value that keeps the preset's value (its default).
        low: the widget's minimum (``keep`` or below).
        high: the widget's maximum.
        step: the widget's step.
        what: what the setting is, for the tooltip.
        advice: a hint after the preset values, for the tooltip.
    """

    setting: str
    keep: int | float
    low: int | float
    high: int | float
    step: int | float
    what: str
    advice: str = ""

    def input(self) -> io.Input:
        """The widget, its tooltip quoting what the presets set."""
        tooltip = f"{self.what}; {self.keep} uses the preset's ({preset_values(self.setting)}). {self.advice}"
        kind = io.Float if isinstance(self.keep, float) else io.Int
        return kind.Input(self.setting, default=self.keep, min=self.low, max=self.high, step=self.step,
                          tooltip=tooltip.strip())


OVERRIDES: tuple[Override, ...] = (
    Override("pm_iters", -1, -1, 100, 1, "PatchMatch iterations per layer",
             f"The paper uses {PAPER.pm_iters}; {DEFAULTS.pm_iters} scores within 0.3 dB of it on the quality bench."),
    Override("lbfgs_iters", -1, -1, 1000, 1, "L-BFGS iterations per deconvolution",
             f"The biggest time cost; the paper uses {PAPER.lbfgs_iters}, {DEFAULTS.lbfgs_iters} scores within 0.3 dB "
             "of it on the quality bench."),
    Override("ratio", 0.0, 0.0, 1.0, 0.05, "Scale of the network input after the size limits",
             "0.5 needs about 4× less memory and time."),
    Override("min_side", 0, 0, 4096, 1, "Smallest side of the working image in px"),
    Override("max_side", 0, 0, 4096, 1, "Largest side of the working image in px",
             "Lower it if you run out of memory."),
    Override("max_area", 0, 0, 16_777_216, 1, "Largest area of the working image in px²"),
)
"""The one-node analogy's override widgets, in their order on the node."""


PIXEL_REFINEMENT: dict[str, bool | None] = {"preset": None, "on": True, "off": False}
"""The one-node analogy's ``pixel_refinement`` choices and the ``pixel_refine`` setting each gives."""


def pixel_refinement_input() -> io.Input:
    """The one-node analogy's switch for the pixel-level field refinement."""
    return io.Combo.Input(
        "pixel_refinement", options=list(PIXEL_REFINEMENT), default="preset",
        tooltip="Refine both fields to sub-pixel precision after relu1_1 (Pixel Refinement node): 'preset' follows "
        f"the preset (pixel_refine {preset_values('pixel_refine')}), 'on' or 'off' overrides it. It removes the 1–2 px "
        "error of the paper's fields on photo pairs and leaves photo/painting pairs as they are.",
    )


def config_from_widgets(preset: str, *, pixel_refinement: str | None = "preset", **widgets: Any) -> AnalogyConfig:
    """The one-node analogy's settings: ``preset`` with the override widgets that are set.

    A widget holding its ``keep`` value, or ``None`` (linked, not known yet), keeps the
    preset's value.

    Raises:
        ValueError: unknown preset or invalid settings (the core's message).
    """
    overrides = {o.setting: widgets.get(o.setting) for o in OVERRIDES}
    keep = {o.setting: o.keep for o in OVERRIDES}
    values: dict[str, Any] = {k: None if v == keep[k] else v for k, v in overrides.items()}
    if pixel_refinement is not None and pixel_refinement not in PIXEL_REFINEMENT:
        raise ValueError(f"pixel_refinement must be one of {', '.join(PIXEL_REFINEMENT)}; got {pixel_refinement!r}")
    values["pixel_refine"] = PIXEL_REFINEMENT[pixel_refinement or "preset"]
    return resolve_config(preset, **values)


def widget_error(node: type[io.ComfyNode], **values: Any) -> str | None:
    """Range/option check of widget values against ``node``'s schema.

    ComfyUI skips its own min/max/option checks for the inputs a ``validate_inputs``
    names, so nodes call this for those. Linked inputs arrive as ``None`` and are skipped.

    Returns:
        A message for the first bad value, or ``None``.
    """
    for spec in node.define_schema().inputs or []:
        if spec.id not in values or values[spec.id] is None:
            continue
        value = values[spec.id]
        options = getattr(spec, "options", None)
        if options is not None and value not in options:
            return f"{spec.id} must be one of {', '.join(map(str, options))}; got {value!r}"
        low, high = getattr(spec, "min", None), getattr(spec, "max", None)
        if low is not None and value < low or high is not None and value > high:
            return f"{spec.id} must lie in [{low}, {high}]; got {value}"
    return None


def check_settings(node: type[io.ComfyNode], resolve: Callable[[], object], **values: Any) -> bool | str:
    """A ``validate_inputs`` result for widgets that become core settings.

    Args:
        node: the node class (its schema gives the widgets' ranges and options).
        resolve: builds the core settings from the widget values; its ``ValueError``
            becomes the message (run only when every value is in range).
        **values: the widget values to check (``None``: linked, skipped).

    Returns:
        ``True``, or the first problem as a message.
    """
    error = widget_error(node, **values)
    if error is None:
        try:
            resolve()
        except ValueError as e:
            error = str(e)
    return error or True


def check_preset_settings(node: type[io.ComfyNode], preset: str | None, **settings: Any) -> bool | str:
    """``validate_inputs`` of a node with a preset and the override widgets (``OVERRIDES``
    and ``pixel_refinement``): a preset of ``None`` is linked from another node, and its
    settings are checked when it runs."""
    return check_settings(node, lambda: preset is None or config_from_widgets(preset, **settings), preset=preset,
                          **settings)


def odd_error(name: str, value: int | None) -> str | None:
    """Message if an integer patch width is even (patches need a centre pixel)."""
    if value is not None and value % 2 == 0:
        return f"{name} must be odd (1, 3, 5, …); got {value}"
    return None
