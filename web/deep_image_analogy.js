// Deep Image Analogy: seeds stay fixed.
//
// ComfyUI 0.3.75's frontend starts the "control after generate" widget of every seed
// at "randomize", whatever the node asks for. Our seeds pick PatchMatch's random draws
// and must be the same on every layer of a step-by-step graph, so for the pack's own
// nodes we set that control to "fixed" when a node is created. A saved workflow is
// loaded after this runs, so it keeps whatever it saved. (Newer ComfyUI versions read
// "fixed" from the node definition; this is then a no-op.)
import { app } from "../../scripts/app.js";

app.registerExtension({
  name: "DeepImageAnalogy.FixedSeeds",
  nodeCreated(node) {
    if (!String(node.comfyClass ?? "").startsWith("DeepAnalogy_")) return;
    for (const widget of node.widgets ?? []) {
      if (widget.name !== "seed") continue;
      for (const control of widget.linkedWidgets ?? []) {
        if (control.name === "control_after_generate") control.value = "fixed";
      }
    }
  },
});
