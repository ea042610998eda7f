#!/usr/bin/env bash
# The rabc-gripper A/B (session 25): the control rabc.json re-run on this commit, then the arm
# rabc-gripper.json on the control's SFT checkpoints. Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
.venv/bin/habc experiment --config-file docs/ab/rabc.json --out "$OUT/rabc" --jobs 2 --no-report
CONTROL=rabc OUT=$OUT bash docs/ab/arm.sh rabc-gripper
