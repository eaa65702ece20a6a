"""bench.speed's table: every stage the pipeline reports lands in one column."""

from __future__ import annotations

from bench.speed import _group, table


def test_every_pipeline_stage_has_a_column_and_refinements_share_one():
    timings = {"features": 1.0, "nnf relu5_1": 2.0, "deconv relu5_1": 3.0, "fusion relu4_1": 0.5,
               "nnf relu1_1": 4.0, "pixel refinement": 0.75, "vote": 0.25, "wls refinement": 0.5}
    assert _group(timings) == {"features": 1.0, "nnf": 6.0, "deconv": 3.0, "fusion": 0.5, "refine": 1.25, "vote": 0.25}
    row = {"size": "224", "device": "cpu", "timings": timings, "total": 12.0, "peak_memory_bytes": 2**30,
           "vgg_forward": 0.5}
    line = table([row]).splitlines()[2]
    assert line.startswith("| 224 | cpu | 1.00 | 6.0 | 3.0 | 0.50 | 1.25 | 0.25 | 12.0 | 1.00 GiB | 0.500 | 24 | 2.50 |")
