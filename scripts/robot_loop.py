"""The practice loop on a robot, shown on a toy one: rollouts with takeovers, `habc learn`, repeat.

On a robot, ``ToyArm`` is the robot's driver (anything with the ``TaskEnv`` protocol of
``habc.rollout.runner``) and ``ToyTeleop`` is the operator's takeover switch and device
(anything with the ``Operator`` protocol). The rest is what runs on the robot's computer:

1. teleoperated demos into an episode store, then ``habc train`` (SFT);
2. each round: the newest policy acts, the operator takes over when it stalls, every episode
   goes into the rollout store; then ``habc learn`` trains the round and publishes the next
   policy; the robot scores it.

The toy arm is a point that must reach a goal on a plane: state (x, y, goal x, goal y), action
a velocity (2,) in [-1, 1] scaled to 0.05 per step, success within 0.05 of the goal.

    .venv/bin/python scripts/robot_loop.py --out runs/robot-loop
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import tyro

from habc.cli import main as habc
from habc.envs.registry import TaskSpec
from habc.episodes.episode import Controller, Episode, EpisodeSource
from habc.episodes.store import EpisodeStore
from habc.policy.backend import load_policy
from habc.rollout.actors import ExpertActor, PolicyActor
from habc.rollout.runner import run_episode

TASK = TaskSpec(name="toy-reach", env_name="toy-reach", prompt="reach the goal", max_steps=60,
                state_dim=4, action_dim=2, backoff_action=(0.0, 0.0))


class ToyArm:
    """The robot: a point on the plane that must reach a goal (the ``TaskEnv`` protocol)."""

    task = TASK

    def __init__(self) -> None:
        self.x = np.zeros(4)
        self.t = 0

    @property
    def raw_state(self) -> npt.NDArray[np.float64]:
        """Position and goal (4,)."""
        return self.x.copy()

    def _obs(self) -> dict[str, npt.NDArray[np.float32]]:
        return {"state": self.x.astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, npt.NDArray[np.float32]], dict[str, Any]]:
        """Start at a random position with a random goal (fixed by ``seed``)."""
        self.x = np.random.default_rng(seed).uniform(-0.5, 0.5, 4)
        self.t = 0
        return self._obs(), {"success": False, "progress": 0.0}

    def step(self, action: npt.NDArray[np.float32]
             ) -> tuple[dict[str, npt.NDArray[np.float32]], float, bool, bool, dict[str, Any]]:
        """Move by 0.05 x the clipped action."""
        self.x[:2] += 0.05 * np.clip(action, -1.0, 1.0)
        self.t += 1
        success = bool(np.linalg.norm(self.x[:2] - self.x[2:]) < 0.05)
        truncated = not success and self.t >= TASK.max_steps
        return self._obs(), 0.0, success, truncated, {"success": success, "progress": 0.0}


def expert(raw_state: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """What the person at the teleop device does: head for the goal."""
    gap = raw_state[2:] - raw_state[:2]
    return np.clip(gap / 0.05, -1.0, 1.0).astype(np.float32)


class ToyTeleop:
    """The operator, with the ``Operator`` protocol: one takeover at most per episode.

    It takes over once the arm has not closed in on the goal for ``patience`` steps, drives for
    ``drive`` steps and hands back.
    """

    def __init__(self, env: ToyArm, patience: int = 8, drive: int = 10) -> None:
        self.env, self.patience, self.drive = env, patience, drive
        self.reset()

    def reset(self) -> None:
        """New episode: no takeover yet."""
        self.best, self.since, self.left, self.used = np.inf, 0, 0, False

    @property
    def in_control(self) -> bool:
        """Whether the operator drives the next step."""
        return self.left > 0

    def act(self, raw_state: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """The operator's command."""
        return expert(raw_state)

    def observe(self, progress: float) -> None:
        """Watch the arm (this operator looks at the distance, not at ``progress``)."""
        if self.left > 0:
            self.left -= 1
            return
        distance = float(np.linalg.norm(self.env.x[:2] - self.env.x[2:]))
        self.best, self.since = (distance, 0) if distance < self.best - 0.01 else \
            (self.best, self.since + 1)
        if self.since >= self.patience and not self.used:
            self.left, self.used = self.drive, True

    def logged_controllers(self, controller: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
        """As executed."""
        return controller


@dataclass(frozen=True)
class Args:
    """Demos, SFT, then rounds of robot rollouts and `habc learn` on the toy arm."""

    out: Path = Path("runs/robot-loop")
    """Output directory (demos, SFT, rollouts, learner run)."""
    demos: int = 10
    """Teleoperated demos."""
    sft_steps: int = 500
    """SFT gradient steps."""
    rounds: int = 2
    """Practice rounds."""
    rollouts: int = 20
    """Robot episodes per round."""
    steps: int = 300
    """Learner steps per round."""
    trials: int = 20
    """Scoring episodes per policy (no takeovers)."""
    train_options: tuple[str, ...] = ()
    """Further options for `habc train` (e.g. a smaller policy)."""
    learn_options: tuple[str, ...] = ()
    """Further options for `habc learn` (e.g. the method)."""


def score(run: Path, version: int, trials: int) -> float:
    """Success rate of ``policies/v{version}`` on ``trials`` fresh layouts, no takeovers."""
    policy = load_policy(run / "policies" / f"v{version:03d}")
    env, wins = ToyArm(), 0
    for k in range(trials):
        actor = PolicyActor(policy, prompt=TASK.prompt, version=version,
                            generator=torch.Generator().manual_seed(k))
        wins += run_episode(env, actor, seed=1_000_000 + k, source=EpisodeSource.EVAL).success
    return wins / trials


def run(args: Args) -> list[float]:
    """Run the loop; return the success rate of v000 (SFT) and each round's policy."""
    env = ToyArm()
    demos = EpisodeStore.create(args.out / "demos", state_dim=4, action_dim=2, fps=20,
                                robot_type="toy-arm")
    teleop = ExpertActor(expert, noise_std=0.1, rng=np.random.default_rng(0))
    attempts = [run_episode(env, teleop, seed=s, source=EpisodeSource.DEMO)
                for s in range(args.demos)]
    demos.append([ep for ep in attempts if ep.success])  # a demo is a success
    assert habc(["train", "--datasets", str(args.out / "demos"), "--run-dir",
                 str(args.out / "sft"), "--steps", str(args.sft_steps), *args.train_options]) == 0
    sft = args.out / "sft/checkpoints/last"
    store = EpisodeStore.create(args.out / "rollouts", state_dim=4, action_dim=2, fps=20,
                                robot_type="toy-arm")
    run_dir, operator = args.out / "learn", ToyTeleop(env)
    rates = []
    for r in range(1, args.rounds + 1):
        policy_dir = run_dir / "policies" / f"v{r - 1:03d}" if r > 1 else sft
        policy = load_policy(policy_dir)
        episodes: list[Episode] = []
        for k in range(args.rollouts):
            seed = 10_000 + (r - 1) * args.rollouts + k
            actor = PolicyActor(policy, prompt=TASK.prompt, version=r - 1,
                                generator=torch.Generator().manual_seed(seed))
            episodes.append(run_episode(env, actor, seed=seed, source=EpisodeSource.ROLLOUT,
                                        operator=operator))
        store.append(episodes)
        helped = sum(bool((ep.controller == Controller.HUMAN).any()) for ep in episodes)
        print(f"round {r}: {sum(ep.success for ep in episodes)}/{len(episodes)} rollouts "
              f"succeeded, the operator took over in {helped}")
        assert habc(["learn", "--sft-checkpoint", str(sft), "--rollouts", str(args.out /
                     "rollouts"), "--run-dir", str(run_dir), "--steps", str(args.steps),
                     "--max-steps", str(TASK.max_steps), *args.learn_options]) == 0
        if r == 1:
            rates.append(score(run_dir, 0, args.trials))
        rates.append(score(run_dir, r, args.trials))
    print("success by policy version: " + " -> ".join(f"{x:.0%}" for x in rates))
    return rates


if __name__ == "__main__":
    torch.set_num_threads(2)
    run(tyro.cli(Args))
