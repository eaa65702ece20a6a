#!/usr/bin/env bash
# Set up (first run only) and run the demo analogy on the bundled images in demo/.
# Writes demo_out/a_prime.png, b.png, flow_ab.npy, flow_ba.npy, report.json and
# demo_out/side_by_side.png (A | B' | A' | B). Extra arguments go to the CLI,
# e.g. `bash scripts/demo.sh --preset paper`.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"
.venv/bin/python -m analogy_core demo/a.png demo/bp.png --out demo_out --overwrite "$@"
.venv/bin/python scripts/side_by_side.py demo/a.png demo/bp.png demo_out/a_prime.png demo_out/b.png demo_out/side_by_side.png
echo "demo done: open demo_out/side_by_side.png (A | B' | A' | B)"
