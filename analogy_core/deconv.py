"""Feature deconvolution: find a lower-layer map whose forward pass matches a target."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._check import check_finite, check_shape
from .vgg import VGG19


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


def deconvolve(
    vgg: VGG19,
    start: str,
    end: str,
    target: torch.Tensor,
    init: torch.Tensor,
    *,
    iters: int = 100,
    history: int = 4,
    check_interrupt: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Minimise ‖CNN_start→end(x) − target‖² over x with L-BFGS, starting from ``init``.

    Args:
        vgg: the network whose sub-network ``start → end`` is inverted.
        start: layer name (or ``"input"``) where x lives.
        end: deeper layer name where ``target`` lives.
        target: (N, C_end, H_end, W_end) features to reproduce.
        init: (N, C_start, H, W) initial guess (e.g. warped features of the layer).
        iters: L-BFGS iterations (0 returns ``init``).
        history: L-BFGS history size.
        check_interrupt: called at every function evaluation; raise from it to stop.
        progress: called with 1 per function evaluation, at most ``iters`` times.

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
        with torch.no_grad():
            probe = net(init.detach().clone())
        if probe.shape != tgt.shape:
            raise ValueError(
                f"init {tuple(init.shape)} maps to {tuple(probe.shape)} at {end}, but target is {tuple(tgt.shape)}"
            )
        if iters == 0:
            return init
        # Optimise a rescaled copy of x, stored channels-last (NHWC contiguous; oneDNN's
        # fast layout on CPU), against the loss relative to the target's energy. VGG maps
        # reach 1e3 while the gradient is tiny, and without this scaling L-BFGS's first
        # step and line search stall in float32.
        rms = init.detach().pow(2).mean().sqrt()
        scale = rms if float(rms) > 1e-6 else torch.ones_like(rms)
        energy = tgt.pow(2).sum().clamp_min(1e-12)
        var = (init.detach() / scale).permute(0, 2, 3, 1).contiguous().requires_grad_(True)
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
            nonlocal evals
            if check_interrupt is not None:
                check_interrupt()
            opt.zero_grad()
            loss: torch.Tensor = (net(var.permute(0, 3, 1, 2) * scale) - tgt).pow(2).sum() / energy
            loss.backward()  # type: ignore[no-untyped-call]
            evals += 1
            if progress is not None and evals <= iters:
                progress(1)
            return loss

        opt.step(closure)  # type: ignore[no-untyped-call]
        if progress is not None and evals < iters:
            progress(iters - evals)
        result = (var.detach() * scale).permute(0, 3, 1, 2).contiguous()
    check_finite(result, f"deconvolution result at {start}")
    return result
