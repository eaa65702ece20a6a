"""Settings of a Deep Image Analogy run, and the named presets.

Per-layer tuples are ordered from the coarsest layer to the finest, as in ``LAYERS``:
relu5_1, relu4_1, relu3_1, relu2_1, relu1_1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

LAYERS: tuple[str, ...] = ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1")

MaskMode = Literal["sigmoid", "step"]
DeconvMode = Literal["direct", "release"]


@dataclass(frozen=True)
class AnalogyConfig:
    """All settings of one analogy; immutable, change with ``dataclasses.replace``.

    Attributes:
        alphas: fusion weight α per layer (relu5_1..relu1_1). The first is 1.0: at the top
            layer A' takes A's features unchanged (paper, eq. 4). Higher keeps more of A's
            structure in A'.
        patch_sizes: PatchMatch patch width per layer (odd).
        search_radii: random-search radius per layer in that layer's pixels; ``None``
            searches the whole map (only allowed at relu5_1, where the search is global).
        pm_iters: PatchMatch iterations per layer and direction (paper 10; the release
            presets use ``FAST_PM_ITERS``).
        pm_jumps: propagation steps (jump flooding), each tried in four directions.
        lbfgs_iters: L-BFGS iterations per deconvolution (paper 100; the release presets
            use ``FAST_LBFGS_ITERS``).
        lbfgs_history: L-BFGS history size.
        deconv: ``"direct"`` optimises the layer below (paper, eq. 3); ``"release"``
            optimises two layers below and forwards one layer (authors' release).
        mask: ``"sigmoid"`` (paper) or ``"step"`` (authors' release) fusion mask.
        kappa: sigmoid steepness of the fusion mask.
        tau: threshold on the min-max-normalised squared feature norm.
        vote_patch: patch width of the final pixel vote (paper 5, release 3).
        pixel_refine: after relu1_1, refine both fields to sub-pixel precision on the
            images themselves (``analogy_core.pixel``) and vote through the refined
            fields. Not in the paper (off in ``paper``); on in every other preset.
        wls_refine: after the vote, keep A's structure and take A''s colours:
            A' = A + WLS(A' − A | A), and B = B' + WLS(B − B' | B') (``refine.wls_refine``;
            the authors' release ends its photo mode so). On in ``photo2photo``.
        ratio: extra scale of the network input relative to the size-limited image.
        min_side: smallest allowed side of the size-limited image, px.
        max_side: largest allowed side of the size-limited image, px.
        max_area: largest allowed area of the size-limited image, px².
    """

    alphas: tuple[float, ...] = (1.0, 0.8, 0.7, 0.6, 0.1)
    patch_sizes: tuple[int, ...] = (3, 3, 3, 5, 5)
    search_radii: tuple[int | None, ...] = (None, 6, 6, 4, 4)
    pm_iters: int = 10
    pm_jumps: tuple[int, ...] = (8, 4, 2, 1)
    lbfgs_iters: int = 100
    lbfgs_history: int = 4
    deconv: DeconvMode = "direct"
    mask: MaskMode = "sigmoid"
    kappa: float = 300.0
    tau: float = 0.05
    vote_patch: int = 5
    pixel_refine: bool = False
    wls_refine: bool = False
    ratio: float = 1.0
    min_side: int = 200
    max_side: int = 700
    max_area: int = 350_000

    def __post_init__(self) -> None:
        n = len(LAYERS)
        for name in ("alphas", "patch_sizes", "search_radii"):
            value = getattr(self, name)
            if len(value) != n:
                raise ValueError(f"{name} needs {n} values (relu5_1..relu1_1), got {len(value)}: {value}")
        if any(not 0.0 <= a <= 1.0 for a in self.alphas):
            raise ValueError(f"alphas must lie in [0, 1], got {self.alphas}")
        if any(p < 1 or p % 2 == 0 for p in self.patch_sizes):
            raise ValueError(f"patch_sizes must be odd and >= 1, got {self.patch_sizes}")
        if any(r is not None and r < 0 for r in self.search_radii):
            raise ValueError(f"search_radii must be >= 0 or None (global), got {self.search_radii}")
        if any(r is None for r in self.search_radii[1:]):
            raise ValueError("only relu5_1 may search globally (search_radii[0] = None)")
        if self.pm_iters < 0 or self.lbfgs_iters < 0 or self.lbfgs_history < 1:
            raise ValueError("pm_iters and lbfgs_iters must be >= 0 and lbfgs_history >= 1")
        if any(j < 1 for j in self.pm_jumps):
            raise ValueError(f"pm_jumps must be positive, got {self.pm_jumps}")
        if self.deconv not in ("direct", "release"):
            raise ValueError(f"deconv must be 'direct' or 'release', got {self.deconv!r}")
        if self.mask not in ("sigmoid", "step"):
            raise ValueError(f"mask must be 'sigmoid' or 'step', got {self.mask!r}")
        if self.kappa <= 0 or not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"kappa must be > 0 and tau in [0, 1], got kappa={self.kappa}, tau={self.tau}")
        if self.vote_patch < 1 or self.vote_patch % 2 == 0:
            raise ValueError(f"vote_patch must be odd and >= 1, got {self.vote_patch}")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio must lie in (0, 1], got {self.ratio}")
        if not 16 <= self.min_side <= self.max_side:
            raise ValueError(f"need 16 <= min_side <= max_side, got {self.min_side}, {self.max_side}")
        if self.max_area < self.min_side**2:
            raise ValueError(f"max_area {self.max_area} is below min_side² = {self.min_side**2}")


# The authors' three weight "levels" (alphas for relu5_1..relu1_1).
_LEVELS: dict[int, tuple[float, ...]] = {
    1: (1.0, 0.7, 0.6, 0.5, 0.0),
    2: (1.0, 0.8, 0.7, 0.6, 0.1),
    3: (1.0, 0.9, 0.8, 0.7, 0.2),
}

FAST_PM_ITERS = 4
FAST_LBFGS_ITERS = 15
"""Iterations of the release presets. On ``bench.quality`` they keep A' and B within
0.3 dB PSNR, and the fields within 0.2 px median error, of the paper's 10 and 100
(README, "Speed"), at about a sixth of the time."""

_PAPER = AnalogyConfig()
_RELEASE = dataclasses.replace(
    _PAPER, mask="step", vote_patch=3, deconv="release", pm_iters=FAST_PM_ITERS, lbfgs_iters=FAST_LBFGS_ITERS,
    pixel_refine=True,
)


@dataclass(frozen=True)
class Preset:
    """A named preset: its settings and what it is for.

    Attributes:
        config: the settings.
        use: what the preset is for, in a few words (its numbers are in ``config``;
            ``describe_preset`` adds them).
    """

    config: AnalogyConfig
    use: str


PRESETS: dict[str, Preset] = {
    "paper": Preset(_PAPER, "the paper's settings (slow)"),
    "level1": Preset(dataclasses.replace(_RELEASE, alphas=_LEVELS[1]), "authors' weight level 1 (least structure kept)"),
    "level2": Preset(dataclasses.replace(_RELEASE, alphas=_LEVELS[2]), "authors' weight level 2"),
    "level3": Preset(dataclasses.replace(_RELEASE, alphas=_LEVELS[3]), "authors' weight level 3 (most structure kept)"),
    "photo2style": Preset(dataclasses.replace(_RELEASE, alphas=_LEVELS[3], ratio=1.0), "photo A, painting B'"),
    "photo2style_face": Preset(
        dataclasses.replace(_RELEASE, alphas=_LEVELS[3], ratio=0.5), "portrait photo A, painting B'"
    ),
    "style2photo": Preset(dataclasses.replace(_RELEASE, alphas=_LEVELS[2], ratio=0.5), "painting A, photo B'"),
    "photo2photo": Preset(
        dataclasses.replace(_RELEASE, alphas=_LEVELS[3], ratio=1.0, wls_refine=True), "two photos"
    ),
}
"""Named presets; their names are public API (saved in workflows and scripts)."""

DEFAULT_PRESET = "photo2style"
"""The preset of every front end when none is chosen (CLI, benchmarks, nodes)."""


def get_preset(name: str) -> AnalogyConfig:
    """Return the settings of the preset called ``name``.

    Raises:
        ValueError: unknown name; the message lists the known ones.

    Example:
        >>> get_preset("paper").pm_iters
        10
    """
    try:
        return PRESETS[name].config
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


SETTINGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AnalogyConfig))
"""The names of all settings (the fields of ``AnalogyConfig``), one name from node to core."""


def resolve_config(preset: str = DEFAULT_PRESET, /, **overrides: Any) -> AnalogyConfig:
    """The settings of a preset with the overrides that are set: the one place every front
    end (nodes, CLI, benchmarks) turns its choices into an ``AnalogyConfig``.

    Args:
        preset: preset name (default ``DEFAULT_PRESET``).
        **overrides: settings by their ``AnalogyConfig`` name; ``None`` keeps the
            preset's value, any other value replaces it.

    Returns:
        The resolved settings (the preset's own object when nothing is overridden).

    Raises:
        ValueError: unknown preset, unknown setting name, or an invalid value (the
            message names the setting and its allowed range).

    Example:
        >>> cfg = resolve_config("paper", pm_iters=3, ratio=None)
        >>> cfg.pm_iters, cfg.ratio, cfg.lbfgs_iters
        (3, 1.0, 100)
    """
    cfg = get_preset(preset)
    unknown = sorted(set(overrides) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(SETTINGS)}")
    changes = {name: value for name, value in overrides.items() if value is not None}
    return dataclasses.replace(cfg, **changes) if changes else cfg


def same_settings(name: str) -> list[str]:
    """The other presets whose settings equal those of ``name``, in ``PRESETS`` order.

    Example:
        >>> same_settings("photo2style")
        ['level3']
    """
    cfg = get_preset(name)
    return [other for other, p in PRESETS.items() if other != name and p.config == cfg]


def _number(x: float) -> str:
    return f"{x:g}" if x != int(x) else f"{x:.1f}"


def describe_config(cfg: AnalogyConfig) -> str:
    """The settings that tell presets apart, in words.

    Example:
        >>> describe_config(get_preset("level1"))
        'α 1.0/0.7/0.6/0.5/0.0, step mask, release deconvolution, 3×3 final vote, pixel refinement, ratio 1.0, 4 PatchMatch and 15 L-BFGS iterations'
    """
    mask = f"sigmoid mask (κ {cfg.kappa:g}, τ {cfg.tau:g})" if cfg.mask == "sigmoid" else "step mask"
    return (
        f"α {'/'.join(_number(a) for a in cfg.alphas)}, {mask}, {cfg.deconv} deconvolution, "
        f"{cfg.vote_patch}×{cfg.vote_patch} final vote{', pixel refinement' if cfg.pixel_refine else ''}"
        f"{', WLS photo refinement' if cfg.wls_refine else ''}, "
        f"ratio {_number(cfg.ratio)}, "
        f"{cfg.pm_iters} PatchMatch and {cfg.lbfgs_iters} L-BFGS iterations"
    )


def describe_preset(name: str) -> str:
    """A preset's use and settings in one line; presets with equal settings say so.

    Raises:
        ValueError: unknown name.

    Example:
        >>> describe_preset("photo2style").split(": ")[0]
        "photo A, painting B'"
        >>> describe_preset("photo2style").endswith("(same settings as level3)")
        True
    """
    cfg = get_preset(name)
    twins = same_settings(name)
    same = f" (same settings as {', '.join(twins)})" if twins else ""
    return f"{PRESETS[name].use}: {describe_config(cfg)}{same}"


def preset_values(setting: str) -> str:
    """What the presets set ``setting`` to, most common value first, e.g. for tooltips.

    Raises:
        ValueError: unknown setting.

    Example:
        >>> preset_values("pm_iters")
        '4; paper: 10'
        >>> preset_values("min_side")
        '200'
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; the settings are {', '.join(SETTINGS)}")
    by_value: dict[Any, list[str]] = {}
    for name, p in PRESETS.items():
        by_value.setdefault(getattr(p.config, setting), []).append(name)
    common, *others = sorted(by_value.items(), key=lambda item: -len(item[1]))
    return "; ".join([str(common[0]), *(f"{', '.join(names)}: {value}" for value, names in others)])
