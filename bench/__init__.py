"""Benchmarks of the Deep Image Analogy core (not part of the installed pack).

``python -m bench.quality`` runs the known-answer quality benchmark on real photographs,
``python -m bench.speed`` times each stage at several sizes, and ``python -m bench.latency``
measures how many seconds a cancel takes. Wall-clock figures live here, never in tests.
"""
