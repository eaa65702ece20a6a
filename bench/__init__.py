"""Benchmarks of the Deep Image Analogy core (not part of the installed pack).

``python -m bench.quality`` runs the known-answer quality benchmark on real photographs.
"""
