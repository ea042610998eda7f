"""Who recovers a dropped puck: the scripted expert, the operator's back-off, or a regrasp.

Usage: python docs/ab/pick_place_regrasp.py ROLLOUT_STORE [N]

Takes the first N (30) rollout episodes of ROLLOUT_STORE (a pick-place run's ``rollouts``) in
which the policy dropped the puck (lifted it 2 cm above its start, then let it fall back),
replays each one's executed actions from its seed up to the step after the fall, checks that
the replay reproduces the stored states, and then hands the rest of the episode (up to the
500-step limit) to each controller:
- ``expert``: Meta-World's scripted expert. Its descent is conditioned on the puck's height
  (``puck z < 0.04``), so a puck lying tilted higher than that is taken for one already held,
  and the expert waits above it;
- ``operator``: the expert with the simulated operator's back-off (lift and open the gripper
  for 10 steps after 100 steps without a 0.05 gain of smoothed progress), as in a takeover;
- ``regrasp``: a hand-written controller that conditions on the gripper instead of the puck's
  height: open and above the puck, down to grasping height over its centre, close, and carry
  it to the goal once the fingers stop on it; fingers shut on nothing (opening below 0.35)
  make it open and rise.
It also runs each controller from the episode's initial state (a fresh layout), so that a
controller that recovers drops but cannot pick a puck at all shows.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import numpy.typing as npt

from habc.envs.registry import get_task, make_env, make_expert
from habc.episodes.episode import Controller
from habc.episodes.store import EpisodeStore

LIFT = 0.02  # m above the puck's start
SHUT = 0.35  # finger opening (obs[3]) below which the fingers are shut on nothing


def regrasp(obs: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Pick the puck wherever it lies, and carry it to the goal: obs (39,) -> action (4,)."""
    hand, opening, puck, goal = obs[:3], obs[3], obs[4:7], obs[-3:]
    grasp = puck + np.array([-0.005, 0.0, 0.03])  # the hand sits 3 cm above the fingertips
    near = np.linalg.norm(hand - puck) < 0.04
    if near and opening < SHUT:  # shut on nothing: let go and rise
        target, grip = hand + np.array([0.0, 0.0, 0.1]), -1.0
    elif near and opening < 0.73:  # the fingers stopped on the puck: carry it
        target, grip = goal, 1.0
    elif np.linalg.norm(hand[:2] - grasp[:2]) > 0.02:
        target, grip = grasp + np.array([0.0, 0.0, 0.1]), -1.0
    elif abs(hand[2] - grasp[2]) > 0.01:
        target, grip = grasp, -1.0
    else:
        target, grip = hand, 1.0
    move = np.clip(10.0 * (target - hand), -1.0, 1.0)
    return np.array([*move, grip], dtype=np.float32)


def main(root: str, n: int) -> dict[str, object]:
    """Replay the first ``n`` drops of ``root`` and count recoveries per controller."""
    task = get_task("pick-place")
    env = make_env(task)
    expert = make_expert(task)
    arrays = EpisodeStore.open(root).read()
    backoff = np.array(task.backoff_action, dtype=np.float32)

    def operator_factory() -> object:
        state = {"smooth": 0.0, "best": 0.0, "since": 0, "backoff": 0}

        def act(obs: npt.NDArray[np.float64], progress: float) -> npt.NDArray[np.float32]:
            state["smooth"] += 0.3 * (progress - state["smooth"])
            if state["backoff"] > 0:
                state["backoff"] -= 1
                if state["backoff"] == 0:
                    state["best"], state["since"] = state["smooth"], 0
                return backoff
            if state["smooth"] >= state["best"] + 0.05:
                state["best"], state["since"] = state["smooth"], 0
            else:
                state["since"] += 1
                if state["since"] >= 100:
                    state["backoff"], state["since"] = 10, 0
            return np.asarray(expert(obs), dtype=np.float32)
        return act

    def run(seed: int, prefix: npt.NDArray[np.float32], controller: str) -> bool:
        env.reset(seed=seed)
        progress = 0.0
        for a in prefix:
            _, _, success, _, info = env.step(a)
            progress = info["progress"]
        act = operator_factory() if controller == "operator" else None
        for _ in range(task.max_steps - len(prefix)):
            obs = env.raw_state
            if controller == "expert":
                action = expert(obs)
            elif controller == "regrasp":
                action = regrasp(obs)
            else:
                action = act(obs, progress)  # type: ignore[operator]
            _, _, success, truncated, info = env.step(action)
            progress = info["progress"]
            if success:
                return True
            if truncated:
                return False
        return False

    controllers = ("expert", "operator", "regrasp")
    recovered = dict.fromkeys(controllers, 0)
    fresh = dict.fromkeys(controllers, 0)
    drops = 0
    for e, (start, end) in enumerate(zip(arrays.episode_starts, arrays.episode_ends,
                                         strict=True)):
        puck_z = arrays.state[start:end, 6]
        lifted = puck_z > puck_z[0] + LIFT
        falls = np.flatnonzero(lifted[:-1] & ~lifted[1:])
        if not len(falls) or arrays.controller[start + falls[0]] != Controller.POLICY:
            continue
        fall = int(falls[0]) + 1
        seed = int(arrays.seed[e])
        prefix = arrays.action[start:start + fall + 1]
        env.reset(seed=seed)
        for a in prefix:
            env.step(a)
        stored = arrays.state[start + fall + 1] if start + fall + 1 < end else None
        assert stored is None or np.allclose(env.raw_state[:7], stored[:7], atol=1e-3), seed
        for c in controllers:
            recovered[c] += run(seed, prefix, c)
            fresh[c] += run(seed, prefix[:0], c)
        drops += 1
        if drops == n:
            break
    return {"store": root, "drops": drops, "recovered": recovered, "fresh_layout": fresh}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30),
                     indent=2))
