"""What sets the spread of HABC's weights: the tails of its one-step advantages.

For each online run with a dual-head critic, recomputes A_v, A_e, the gate and the bounded weight
along every stored rollout episode with the run's final critic and running scales (as the
report's Fig. 5 does), and prints, over the frames the running scales see (every rollout frame
but the policy's pre-intervention steps):

- each advantage's standard deviation (what SPEC's running scale tracks) against a robust scale
  of its bulk, 1.4826 x the median absolute deviation, both over frames before the episode's
  last step (whose next values are the fixed episode-end values);
- on the frames HABC weights (the policy's own steps in successful episodes): the effective
  sample size of w~ as a fraction of n, and the share of w~ in [0.8, 1.25], at the cap w_max
  and below 0.2.

A multi-task run gets one more row per task (its running scales are shared between the tasks).

    .venv/bin/python scripts/advantage_tails.py --runs RUN/step1/habc ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from habc.credit.labels import UNCREDITED_KINDS, FrameKind
from habc.report.traces import RunCritic
from habc.weighting.advantages import effective_sample_fraction, robust_scale


@dataclass(frozen=True)
class Args:
    """Advantage tails and weight spread of online runs."""

    runs: tuple[Path, ...]
    """Online run directories (with learner/latest/critic.safetensors)."""


def main(args: Args) -> None:
    """Print one Markdown table row per run (and, for a multi-task run, one per task)."""
    torch.set_num_threads(1)
    print("| run | s_v (running) | std / robust A_v | s_e (running) | std / robust A_e "
          "| own-success frames | ESS of w~ | w~ in [0.8, 1.25] | w~ at cap | w~ < 0.2 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        critic = RunCritic(run)
        arrays = critic.read_rollouts()
        traces = [critic.trace(arrays, ep) for ep in range(arrays.num_episodes)]
        kind = np.concatenate([t.kind for t in traces])
        a_v = np.concatenate([t.a_v for t in traces])
        a_e = np.concatenate([t.a_e for t in traces])
        w = np.concatenate([t.weight for t in traces])
        interior = np.concatenate([np.arange(len(t.kind)) < len(t.kind) - critic.k
                                   for t in traces])
        success = np.concatenate([np.full(len(t.kind), t.success) for t in traces])
        task = np.concatenate([np.full(len(t.kind), str(arrays.task[ep]))
                               for ep, t in enumerate(traces)])
        scored = ~np.isin(kind, UNCREDITED_KINDS)
        own_steps = success & np.isin(kind, [FrameKind.AUTONOMOUS, FrameKind.SUFFIX])
        groups = {str(run): np.ones(len(kind), dtype=bool)}
        if critic.prompts:  # a multi-task run: its tasks on their own too
            groups |= {f"{run}: {t}": task == t for t in sorted(set(task.tolist()))}
        for name, rows in groups.items():
            bulk = scored & interior & rows
            own = own_steps & rows
            wo = w[own]
            ess = effective_sample_fraction(torch.from_numpy(wo),
                                            torch.ones(len(wo), dtype=torch.bool))
            robust_v, robust_e = (robust_scale(torch.from_numpy(a[bulk])) for a in (a_v, a_e))
            print(f"| {name} | {critic.scale_v:.3f} | {a_v[bulk].std():.3f} / {robust_v:.3f} | "
                  f"{critic.scale_e:.2f} | {a_e[bulk].std():.2f} / {robust_e:.2f} | "
                  f"{own.sum()} | {ess:.2f} | "
                  f"{np.mean((wo >= 0.8) & (wo <= 1.25)):.0%} | "
                  f"{np.mean(wo >= critic.rule.w_max - 1e-6):.1%} | {np.mean(wo < 0.2):.1%} |")


if __name__ == "__main__":
    main(tyro.cli(Args))
