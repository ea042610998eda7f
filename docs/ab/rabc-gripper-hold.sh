#!/usr/bin/env bash
# The rabc-gripper-hold A/B (session 26): two arms on the SFT checkpoints of session 25's rabc
# control (OUT/rabc, from docs/ab/rabc-gripper.sh): holding stages, then the command's switches
# with the new rule past the last stage. Resumable: re-run to continue.
set -euo pipefail
for arm in rabc-gripper-hold rabc-gripper-parity; do
  CONTROL=rabc bash "$(dirname "$0")/arm.sh" "$arm"
done
