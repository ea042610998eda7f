#!/usr/bin/env bash
# The rabc A/B of the object-relative split on TASK (session 30): the control rabc-TASK.json
# (the expert's phases), then the arm rabc-gripper-object-TASK.json on the control's SFT
# checkpoints. Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
task=$1
.venv/bin/habc experiment --config-file "docs/ab/rabc-$task.json" --out "$OUT/rabc-$task" --jobs 2 --no-report
CONTROL=rabc-$task OUT=$OUT bash docs/ab/arm.sh "rabc-gripper-object-$task"
