"""Deep Image Analogy for ComfyUI: the pack's entry point.

ComfyUI imports this file from ``custom_nodes/<pack>/``. It only registers the
``models/vgg`` weight folder (path bookkeeping, no file access), lists the nodes and
names the folder of the pack's frontend extension; the algorithm lives in
``analogy_core`` and runs when a node executes.
"""

from __future__ import annotations

import importlib.util
import logging
import sys

WEB_DIRECTORY = "./web"
"""The pack's frontend extension (ComfyUI serves it): seeds of new nodes start at "fixed"."""

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

elif "folder_paths" in sys.modules:
    # Loaded by a ComfyUI (it imports folder_paths before any custom node) that predates the
    # V3 node API: say so once rather than register nothing silently.
    logging.getLogger(__name__).error(
        "Deep Image Analogy needs ComfyUI's V3 node API (the comfy_api package), which this ComfyUI lacks; "
        "update ComfyUI to a current release. No Deep Image Analogy nodes were registered."
    )

# Outside ComfyUI there is nothing to register and nothing to report: the repository root is
# this package, so tools such as pytest import this file while collecting tests.
