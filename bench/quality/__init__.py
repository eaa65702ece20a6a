"""Known-answer quality benchmark of Deep Image Analogy on real photographs.

Each case starts from a photograph A and builds B' = appearance(warp(A)) with a known
backward warp T and a known pointwise appearance change, so that every output of the
analogy has a ground truth:

- A' should equal appearance(A) (A's geometry, B''s appearance);
- B should equal warp(A), i.e. B(q) = A(T(q)) (B''s geometry, A's appearance);
- flow_ab(p) = T⁻¹(p) − p (pixel p of A shows the content of B' at T⁻¹(p));
- flow_ba(q) = T(q) − q.

Borders: B' is sampled from an enlarged copy of the photo (A plus a margin of real
picture on every side; A is its centre), so B' never has empty or mirrored borders.
Content of B' that comes from the margin has no match inside A; such pixels, and pixels
of A whose match falls outside B', are left out of the scores.

Scores per case: PSNR of A' and B against their ground truth over the pixels whose true
match lies inside the other image, beside two baselines each (the unchanged input, and
a global Reinhard-style colour transfer in CIELAB); median and mean end-point error (EPE)
of both flows on textured pixels, beside the zero flow.

The package: ``warps`` (known geometric changes), ``appearance`` (known colour changes
and the colour-transfer baseline), ``cases`` (building the known-answer pairs),
``metrics`` (scores and the report table) and ``cli`` (``python -m bench.quality``).

Run ``python -m bench.quality --help``. The photos are scikit-image's CC0 samples,
fetched once into ``.cache/bench/`` (see ``bench._photos``), or any images via ``--photos``.
"""

from __future__ import annotations
