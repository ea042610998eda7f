#!/usr/bin/env bash
# The rabc-disassemble A/B (session 30): the control rabc-disassemble.json (the expert's phases),
# then the arm rabc-gripper-object-disassemble.json on the control's SFT checkpoints.
# Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
.venv/bin/habc experiment --config-file docs/ab/rabc-disassemble.json --out "$OUT/rabc-disassemble" --jobs 2 --no-report
CONTROL=rabc-disassemble OUT=$OUT bash docs/ab/arm.sh rabc-gripper-object-disassemble
