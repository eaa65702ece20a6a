"""Feature deconvolution: find a lower-layer map whose forward pass matches a target."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._check import check_finite, check_shape
from .progress import InterruptFn, ProgressFn, ProgressTracker
from .vgg import VGG19

Advance = Callable[[int], None]


def _autograd_ready(net: nn.Sequential) -> nn.Sequential:
    """``net`` itself, or a copy whose parameters are normal tensors.

    Parameters created under ``torch.inference_mode`` (ComfyUI runs nodes that way) cannot
    take part in a backward pass; such layers are rebuilt with cloned parameters.
    """
    if not any(p.is_inference() for p in net.parameters()):
        return net
    layers: list[nn.Module] = []
    for m in net:
        if isinstance(m, nn.Conv2d):
            conv = nn.Conv2d(m.in_channels, m.out_channels, 3, padding=1)
            conv.weight = nn.Parameter(m.weight.clone(memory_format=torch.preserve_format), requires_grad=False)
            assert m.bias is not None
            conv.bias = nn.Parameter(m.bias.clone(), requires_grad=False)
            layers.append(conv)
        else:
            layers.append(m)
    return nn.Sequential(*layers)


FIRST_STEP = 0.03
"""Length of L-BFGS's first step relative to ‖x‖ (see ``_lbfgs``)."""

TILE_ELEMENTS = 24 << 20
"""Largest map (elements of x or of any map the sub-network computes from it, halo
included) optimised in one piece. Larger problems are optimised tile by tile, which
bounds the memory of L-BFGS (about 16 copies of x) and of the autograd graph whatever
the image size. The largest map of any deconvolution of an image within the default
limits (350,000 px²) is 64 channels at full size, 21.4 M elements, so such images are
never tiled; at 1024×1024 px the relu4_1 deconvolution (32 M) and the two finer ones are."""


def receptive_radius(net: nn.Sequential) -> int:
    """How far, in input pixels, an output of ``net`` sees past its own input cell.

    An output at (i, j) of a net that pools by s covers the input cell
    [i·s, i·s + s) × [j·s, j·s + s); each 3×3 convolution widens what it sees by the
    stride at its depth, pooling windows coincide with the cells and add nothing.
    """
    radius, stride = 0, 1
    for m in net:
        if isinstance(m, nn.Conv2d):
            radius += (m.kernel_size[0] // 2) * m.dilation[0] * stride
        elif isinstance(m, nn.MaxPool2d):
            stride *= m.stride if isinstance(m.stride, int) else m.stride[0]
    return radius


def _largest_map(net: nn.Sequential, x_shape: tuple[int, ...]) -> int:
    """Elements of the largest of x and the maps ``net`` computes from it."""
    n, c, h, w = x_shape
    largest = n * c * h * w
    for m in net:
        if isinstance(m, nn.Conv2d):
            c = m.out_channels
        elif isinstance(m, nn.MaxPool2d):
            h, w = h // 2, w // 2
        largest = max(largest, n * c * h * w)
    return largest


def _tiles(length: int, tile: int, align: int) -> list[tuple[int, int]]:
    """Split ``range(length)`` into spans of about ``tile``, boundaries multiples of ``align``."""
    n = max(1, -(-length // tile))
    cuts = [min(length, round(length * k / n / align) * align) for k in range(n)] + [length]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def deconvolve(
    vgg: VGG19,
    start: str,
    end: str,
    target: torch.Tensor,
    init: torch.Tensor,
    *,
    lbfgs_iters: int = 100,
    lbfgs_history: int = 4,
    tile_elements: int = TILE_ELEMENTS,
    check_interrupt: InterruptFn | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Minimise ‖CNN_start→end(x) − target‖² over x with L-BFGS, starting from ``init``.

    Maps larger than ``tile_elements`` are solved in tiles: each tile's x is optimised
    with a halo of twice the sub-network's receptive radius, against the outputs that
    its crop computes exactly (those at least one receptive radius from a cut), and only
    the tile itself is kept. Untiled maps give exactly the one-piece result.

    Args:
        vgg: the network whose sub-network ``start → end`` is inverted.
        start: layer name (or ``"input"``) where x lives.
        end: deeper layer name where ``target`` lives.
        target: (N, C_end, H_end, W_end) features to reproduce.
        init: (N, C_start, H, W) initial guess (e.g. warped features of the layer).
        lbfgs_iters: L-BFGS iterations (0 returns ``init``).
        lbfgs_history: L-BFGS history size.
        tile_elements: largest map (x, or any map the sub-network computes from it) optimised
            in one piece; see ``TILE_ELEMENTS``.
        check_interrupt: called before every function evaluation; raise from it to stop.
        progress: ``progress(done, total, stage)`` with ``total = lbfgs_iters`` (one unit
            per evaluation, or per ``lbfgs_iters``-th of the tiles' evaluations), stage
            ``"deconvolution"``.

    Returns:
        (N, C_start, H, W) optimised map, detached, same device and dtype as ``init``.

    Raises:
        ValueError: shapes disagree with the sub-network, or the result is not finite.
    """
    check_shape(target, "N C H W", "target")
    check_shape(init, "N C H W", "init")
    net = vgg.subnet(start, end)
    with torch.inference_mode(False), torch.enable_grad():
        net = _autograd_ready(net)
        tgt = target.detach().clone()
        scale_f = 1
        for m in net:
            if isinstance(m, nn.MaxPool2d):
                scale_f *= 2
        with torch.no_grad():  # channels and batch from a corner; size from the pooling
            probe = net(init.detach()[..., : 2 * scale_f, : 2 * scale_f].clone())
        want = (*probe.shape[:2], init.shape[-2] // scale_f, init.shape[-1] // scale_f)
        if tuple(tgt.shape) != want:
            raise ValueError(f"init {tuple(init.shape)} maps to {want} at {end}, but target is {tuple(tgt.shape)}")
        if lbfgs_iters == 0:
            return init
        tracker = ProgressTracker(progress, lbfgs_iters, "deconvolution")
        largest = _largest_map(net, tuple(init.shape))
        if largest <= tile_elements:
            result = _lbfgs(net, tgt, init.detach(), None, lbfgs_iters, lbfgs_history, check_interrupt,
                            tracker.advance)
        else:
            result = _tiled(net, tgt, init.detach(), scale_f, largest, lbfgs_iters, lbfgs_history, tile_elements,
                            check_interrupt, tracker.advance)
    check_finite(result, f"deconvolution result at {start}")
    return result


def _tiled(
    net: nn.Sequential,
    tgt: torch.Tensor,
    init: torch.Tensor,
    scale_f: int,
    largest: int,
    iters: int,
    history: int,
    tile_elements: int,
    check_interrupt: InterruptFn | None,
    advance: Advance,
) -> torch.Tensor:
    h, w = init.shape[-2:]
    he, we = tgt.shape[-2:]
    rad = receptive_radius(net)
    rad_end = -(-rad // scale_f)  # outputs this close to a cut see the cut's zero padding
    halo = 2 * rad_end * scale_f  # x this far round a tile feeds every exact output touching it
    # tile side such that the largest map of one tile (halo included) fits tile_elements
    per_pixel = largest / (h * w)
    side = max(scale_f, int((tile_elements / per_pixel) ** 0.5) - 2 * halo)
    rows, cols = _tiles(h, side, scale_f), _tiles(w, side, scale_f)
    count, reported = len(rows) * len(cols), 0
    done = 0

    def tile_progress(k: int) -> None:
        # iters units in all, spread evenly over the tiles' evaluations
        nonlocal done, reported
        done += k
        due = done // count
        if due > reported:
            advance(due - reported)
            reported = due

    out = torch.empty_like(init)
    for y0, y1 in rows:
        for x0, x1 in cols:
            cy0, cy1 = max(0, y0 - halo), min(h, y1 + halo)
            cx0, cx1 = max(0, x0 - halo), min(w, x1 + halo)
            ey0, ey1 = cy0 // scale_f, min(he, cy1 // scale_f)
            ex0, ex1 = cx0 // scale_f, min(we, cx1 // scale_f)
            # mask the outputs that see a cut (not an image border) through the padding
            mask = torch.zeros(1, 1, ey1 - ey0, ex1 - ex0, device=init.device, dtype=init.dtype)
            my0 = rad_end if cy0 > 0 else 0
            my1 = (ey1 - ey0) - (rad_end if cy1 < h else 0)
            mx0 = rad_end if cx0 > 0 else 0
            mx1 = (ex1 - ex0) - (rad_end if cx1 < w else 0)
            mask[..., my0:my1, mx0:mx1] = 1.0
            x = _lbfgs(net, tgt[..., ey0:ey1, ex0:ex1], init[..., cy0:cy1, cx0:cx1], mask, iters, history,
                       check_interrupt, tile_progress)
            out[..., y0:y1, x0:x1] = x[..., y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
    if reported < iters:
        advance(iters - reported)
    return out


def _lbfgs(
    net: nn.Sequential,
    tgt: torch.Tensor,
    init: torch.Tensor,
    mask: torch.Tensor | None,
    iters: int,
    history: int,
    check_interrupt: InterruptFn | None,
    advance: Advance,
) -> torch.Tensor:
    """One L-BFGS solve of ``min ‖mask·(net(x) − tgt)‖²`` from ``init`` (grad enabled)."""
    # Optimise a rescaled copy of x, stored channels-last (NHWC contiguous; oneDNN's fast
    # layout on CPU), against the loss relative to the target's energy. VGG maps reach 1e3
    # while the gradient is tiny, and without this scaling L-BFGS's first step and line
    # search stall in float32.
    rms = init.pow(2).mean().sqrt()
    scale = rms if float(rms) > 1e-6 else torch.ones_like(rms)
    energy = (tgt.pow(2) if mask is None else tgt.pow(2) * mask).sum().clamp_min(1e-12)
    unit = (init / scale).permute(0, 2, 3, 1).contiguous()

    def objective(v: torch.Tensor, v_scale: torch.Tensor) -> torch.Tensor:
        diff = net(v.permute(0, 3, 1, 2) * v_scale) - tgt
        loss: torch.Tensor = (diff.pow(2) if mask is None else diff.pow(2) * mask).sum() / energy
        return loss

    # L-BFGS's first step is g / ‖g‖₁, far too short for a map of millions of values: the
    # line search then spends about five evaluations growing it. Scaling the variable by k
    # makes that first step FIRST_STEP × ‖x‖ long instead (measured best of 1e-3 … 1e-1).
    if check_interrupt is not None:
        check_interrupt()
    probe = unit.clone().requires_grad_(True)
    first_loss = objective(probe, scale)
    first_loss.backward()  # type: ignore[no-untyped-call]
    g = probe.grad
    assert g is not None
    k = g.norm() / (g.abs().sum() * FIRST_STEP * unit.norm())
    if not bool(torch.isfinite(k)) or float(k) <= 0:  # zero gradient or map: plain start
        k = torch.ones_like(rms)
    var = (unit * k).requires_grad_(True)
    first: tuple[torch.Tensor, torch.Tensor] | None = (first_loss.detach(), g / k)
    del probe, g
    opt = torch.optim.LBFGS(
        [var],
        lr=1.0,
        max_iter=iters,
        history_size=history,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
    evals = 0

    def closure() -> torch.Tensor:
        nonlocal evals, first
        if check_interrupt is not None:
            check_interrupt()
        opt.zero_grad()
        loss: torch.Tensor
        if first is not None:  # L-BFGS starts where the probe above already evaluated
            loss, var.grad = first
            first = None
        else:
            loss = objective(var, scale / k)
            loss.backward()  # type: ignore[no-untyped-call]
        evals += 1
        if evals <= iters:
            advance(1)
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    if evals < iters:
        advance(iters - evals)
    out: torch.Tensor = (var.detach() * (scale / k)).permute(0, 3, 1, 2).contiguous()
    return out
