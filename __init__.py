"""Deep Image Analogy for ComfyUI: the pack's entry point.

ComfyUI imports this file from ``custom_nodes/<pack>/``. It only registers the
``models/vgg`` weight folder (path bookkeeping, no file access) and lists the nodes;
the algorithm lives in ``analogy_core`` and runs when a node executes.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("comfy_api") is not None:
    from comfy_api.latest import ComfyExtension, io

    from .nodes import NODES
    from .nodes._weights import register_vgg_folder

    register_vgg_folder()

    class DeepImageAnalogyExtension(ComfyExtension):
        async def get_node_list(self) -> list[type[io.ComfyNode]]:
            return list(NODES)

    async def comfy_entrypoint() -> DeepImageAnalogyExtension:
        """Called by ComfyUI after import; returns the extension listing every node."""
        return DeepImageAnalogyExtension()

# Without ComfyUI there is nothing to register: the repository root is this package, so
# tools such as pytest import this file while collecting tests. Inside ComfyUI
# comfy_api is always importable and any error above is reported as usual.
