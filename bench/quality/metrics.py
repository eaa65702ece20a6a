"""Scores of a result against its case's ground truth and baselines, and the report table."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from analogy_core import flow_to_nnf, patch_vote

from .appearance import colour_transfer
from .cases import Case

Tensor = torch.Tensor


def psnr(x: Tensor, y: Tensor, mask: Tensor | None = None) -> float:
    """PSNR in dB of images in 0..1 (peak 1), over the pixels in ``mask``.

    Args:
        x, y: (1, C, H, W).
        mask: (H, W) bool, or ``None`` for all pixels.

    Returns:
        ``inf`` when the images agree exactly on the mask.
    """
    se = ((x.double() - y.double()) ** 2).mean(1)[0]
    mse = float(se[mask].mean() if mask is not None else se.mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def oracle_vote(source: Tensor, flow: Tensor, patch_size: int) -> Tensor:
    """Vote ``source`` through the true flow rounded to whole pixels, as the core's final
    step does with its own field: the best an integer field can give.

    Args:
        source: (1, 3, H', W') image the flow points into.
        flow: (H, W, 2) true flow.
        patch_size: odd vote patch width (``AnalogyConfig.vote_patch``).

    Returns:
        (1, 3, H, W) in 0..1.
    """
    nnf = flow_to_nnf(flow[None].to(source.device), (int(source.shape[-2]), int(source.shape[-1])))
    return patch_vote(source, nnf, patch_size).clamp(0, 1)


def end_point_error(flow: Tensor, truth: Tensor, mask: Tensor) -> tuple[float, float]:
    """Median and mean Euclidean distance between two (H, W, 2) flows over ``mask``."""
    e = (flow.double() - truth.double()).norm(dim=-1)[mask]
    if e.numel() == 0:
        return (math.nan, math.nan)
    return (float(e.median()), float(e.mean()))


METRICS: tuple[str, ...] = (
    "psnr_ap", "psnr_ap_all", "psnr_ap_identity", "psnr_ap_colour_transfer", "psnr_ap_oracle",
    "psnr_b", "psnr_b_all", "psnr_b_identity", "psnr_b_colour_transfer", "psnr_b_oracle",
    "epe_ab_median", "epe_ab_mean", "epe_ab_zero_median", "epe_ab_zero_mean",
    "epe_ba_median", "epe_ba_mean", "epe_ba_zero_median", "epe_ba_zero_mean",
    "psnr_ap_edge", "psnr_b_edge",
)


def score(
    case: Case, ap: Tensor, b: Tensor, flow_ab: Tensor, flow_ba: Tensor, vote_patch: int = 3
) -> dict[str, float]:
    """All metrics of one result against the case's ground truth and baselines.

    PSNR is taken over the covered region (pixels whose true match lies inside the other
    image), in the ``_all`` columns over the whole image and in the ``_edge`` columns over
    the covered pixels whose true match lies near the other image's edge (``Case.edge_ab``;
    NaN where there are none). Baselines: the unchanged input, a global colour transfer,
    and the "oracle" (the other image voted through the true flow rounded to whole pixels,
    patch ``vote_patch``): what the paper's final vote reaches with a perfect integer field.

    Args:
        case: the case.
        ap: (1, 3, S, S) output A'.
        b: (1, 3, H', W') output B.
        flow_ab: (S, S, 2) output flow from A into B'.
        flow_ba: (H', W', 2) output flow from B' into A.
        vote_patch: patch width of the oracle vote.
    """
    ab = end_point_error(flow_ab, case.flow_ab, case.scored_ab)
    ab0 = end_point_error(torch.zeros_like(case.flow_ab), case.flow_ab, case.scored_ab)
    ba = end_point_error(flow_ba, case.flow_ba, case.scored_ba)
    ba0 = end_point_error(torch.zeros_like(case.flow_ba), case.flow_ba, case.scored_ba)
    return {
        "psnr_ap": psnr(ap, case.ap_true, case.visible_ab),
        "psnr_ap_all": psnr(ap, case.ap_true),
        "psnr_ap_identity": psnr(case.a, case.ap_true, case.visible_ab),
        "psnr_ap_colour_transfer": psnr(colour_transfer(case.a, case.bp), case.ap_true, case.visible_ab),
        "psnr_ap_oracle": psnr(oracle_vote(case.bp, case.flow_ab, vote_patch), case.ap_true, case.visible_ab),
        "psnr_b": psnr(b, case.b_true, case.visible_ba),
        "psnr_b_all": psnr(b, case.b_true),
        "psnr_b_identity": psnr(case.bp, case.b_true, case.visible_ba),
        "psnr_b_colour_transfer": psnr(colour_transfer(case.bp, case.a), case.b_true, case.visible_ba),
        "psnr_b_oracle": psnr(oracle_vote(case.a, case.flow_ba, vote_patch), case.b_true, case.visible_ba),
        "epe_ab_median": ab[0], "epe_ab_mean": ab[1], "epe_ab_zero_median": ab0[0], "epe_ab_zero_mean": ab0[1],
        "epe_ba_median": ba[0], "epe_ba_mean": ba[1], "epe_ba_zero_median": ba0[0], "epe_ba_zero_mean": ba0[1],
        "psnr_ap_edge": psnr(ap, case.ap_true, case.edge_ab) if bool(case.edge_ab.any()) else math.nan,
        "psnr_b_edge": psnr(b, case.b_true, case.edge_ba) if bool(case.edge_ba.any()) else math.nan,
    }


def mean_row(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Column means over cases (NaN entries skipped)."""
    out = {}
    for k in METRICS:
        vals = [r[k] for r in rows if not math.isnan(r[k])]
        out[k] = sum(vals) / len(vals) if vals else math.nan
    return out


def markdown_table(names: Sequence[str], rows: Sequence[dict[str, float]], seconds: Sequence[float]) -> str:
    """The results as a markdown table, one row per case and a mean row.

    PSNR columns are dB (higher is better); EPE columns are px as "median / mean" (lower
    is better).
    """
    head = (
        "| case | A′ PSNR | A′ all | A′=A | A′=CT | A′ oracle | B PSNR | B all | B=B′ | B=CT | B oracle "
        "| EPE a→b | zero a→b | EPE b→a | zero b→a | A′ edge | B edge | s |\n"
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    )

    def line(name: str, r: dict[str, float], secs: float) -> str:
        p = [f"{r[k]:.2f}" for k in METRICS[:10]]
        e = [f"{r[METRICS[i]]:.2f} / {r[METRICS[i + 1]]:.2f}" for i in range(10, 18, 2)]
        edge = ["–" if math.isnan(r[k]) else f"{r[k]:.2f}" for k in METRICS[18:20]]
        return f"| {name} | " + " | ".join(p + e + edge) + f" | {secs:.0f} |\n"

    body = "".join(line(n, r, s) for n, r, s in zip(names, rows, seconds))
    return head + body + line("**mean**", mean_row(rows), sum(seconds) / max(len(seconds), 1))


def moved_table(names: Sequence[str], moved: Sequence[dict[str, dict[str, float]]]) -> str:
    """The fraction of pixels each search moved from its start, per case, stage and
    direction (``analogy_core.moved_fractions``), as a markdown table with a mean row."""
    stages = list(dict.fromkeys(stage for m in moved for stage in m))
    head = "| case | " + " | ".join(f"{s} a→b / b→a" for s in stages) + " |\n"
    head += "|---|" + "--:|" * len(stages) + "\n"

    def cell(m: dict[str, dict[str, float]], stage: str) -> str:
        return f"{m[stage]['ab']:.2f} / {m[stage]['ba']:.2f}" if stage in m else "–"

    body = "".join(f"| {n} | " + " | ".join(cell(m, s) for s in stages) + " |\n" for n, m in zip(names, moved))
    mean = {
        s: {d: sum(m[s][d] for m in moved if s in m) / max(1, sum(s in m for m in moved)) for d in ("ab", "ba")}
        for s in stages
    }
    return head + body + "| **mean** | " + " | ".join(cell(mean, s) for s in stages) + " |\n"
