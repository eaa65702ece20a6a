"""Deep Image Analogy (Liao et al., SIGGRAPH 2017) in plain PyTorch.

The public API; nothing here imports ComfyUI.
"""

from __future__ import annotations

from .config import (
    DEFAULT_PRESET,
    LAYERS,
    PRESETS,
    SETTINGS,
    AnalogyConfig,
    Preset,
    describe_preset,
    get_preset,
    preset_values,
    resolve_config,
    same_settings,
)
from .deconv import deconvolve
from .download import WeightsDownloadError, download_weights
from .field import FlowField, flow_to_colour, warp_by_field
from .fusion import feature_mask, fuse
from .image import PanZoomClip, contact_sheet, luminance, pan_zoom, pan_zoom_source, pixel_grid, sample_bilinear
from .io import ImageFileError, load_image, peak_memory_bytes, resolve_device, save_image
from .masks import Guide, Regions, blend_limit, feather_weights, guide_from_label_images, guide_from_masks
from .nnf import clamp_nnf, flow_to_nnf, identity_nnf, nnf_to_flow, upsample_nnf
from .patchmatch import normalise_features, patchmatch
from .pipeline import (
    AnalogyResult,
    AnalogyState,
    apply_limits,
    deconvolve_layer,
    finish_photo,
    fuse_layer,
    limited_size,
    moved_fractions,
    prepare,
    reconstruct,
    refine_pixels,
    release_layer,
    restore_layer,
    run_analogy,
    search_layer,
    total_work,
)
from .progress import InterruptFn, ProgressFn, ProgressTracker
from .refine import wls_apply, wls_filter, wls_refine, wls_weights
from .vgg import CAFFE, TORCHVISION, VGG19, default_weights_path, load_vgg19
from .video import FrameResult, PreviousFrame, TemporalConfig, run_video
from .vote import patch_vote, warp

__all__ = [
    "CAFFE", "DEFAULT_PRESET", "LAYERS", "PRESETS", "SETTINGS", "TORCHVISION", "VGG19", "AnalogyConfig",
    "AnalogyResult", "AnalogyState", "FlowField", "FrameResult", "PanZoomClip", "PreviousFrame", "TemporalConfig", "ImageFileError", "InterruptFn", "Preset", "ProgressFn",
    "ProgressTracker", "WeightsDownloadError", "Guide", "Regions", "apply_limits", "blend_limit", "feather_weights",
    "guide_from_label_images", "guide_from_masks", "clamp_nnf", "contact_sheet", "deconvolve", "deconvolve_layer", "default_weights_path",
    "describe_preset", "download_weights", "feature_mask", "finish_photo", "flow_to_colour", "flow_to_nnf", "fuse", "fuse_layer", "get_preset",
    "identity_nnf", "limited_size", "load_image", "load_vgg19", "luminance", "moved_fractions", "nnf_to_flow", "normalise_features",
    "pan_zoom", "pan_zoom_source", "patch_vote", "patchmatch", "peak_memory_bytes", "pixel_grid", "prepare", "preset_values", "reconstruct", "refine_pixels",
    "release_layer", "resolve_config", "restore_layer", "resolve_device", "run_analogy", "run_video", "same_settings", "sample_bilinear", "save_image", "search_layer",
    "total_work", "upsample_nnf", "warp", "warp_by_field", "wls_apply", "wls_filter", "wls_refine", "wls_weights",
]
