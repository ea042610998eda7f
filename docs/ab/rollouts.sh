#!/usr/bin/env bash
# The rollouts-per-round A/B (docs/benchmarks.md, session 11): the 100-rollout arm trains the SFT
# checkpoints, the 20-rollout control arm reuses them (demos, SFT and the expert's rate are
# copied), so the two arms differ only in rollouts per round. Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
.venv/bin/habc experiment --config-file docs/ab/rollouts-100.json --out "$OUT/rollouts-100" --jobs 2 --no-report
for cell in "$OUT"/rollouts-100/*/seed_*; do
  dest="$OUT/rollouts-20/${cell#"$OUT"/rollouts-100/}"
  mkdir -p "$dest"
  for part in demos sft; do
    [ -e "$dest/$part" ] || cp -r "$cell/$part" "$dest/$part"
  done
done
for expert in "$OUT"/rollouts-100/*/expert*.json; do
  cp -n "$expert" "$OUT/rollouts-20/${expert#"$OUT"/rollouts-100/}"
done
.venv/bin/habc experiment --config-file docs/ab/rollouts-20.json --out "$OUT/rollouts-20" --jobs 2 --no-report
