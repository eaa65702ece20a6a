"""Layout converters between ComfyUI's IMAGE/MASK/field values and the core's tensors.

ComfyUI's IMAGE is [B, H, W, C] float in 0..1 and MASK is [B, H, W]; the core works in
(N, C, H, W). These are the only places that convert.
"""

from __future__ import annotations

import comfy.model_management
import torch

from ..analogy_core import FlowField, Guide, Regions


def image_to_core(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """ComfyUI IMAGE [B, H, W, C] → core layout (N, 3, H, W).

    An alpha channel is dropped (the analogy uses colour only); one grey channel is
    repeated to RGB.

    Raises:
        ValueError: not a 4-D image with 1, 3 or 4 channels; the message shows the shape.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[-1] not in (1, 3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name} must be an IMAGE of shape [B, H, W, 3] (or 1/4 channels), got {shape}")
    if image.shape[-1] == 4:
        image = image[..., :3]  # drop alpha explicitly
    elif image.shape[-1] == 1:
        image = image.expand(-1, -1, -1, 3)
    return image.movedim(-1, 1)


def image_from_core(image: torch.Tensor) -> torch.Tensor:
    """Core (N, 3, H, W) → ComfyUI IMAGE [B, H, W, 3] float32 on the intermediate device."""
    out = image.movedim(1, -1).to(device=comfy.model_management.intermediate_device(), dtype=torch.float32)
    return out.contiguous()


def mask_to_core(mask: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """ComfyUI MASK [B, H, W] (or [H, W]) → core layout (N, 1, H, W).

    Raises:
        ValueError: not a 2-D or 3-D mask; the message shows the shape.
    """
    if not isinstance(mask, torch.Tensor) or mask.dim() not in (2, 3):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a MASK of shape [B, H, W], got {shape}")
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    return mask.unsqueeze(1)


def mask_from_core(mask: torch.Tensor) -> torch.Tensor:
    """Core (N, 1, H, W) → ComfyUI MASK [B, H, W] float32 on the intermediate device."""
    out = mask[:, 0].to(device=comfy.model_management.intermediate_device(), dtype=torch.float32)
    return out.contiguous()


def field_from_core(flow: torch.Tensor, target_hw: tuple[int, int]) -> FlowField:
    """Core (N, H, W, 2) float32 flow → DIA_NNF value on the intermediate device."""
    return FlowField(flow.to(device=comfy.model_management.intermediate_device(), dtype=torch.float32), target_hw)


def regions_from_inputs(
    mask_a: torch.Tensor | None = None,
    mask_bp: torch.Tensor | None = None,
    feather: int = 8,
    ignore_bp: torch.Tensor | None = None,
    guide: Guide | None = None,
) -> Regions | None:
    """The optional region inputs (ComfyUI MASKs, a DIA_GUIDE) → ``analogy_core.Regions``
    (``None`` when none is connected). Sizes and batches are checked by the core."""
    regions = Regions(
        limit_a=None if mask_a is None else mask_to_core(mask_a, "mask_a"),
        limit_bp=None if mask_bp is None else mask_to_core(mask_bp, "mask_bp"),
        feather=int(feather),
        ignore_bp=None if ignore_bp is None else mask_to_core(ignore_bp, "ignore_bp"),
        guide=guide,
    )
    return None if regions.empty else regions
