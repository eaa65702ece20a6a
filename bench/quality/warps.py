"""Known backward warps T between pixel coordinates, B'(q) = A(T(q)), and their inverses."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol

import torch

from analogy_core.image import pixel_grid

Tensor = torch.Tensor

REF_SIZE = 224
"""Side length at which the warp parameters below are given; they scale with ``--size``."""


class Warp(Protocol):
    """A backward warp T between pixel coordinates: B'(q) = A(T(q)).

    Points are (..., 2) float64 tensors in (x, y) order, pixel centres at integers.
    """

    @property
    def name(self) -> str:
        """Short name used in case names."""
        ...

    def forward(self, q: Tensor) -> Tensor:
        """T(q): where pixel q of B' (and of B) takes its content from in A."""
        ...

    def inverse(self, p: Tensor) -> Tensor:
        """T⁻¹(p): where pixel p of A (and of A') lies in B'."""
        ...


@dataclass(frozen=True)
class ShiftWarp:
    """T(q) = q + (dx, dy): B' shows A moved by (−dx, −dy)."""

    dx: float
    dy: float
    name: str = "shift"

    def forward(self, q: Tensor) -> Tensor:
        """T(q) = q + (dx, dy)."""
        return q + q.new_tensor((self.dx, self.dy))

    def inverse(self, p: Tensor) -> Tensor:
        """T⁻¹(p) = p − (dx, dy)."""
        return p - p.new_tensor((self.dx, self.dy))


@dataclass(frozen=True)
class AffineWarp:
    """T(q) = M (q − c) + c + t, inverted analytically."""

    matrix: tuple[tuple[float, float], tuple[float, float]]
    centre: tuple[float, float]
    offset: tuple[float, float]
    name: str = "affine"

    @classmethod
    def similarity(
        cls, angle_deg: float, scale: float, offset: tuple[float, float], centre: tuple[float, float]
    ) -> AffineWarp:
        """Rotation by ``angle_deg`` and uniform ``scale`` about ``centre``, then ``offset``."""
        t = math.radians(angle_deg)
        c, s = scale * math.cos(t), scale * math.sin(t)
        return cls(((c, -s), (s, c)), centre, offset)

    def forward(self, q: Tensor) -> Tensor:
        """T(q) = M (q − c) + c + t."""
        m, c, t = q.new_tensor(self.matrix), q.new_tensor(self.centre), q.new_tensor(self.offset)
        return (q - c) @ m.T + c + t

    def inverse(self, p: Tensor) -> Tensor:
        """T⁻¹(p) = M⁻¹ (p − c − t) + c."""
        m, c, t = p.new_tensor(self.matrix), p.new_tensor(self.centre), p.new_tensor(self.offset)
        m_inv: Tensor = torch.linalg.inv(m)
        return (p - c - t) @ m_inv.T + c


@dataclass(frozen=True, eq=False)
class ElasticWarp:
    """T(q) = q + d(q) with a smooth displacement d, a sum of random low-frequency waves.

    d_c(q) = Σ_k amps[c, k] · sin(freqs[c, k] · q + phases[c, k]) for c ∈ {x, y}; it is
    defined everywhere, so T and its numerical inverse can be evaluated at any point.

    Attributes:
        freqs: (2, K, 2) float64 wave vectors in rad/px.
        phases: (2, K) float64.
        amps: (2, K) float64 amplitudes in px.
    """

    freqs: Tensor
    phases: Tensor
    amps: Tensor
    name: str = "elastic"

    @classmethod
    def random(cls, size: int, max_disp: float, seed: int, waves: int = 4) -> ElasticWarp:
        """A seeded random field on a ``size``×``size`` grid whose largest displacement
        there is ``max_disp`` px; wavelengths lie in [size/2, 1.5·size], so the field looks
        the same at every size."""
        g = torch.Generator().manual_seed(seed)
        angle = torch.rand(2, waves, generator=g, dtype=torch.float64) * 2 * math.pi
        wavelength = size * (0.5 + torch.rand(2, waves, generator=g, dtype=torch.float64))
        omega = 2 * math.pi / wavelength
        freqs = torch.stack((omega * torch.cos(angle), omega * torch.sin(angle)), dim=-1)
        phases = torch.rand(2, waves, generator=g, dtype=torch.float64) * 2 * math.pi
        amps = torch.randn(2, waves, generator=g, dtype=torch.float64)
        warp = cls(freqs, phases, amps)
        biggest = warp.displacement(pixel_grid(size, size, dtype=torch.float64)).norm(dim=-1).max()
        return cls(freqs, phases, amps * (max_disp / float(biggest)))

    def displacement(self, q: Tensor) -> Tensor:
        """d(q), (..., 2) float64."""
        # (..., 1, 1, 2) · (2, K, 2) → (..., 2, K)
        phase = (q[..., None, None, :].double() * self.freqs).sum(-1) + self.phases
        return (torch.sin(phase) * self.amps).sum(-1)

    def forward(self, q: Tensor) -> Tensor:
        """T(q) = q + d(q)."""
        return q + self.displacement(q).to(q.dtype)

    def inverse(self, p: Tensor, iters: int = 100, tol: float = 1e-9) -> Tensor:
        """T⁻¹(p) by the fixed-point iteration q ← p − d(q) (a contraction: |∇d| < 1).

        Raises:
            RuntimeError: the iteration did not converge (field too rough).
        """
        q = p.double()
        for _ in range(iters):
            q_next = p.double() - self.displacement(q)
            step = float((q_next - q).abs().max())
            q = q_next
            if step < tol:
                break
        residual = float((self.forward(q) - p.double()).abs().max())
        if residual > 1e-6:
            raise RuntimeError(f"inverse elastic warp did not converge (residual {residual:.2e} px)")
        return q.to(p.dtype)


@dataclass(frozen=True)
class Scene:
    """A warp together with the size of the B' it produces.

    Attributes:
        warp: the backward warp T from B''s pixels into A's.
        bp_hw: (H, W) of B' (and B).
    """

    warp: Warp
    bp_hw: tuple[int, int]


def standard_warps(size: int, seed: int = 0) -> list[Warp]:
    """The benchmark's three warps for a ``size``×``size`` A, scaled from their 224 px values.

    shift (+9, −6) px; affine: 5° rotation and ×1.06 scale about the centre, then (+3, −2)
    px; elastic: smooth random field of at most 5 px (seeded by ``seed``).
    """
    s = size / REF_SIZE
    c = ((size - 1) / 2, (size - 1) / 2)
    return [
        ShiftWarp(round(9 * s), round(-6 * s)),
        AffineWarp.similarity(5.0, 1.06, (3 * s, -2 * s), c),
        ElasticWarp.random(size, 5 * s, seed),
    ]


def extra_scenes(size: int) -> list[Scene]:
    """Harder geometry for a ``size``×``size`` A, scaled from the 224 px values.

    overlap: B' is A moved by (+30 %, +5 %) of its side, so only about two thirds of A
    appear in B' (the rest of B' shows picture beyond A); zoom: B' is 80 % × 95 % of A's
    size and shows A turned by 3° and shrunk by 1/1.2, so the two images differ in size,
    aspect and scale.
    """
    c_b = ((round(0.95 * size) - 1) / 2, (round(0.8 * size) - 1) / 2)
    c_a = ((size - 1) / 2, (size - 1) / 2)
    zoom = AffineWarp.similarity(3.0, 1.2, (c_a[0] - c_b[0], c_a[1] - c_b[1]), c_b)
    return [
        Scene(ShiftWarp(round(0.3 * size), round(0.05 * size), name="overlap"), (size, size)),
        Scene(dataclasses.replace(zoom, name="zoom"), (round(0.8 * size), round(0.95 * size))),
    ]
