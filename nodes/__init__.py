"""The ComfyUI nodes of the pack: one module per algorithm stage, all thin wrappers
around ``analogy_core``."""

from __future__ import annotations

from comfy_api.latest import io

from .analogy import DeepImageAnalogy
from .deconv import FeatureDeconvolution
from .demo import LoadDemoClip, LoadDemoImage
from .features import ExtractFeatures
from .fusion import FeatureFusion
from .helpers import VisualiseNNF, WarpImage, WarpMask, WLSRefine
from .model import LoadVGG19
from .nnf import NNFSearch
from .pixel import PixelRefinement
from .reconstruct import PatchVoteReconstruction
from .regions import RegionPairs
from .video import VideoAnalogy

NODES: list[type[io.ComfyNode]] = [
    LoadVGG19,
    DeepImageAnalogy,
    VideoAnalogy,
    ExtractFeatures,
    NNFSearch,
    FeatureDeconvolution,
    FeatureFusion,
    PixelRefinement,
    PatchVoteReconstruction,
    RegionPairs,
    VisualiseNNF,
    WarpImage,
    WarpMask,
    WLSRefine,
    LoadDemoImage,
    LoadDemoClip,
]
"""Every node class, in the order they appear in the menu."""

__all__ = [
    "NODES", "DeepImageAnalogy", "ExtractFeatures", "FeatureDeconvolution", "FeatureFusion", "LoadDemoClip", "LoadDemoImage", "LoadVGG19",
    "NNFSearch", "PatchVoteReconstruction", "PixelRefinement", "RegionPairs", "VideoAnalogy", "VisualiseNNF", "WLSRefine", "WarpImage", "WarpMask",
]
