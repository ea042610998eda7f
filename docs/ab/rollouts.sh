#!/usr/bin/env bash
# The rollouts-per-round A/B (docs/benchmarks.md, session 11): the 100-rollout arm trains the SFT
# checkpoints; the 20-rollout control arm and the beta = 0.25 arm reuse them (demos, SFT and the
# expert's rate are copied), so the arms differ only in what their specs change.
# Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
.venv/bin/habc experiment --config-file docs/ab/rollouts-100.json --out "$OUT/rollouts-100" --jobs 2 --no-report
for arm in rollouts-20 rollouts-100-beta; do
  bash docs/ab/arm.sh "$arm"
done
