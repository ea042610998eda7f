#!/usr/bin/env bash
# The rabc A/B of the object-relative split on disassemble (session 30); see rabc-object.sh.
exec bash "$(dirname "$0")/rabc-object.sh" disassemble
