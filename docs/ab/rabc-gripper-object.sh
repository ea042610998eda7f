#!/usr/bin/env bash
# The rabc-gripper-object A/B (session 29): holding stages with the approach split at the hand
# within reach of the demos' grasp point on the object, on the SFT checkpoints of session 25's
# rabc control (OUT/rabc, from docs/ab/rabc-gripper.sh). Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
bash docs/ab/reuse-sft.sh "$OUT/rabc" "$OUT/rabc-gripper-object"
.venv/bin/habc experiment --config-file docs/ab/rabc-gripper-object.json \
    --out "$OUT/rabc-gripper-object" --jobs 2 --no-report
