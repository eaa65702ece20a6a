"""Settings of a Deep Image Analogy run, and the named presets.

Per-layer tuples are ordered from the coarsest layer to the finest, as in ``LAYERS``:
relu5_1, relu4_1, relu3_1, relu2_1, relu1_1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

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
    _PAPER, mask="step", vote_patch=3, deconv="release", pm_iters=FAST_PM_ITERS, lbfgs_iters=FAST_LBFGS_ITERS
)

PRESETS: dict[str, AnalogyConfig] = {
    "paper": _PAPER,
    "level1": dataclasses.replace(_RELEASE, alphas=_LEVELS[1]),
    "level2": dataclasses.replace(_RELEASE, alphas=_LEVELS[2]),
    "level3": dataclasses.replace(_RELEASE, alphas=_LEVELS[3]),
    "photo2style": dataclasses.replace(_RELEASE, alphas=_LEVELS[3], ratio=1.0),
    "photo2style_face": dataclasses.replace(_RELEASE, alphas=_LEVELS[3], ratio=0.5),
    "style2photo": dataclasses.replace(_RELEASE, alphas=_LEVELS[2], ratio=0.5),
    "photo2photo": dataclasses.replace(_RELEASE, alphas=_LEVELS[3], ratio=1.0),
}
"""Named presets; their names are public API (saved in workflows and scripts)."""

PRESET_NOTES: dict[str, str] = {
    "paper": "the paper's settings: α 0.8/0.7/0.6/0.1, sigmoid mask, 5×5 final vote, 10 PatchMatch and "
    "100 L-BFGS iterations (slow)",
    "level1": "authors' weight level 1 (least structure kept): α 0.7/0.6/0.5/0.0",
    "level2": "authors' weight level 2: α 0.8/0.7/0.6/0.1",
    "level3": "authors' weight level 3 (most structure kept): α 0.9/0.8/0.7/0.2",
    "photo2style": "photo A, painting B': level 3, ratio 1.0",
    "photo2style_face": "portrait photo A, painting B': level 3, ratio 0.5",
    "style2photo": "painting A, photo B': level 2, ratio 0.5",
    "photo2photo": "two photos: level 3, ratio 1.0",
}


def get_preset(name: str) -> AnalogyConfig:
    """Return the preset called ``name``.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
