#!/usr/bin/env bash
# Second batch of the operator-quality A/B (docs/benchmarks.md, session 12): operator-noisy-2.json
# on benchmark-100's SFT checkpoints (demos and SFT are copied from its seed-0 cells; run those
# cells first), then the control: benchmark-100's round-3 dagger and habc policies scored on the
# same 100 validation seeds. Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/ab}
BENCH=${BENCH:-runs/experiments/benchmark-100}
arm=operator-noisy-2
for task in peg-insert-side pick-place; do
  dest="$OUT/$arm/$task/seed_0"
  mkdir -p "$dest"
  for part in demos sft; do
    [ -e "$dest/$part" ] || cp -r "$BENCH/$task/seed_0/$part" "$dest/$part"
  done
done
.venv/bin/habc experiment --config-file "docs/ab/$arm.json" --out "$OUT/$arm" --jobs 2 --no-report
mkdir -p "$OUT/$arm/control"
for task in peg-insert-side pick-place; do
  for method in dagger habc; do
    result="$OUT/$arm/control/$task-$method-v003.json"
    [ -e "$result" ] || .venv/bin/habc eval --checkpoint "$BENCH/$task/seed_0/step1/$method/policies/v003" \
      --seeds $(seq 1100000 1100099) --workers 1 --out "$result"
  done
done
