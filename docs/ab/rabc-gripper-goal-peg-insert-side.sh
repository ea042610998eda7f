#!/usr/bin/env bash
# The rabc A/B arm with the goal split on peg-insert-side (session 31), on the SFT checkpoints
# of rabc-peg-insert-side (run docs/ab/rabc-peg-insert-side.sh first). Resumable.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONTROL=rabc-peg-insert-side OUT=${OUT:-runs/ab} exec bash docs/ab/arm.sh rabc-gripper-goal-peg-insert-side
