#!/usr/bin/env bash
# The operator-quality A/B (docs/benchmarks.md, session 12): operator-noisy.json, which differs
# from rollouts-100 only in the operator's action noise. Resumable: re-run to continue.
set -euo pipefail
bash "$(dirname "$0")/arm.sh" operator-noisy
