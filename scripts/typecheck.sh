#!/usr/bin/env bash
# mypy --strict over the whole pack: the core, the nodes and the entry point.
#
# The nodes import the core relatively (`from ..analogy_core import ...`) because ComfyUI
# imports the repository as one package. mypy follows such imports only when that package
# has a name, so the pack is checked through a temporary link called deep_image_analogy
# (the folder name ComfyUI and the tests use). Plain `.venv/bin/mypy` checks the core alone.
# Extra arguments go to mypy.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LINK_DIR="$(mktemp -d)"
trap 'rm -rf "$LINK_DIR"' EXIT
ln -s "$REPO_ROOT" "$LINK_DIR/deep_image_analogy"
cd "$LINK_DIR"
"$REPO_ROOT/.venv/bin/mypy" --config-file "$REPO_ROOT/pyproject.toml" --cache-dir "$REPO_ROOT/.mypy_cache/pack" \
    -m deep_image_analogy -p deep_image_analogy.analogy_core -p deep_image_analogy.nodes "$@"
