#!/usr/bin/env bash
# Set up (if needed) and run the main job: `habc pipeline` with its defaults, or with the given
# options (see `.venv/bin/habc pipeline --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/habc pipeline "$@"
