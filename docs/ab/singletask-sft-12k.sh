#!/usr/bin/env bash
# Control for docs/ab/multitask-sft.sh, added after its first scores (session 23): is the
# multi-task policy's lead over benchmark-100-ema's single-task SFT transfer between tasks, or
# its 3x gradient steps? Usage: docs/ab/singletask-sft-12k.sh MT_SFT_DIR OUT SEED
#
# Per task: a single-task policy trained on exactly the multi-task run's demos of that task
# (MT_SFT_DIR/seed_SEED/demos-TASK) for the multi-task run's 12000 steps, evaluated on the
# same 100 validation-block trials. Rule: transfer explains the lead only if the multi-task
# policy's success pooled over the tasks is 5 or more points above this control's; if it is
# within 5 points, the extra steps do. Resumable.
set -euo pipefail
mt=$1
out=$2
seed=$3
habc=${HABC:-.venv/bin/habc}
for task in peg-insert-side pick-place disassemble; do
  run=$out/seed_$seed/$task
  "$habc" train --datasets "$mt/seed_$seed/demos-$task" --run-dir "$run/sft" --steps 12000 \
    --seed "$seed" --num-threads 1
  [ -e "$run/eval.json" ] || "$habc" eval --checkpoint "$run/sft/checkpoints/last" \
    --task "$task" --num-trials 100 --seed-offset 100000 --workers 1 --out "$run/eval.json"
done
