#!/usr/bin/env bash
# The rabc-gripper-near A/B (session 28): holding stages with the approach split at the hand's
# entry into reach of its first grasp, on the SFT checkpoints of session 25's rabc control
# (OUT/rabc, from docs/ab/rabc-gripper.sh). Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
bash docs/ab/reuse-sft.sh "$OUT/rabc" "$OUT/rabc-gripper-near"
.venv/bin/habc experiment --config-file docs/ab/rabc-gripper-near.json \
    --out "$OUT/rabc-gripper-near" --jobs 2 --no-report
