#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with the CPU build of torch 2.13.0 installed
# first (an unpinned request would pull several GB of CUDA wheels), then habc and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# MuJoCo renders offscreen on the CPU through OSMesa (Debian libosmesa6); only the report's
# rollout animations need it.
if ! ldconfig -p | grep -q libOSMesa && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6) \
    >/dev/null 2>&1 || echo "setup: could not install libosmesa6; rollout animations disabled"
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.habc-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import torch, metaworld, habc" 
  touch "$stamp"
fi
