#!/usr/bin/env bash
# Step 2 of the rollouts-per-round A/B: habc_ir for 3 more rounds from the Step-1 habc runs of
# rollouts-100.json, in the same directory (run docs/ab/rollouts.sh first). Resumable.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
.venv/bin/habc experiment --config-file docs/ab/rollouts-100-ir.json --out "$OUT/rollouts-100" --jobs 2 --no-report
