#!/usr/bin/env bash
# Failure stages of pick-place's final policies on the validation block (100 trials, seeds 1,100,000+).
cd "$(dirname "$0")/../.."
for s in 0 1 2; do
  for arm in "benchmark-100-ema step2/habc_ir v006" "benchmark-100-ema step2/habc v006" \
             "benchmark-100-ema step1/dagger v003" "benchmark-100-ema step1/habc v003" \
             "benchmark-100 step2/habc_ir v006" "benchmark-100 step1/dagger v003"; do
    set -- $arm
    out=runs/diagnose/pick-place/$1/$(echo $2 | tr / _)_seed$s.json
    [ -f $out ] && continue
    mkdir -p $(dirname $out)
    nice .venv/bin/habc eval --checkpoint runs/experiments/$1/pick-place/seed_$s/$2/policies/$3 \
      --num-trials 100 --seed-offset 100000 --workers 1 --out $out
  done
done
