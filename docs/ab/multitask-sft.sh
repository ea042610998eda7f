#!/usr/bin/env bash
# One multi-task SFT policy on the three benchmark tasks, against the single-task SFT policies
# of benchmark-100-ema (session 23). Usage: docs/ab/multitask-sft.sh OUT SEED [SEED ...]
#
# Fixed before it ran. Per seed s: the benchmark's own demos (5 per task, training seeds from
# s * 1000, expert action noise 0.1, noise seed s), one policy trained on all 15 for 12000
# steps (the three single-task runs' 3 x 4000, batch 256), evaluated on each task on the
# validation block (100 trials, seeds 1,100,000-1,100,099). Control: benchmark-100-ema's
# single-task SFT on the same block (docs/results/benchmark-100-ema/rescore-100000). Rule:
# the multi-task policy matches the single-task ones if its success pooled over tasks and
# seeds is within 5 points of theirs; it is better or worse if it is 5 or more points above or
# below. Resumable: finished demos, training and evaluations are kept.
set -euo pipefail
out=$1
shift
habc=${HABC:-.venv/bin/habc}
tasks=(peg-insert-side pick-place disassemble)
for seed in "$@"; do
  cell=$out/seed_$seed
  stores=()
  for task in "${tasks[@]}"; do
    store=$cell/demos-$task
    [ -e "$store/meta/info.json" ] || "$habc" collect --task "$task" --out "$store" \
      --num-episodes 5 --seed-start $((seed * 1000)) --action-noise 0.1 --noise-seed "$seed"
    stores+=("$store")
  done
  "$habc" train --datasets "${stores[@]}" --run-dir "$cell/sft" --steps 12000 --seed "$seed" \
    --num-threads 1
  for task in "${tasks[@]}"; do
    result=$cell/eval-$task.json
    [ -e "$result" ] || "$habc" eval --checkpoint "$cell/sft/checkpoints/last" --task "$task" \
      --num-trials 100 --seed-offset 100000 --workers 1 --out "$result"
  done
done
