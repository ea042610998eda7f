"""Where ``rabc``'s weight goes by frame kind, under a run's final progress model.

Used in docs/benchmarks.md.

For every frame of the run's demos and rollouts (stage labels from the run's own source): the
pre-normalisation weight ``clip(p(o_{t+H}) - p(o_t), 0, 1)`` under the progress model in
``learner/latest``, its mean and zero fraction per credit kind, and each kind's share of the
actor's total weight when batches draw ``demo_fraction`` of their samples from demos and the
rest uniformly from rollout frames.

    .venv/bin/python scripts/rabc_weight_shares.py --run runs/ab/rabc/pick-place/seed_1/step1/rabc
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro
from safetensors.torch import load_file

from habc.credit.labels import FrameKind
from habc.envs.registry import get_task
from habc.episodes.store import open_stores
from habc.experiments.online import online_stages
from habc.learner.online import LearnerConfig, OnlineLearner, prepare_data
from habc.policy.backend import load_policy
from habc.progress.primitives import GripperStageConfig
from habc.progress.targets import chunk_progress_weight
from habc.weighting.rules import RULES


@dataclass(frozen=True)
class Args:
    """Weight shares of a finished rabc run."""

    run: Path
    """The rabc run directory (holds config.json, rollouts/ and learner/latest/)."""


def main(args: Args) -> None:
    """Print the weight table of ``args.run`` as Markdown."""
    torch.set_num_threads(1)
    config = json.loads((args.run / "config.json").read_text())
    policy = load_policy(args.run / "learner/latest/policy")
    task = get_task(str(policy.meta["task"]))
    demos = [Path(d) for d in policy.meta["datasets"]]
    arrays = open_stores([*demos, args.run / "rollouts"])
    stages = online_stages(config.get("stages", "expert"),
                           GripperStageConfig(**config.get("gripper", {})), demos, [task])
    data = prepare_data(arrays, horizon=policy.config.chunk_horizon, k=1, naive=False,
                        critic_use_demos=False,
                        validation_every=config["learner"]["validation_every"],
                        boundary_margin=config["learner"].get("boundary_margin", 0),
                        stage=stages.label(arrays, 0))
    learner = OnlineLearner(policy, RULES["rabc"], LearnerConfig(), t_max=task.max_steps,
                            method="rabc", num_stages=stages.num_stages)
    assert learner.progress is not None
    tensors = load_file(str(args.run / "learner/latest/critic.safetensors"))
    learner.progress.load_state_dict({k[4:]: v for k, v in tensors.items()
                                      if k.startswith("net.")})
    start, end = learner.progress_estimates(data, np.arange(arrays.num_frames))
    w = chunk_progress_weight(start, end).numpy()
    kind, ok = data.labels.kind, data.labels.episode_success
    own = (kind == FrameKind.AUTONOMOUS) | (kind == FrameKind.SUFFIX)
    groups = {"demo": kind == FrameKind.DEMO, "operator": kind == FrameKind.HUMAN,
              "policy, successful episode": own & ok, "policy, failed episode": own & ~ok,
              "policy, before a takeover": kind == FrameKind.PRE_INTERVENTION}
    demo_share = config["learner"]["demo_fraction"]
    rollout = kind != FrameKind.DEMO
    total = demo_share * w[~rollout].mean() + (1 - demo_share) * w[rollout].mean()
    print("| frames | count | mean w~ | zero w~ | share of the actor's weight |")
    print("|---|---|---|---|---|")
    for name, mask in groups.items():
        draw = demo_share if name == "demo" else (1 - demo_share) * mask.sum() / rollout.sum()
        print(f"| {name} | {mask.sum()} | {w[mask].mean():.3f} | {(w[mask] == 0).mean():.0%} "
              f"| {draw * w[mask].mean() / total:.0%} |")


if __name__ == "__main__":
    main(tyro.cli(Args))
