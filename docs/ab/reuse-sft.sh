#!/usr/bin/env bash
# Give experiment directory DEST the demos, SFT checkpoints and expert rates of experiment
# directory SRC (every task and seed), so that an A/B arm trains from the same SFT checkpoints
# as its control. Parts DEST already has are kept.
set -euo pipefail
src=$1
dest=$2
for cell in "$src"/*/seed_*; do
  target="$dest/${cell#"$src"/}"
  mkdir -p "$target"
  for part in demos sft; do
    [ -e "$target/$part" ] || cp -r "$cell/$part" "$target/$part"
  done
done
for expert in "$src"/*/expert*.json; do
  cp -n "$expert" "$dest/${expert#"$src"/}"
done
