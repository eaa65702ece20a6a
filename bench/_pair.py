"""The image pair a timing benchmark runs on, at the exact size it measures."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from analogy_core.io import load_image


def load_pair(a: str | Path, bp: str | Path, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A and B' as (1, 3, height, width) RGB in 0..1, each resized (bilinear, antialiased)
    and clamped, since the antialiasing filter can overshoot 0..1 a little."""

    def load(path: str | Path) -> torch.Tensor:
        return F.interpolate(load_image(path), size=(height, width), mode="bilinear", antialias=True).clamp(0, 1)

    return load(a), load(bp)
