#!/usr/bin/env bash
# Run the A/B arm docs/ab/ARM.json on the SFT checkpoints of the control experiment OUT/CONTROL
# (default rollouts-100, from docs/ab/rollouts.sh; demos, SFT and the expert's rate are copied),
# so that the arm differs from its control only in what its spec changes. Resumable: re-run to
# continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
CONTROL=${CONTROL:-rollouts-100}
arm=$1
bash docs/ab/reuse-sft.sh "$OUT/$CONTROL" "$OUT/$arm"
.venv/bin/habc experiment --config-file "docs/ab/$arm.json" --out "$OUT/$arm" --jobs 2 --no-report
