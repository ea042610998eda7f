#!/usr/bin/env bash
# The rabc-gripper-near A/B (session 28): holding stages with the approach split at the hand's
# entry into reach of its first grasp, on the SFT checkpoints of session 25's rabc control
# (OUT/rabc, from docs/ab/rabc-gripper.sh). Resumable: re-run to continue.
CONTROL=rabc exec bash "$(dirname "$0")/arm.sh" rabc-gripper-near
