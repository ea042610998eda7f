#!/usr/bin/env bash
# Online rounds of one multi-task policy on the three benchmark tasks (session 23).
# Usage: docs/ab/multitask-online.sh MT_SFT_DIR OUT SEED METHOD [EXTRA ARGS]  (METHOD: dagger or
# habc; EXTRA ARGS go to `habc online`, for arms built on this one: multitask-balance.sh)
#
# Fixed before it ran. From docs/ab/multitask-sft.sh's policy of seed SEED: 3 rounds of METHOD
# with benchmark-100-ema's settings per task, so each task gets the single-task runs' budget:
# 300 rollouts per round (100 per task, the round's seeds alternating between the tasks) and
# 9000 learner steps per round (3 x 3000), the HABC warm-up scaled with the round length like
# the preset's (500 of 3000 steps -> 1500 of 9000), actor_ema 0.999, the MC efficiency target,
# weighted actor batches for habc; 100 evaluation trials per task and round on the validation
# block (seeds 1,100,000-1,100,099). Control: benchmark-100-ema's single-task round-3 policies
# of seed 0 on the same block, dagger 94/76/84 (84.7% pooled) and habc 91/69/81 (80.3%) on
# peg-insert-side/pick-place/disassemble. Rules: a multi-task method matches its single-task
# runs if its pooled round-3 success is within 5 points of theirs, and is better or worse if 5
# or more points above or below; HABC beats DAgger in the multi-task setting if its pooled
# round-3 success is 5 or more points above DAgger's, trails if 5 or more below, else level.
# One seed: a finding about the multi-task setting, not a benchmark verdict. Resumable.
set -euo pipefail
sft=$1
out=$2
seed=$3
method=$4
habc=${HABC:-.venv/bin/habc}
extra=()
if [ "$method" = habc ]; then
  extra=(--learner.actor-batches weighted --habc.warmup-steps 1500)
fi
"$habc" online --sft-checkpoint "$sft/seed_$seed/sft/checkpoints/last" \
  --run-dir "$out/seed_$seed/$method" --method "$method" --rounds 3 \
  --rollouts-per-round 300 --steps-per-round 9000 --eval-trials 100 --eval-seed-offset 100000 \
  --workers 1 --seed "$seed" --num-threads 1 --learner.actor-ema 0.999 \
  --learner.critic.efficiency-target mc "${extra[@]}" "${@:5}"
