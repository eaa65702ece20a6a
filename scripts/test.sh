#!/usr/bin/env bash
# Set up (first run only) .venv and a real ComfyUI in .comfyui/, then run ruff, mypy --strict
# over the core and the nodes, and every test: core (with its docstring examples), nodes,
# benchmarks and the real-ComfyUI tests. Extra arguments go to pytest
# (e.g. `bash scripts/test.sh -m "not slow"` skips the ComfyUI server tests).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO_ROOT/scripts/setup.sh"
bash "$REPO_ROOT/scripts/setup_comfyui.sh"
cd "$REPO_ROOT"
.venv/bin/ruff check .
bash scripts/typecheck.sh
set +e
PYTHONPATH="$REPO_ROOT" .venv/bin/python -m pytest -ra "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "pytest collected no tests: treating that as a failure" >&2
    exit 1
fi
exit $rc
