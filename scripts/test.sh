#!/usr/bin/env bash
# Set up (if needed) and run the checks: ruff, mypy and the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the slow end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The report test loads pages in headless Chromium (Debian package `chromium`).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || echo "test.sh: could not install chromium; the browser test will skip"
fi
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
.venv/bin/ruff check src tests scripts
.venv/bin/mypy
if [ "$#" -eq 0 ]; then
  set -- -m "not slow"
fi
.venv/bin/python -m pytest -q "$@"
