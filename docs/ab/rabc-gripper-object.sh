#!/usr/bin/env bash
# The rabc-gripper-object A/B (session 29): holding stages with the approach split at the hand
# within reach of the demos' grasp point on the object, on the SFT checkpoints of session 25's
# rabc control (OUT/rabc, from docs/ab/rabc-gripper.sh). Resumable: re-run to continue.
CONTROL=rabc exec bash "$(dirname "$0")/arm.sh" rabc-gripper-object
