#!/usr/bin/env bash
# Run the A/B arm docs/ab/ARM.json on the SFT checkpoints of rollouts-100.json (run
# docs/ab/rollouts.sh first; demos, SFT and the expert's rate are copied), so that the arm differs
# from rollouts-100 only in what its spec changes. Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
arm=$1
bash docs/ab/reuse-sft.sh "$OUT/rollouts-100" "$OUT/$arm"
.venv/bin/habc experiment --config-file "docs/ab/$arm.json" --out "$OUT/$arm" --jobs 2 --no-report
