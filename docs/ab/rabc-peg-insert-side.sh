#!/usr/bin/env bash
# The rabc A/B of the object-relative split on peg-insert-side (session 30); see rabc-object.sh.
exec bash "$(dirname "$0")/rabc-object.sh" peg-insert-side
