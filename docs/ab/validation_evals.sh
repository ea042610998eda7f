#!/usr/bin/env bash
# benchmark-100-ema's final policies on the validation block (100 trials per seed, seeds
# 1,100,000+; the reported block is seeds 0-49), with failure stages: how far the reported
# block's 150 trials per cell sit from 300 fresh ones. Usage: docs/ab/validation_evals.sh TASK
cd "$(dirname "$0")/../.."
task=$1
for s in 0 1 2; do
  for arm in "step1/dagger v003" "step1/habc v003" "step1/habc_v v003" "step2/habc_ir v006"; do
    set -- $arm
    out=runs/diagnose/$task/benchmark-100-ema/$(echo $1 | tr / _)_seed$s.json
    [ -f $out ] && continue
    mkdir -p $(dirname $out)
    nice .venv/bin/habc eval --checkpoint runs/experiments/benchmark-100-ema/$task/seed_$s/$1/policies/$2 \
      --num-trials 100 --seed-offset 100000 --workers 1 --out $out
  done
  out=runs/diagnose/$task/benchmark-100-ema/sft_seed$s.json
  [ -f $out ] || nice .venv/bin/habc eval --num-trials 100 --seed-offset 100000 --workers 1 --out $out \
    --checkpoint runs/experiments/benchmark-100-ema/$task/seed_$s/sft/checkpoints/last
done
out=runs/diagnose/$task/expert_validation300.json
[ -f $out ] || nice .venv/bin/habc eval --expert --task $task --num-trials 300 --seed-offset 100000 \
  --workers 1 --out $out
