#!/usr/bin/env bash
# Sets up .venv and runs the main job on the bundled default sample.
#   ./scripts/demo.sh [--output_dir DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh"
cd "$root"
TF_CPP_MIN_LOG_LEVEL=2 exec "$root/.venv/bin/python" -m pipelines.demo "$@"
