#!/usr/bin/env bash
# Task-balanced batches for the multi-task policy (session 24).
# Usage: docs/ab/multitask-balance.sh MT_SFT_DIR OUT SEED METHOD  (METHOD: dagger or habc)
#
# Fixed before it ran. Hypothesis: the multi-task learner samples each pool in proportion to
# its frames, and on the benchmark the tasks' shares are far from equal (scripts/task_shares.py
# on docs/ab/multitask-online.sh's seed-1 runs: disassemble holds 49% of the demo frames and
# 47-51% of the operator's, pick-place 18% and 27-33%). Giving each task an equal share of every
# pool (--learner.task-balance) could lift the task with the smallest share. Arm: exactly
# docs/ab/multitask-online.sh's run (3 rounds, 300 rollouts and 9000 learner steps per round,
# validation block, 100 trials per task) plus --learner.task-balance. Control: that script's
# seed-0 runs (docs/ab/results/multitask-online/seed_0): dagger 97/84/84 (88.3% pooled) and
# habc 97/78/81 (85.3%) on peg-insert-side/pick-place/disassemble at round 3. One other
# difference: since 40d2078 a round's rollouts are collected in seed order rather than task by
# task, so the store's episode order, and with it which rollouts are held out from critic
# training (every 10th), differs from the control's; the episodes themselves do not.
# Rules, per method: balanced batches help if the pooled round-3 success is 5 or more points
# above the control's, hurt if 5 or more below, else level; pick-place is reported on its own.
# One seed: a finding, not a default change. Resumable.
set -euo pipefail
here=$(dirname "$0")
bash "$here/multitask-online.sh" "$1" "$2" "$3" "$4" --learner.task-balance
