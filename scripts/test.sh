#!/usr/bin/env bash
# Set up (if needed) and run the checks: ruff, mypy and the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the slow end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
.venv/bin/ruff check src tests
.venv/bin/mypy
if [ "$#" -eq 0 ]; then
  set -- -m "not slow"
fi
.venv/bin/python -m pytest -q "$@"
