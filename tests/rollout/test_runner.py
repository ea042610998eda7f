"""The episode runner records who acted, and the actor re-plans when control changes hands."""

from types import SimpleNamespace

import numpy as np

from habc.episodes.episode import Controller, EpisodeSource
from habc.rollout.operator import OperatorConfig, SimulatedOperator
from habc.rollout.runner import run_episode


class StubEnv:
    """1-D world: progress is the state; the policy pushes it down, the operator up."""

    task = SimpleNamespace(name="stub", prompt="stub")

    def reset(self, *, seed):
        self.x, self.t = 0.0, 0
        return {"state": np.array([self.x], np.float32)}, {"success": False, "progress": 0.0}

    @property
    def raw_state(self):
        return np.array([self.x])

    def step(self, action):
        self.x = float(np.clip(self.x + action[0], 0.0, 1.0))
        self.t += 1
        success = self.x >= 1.0
        return ({"state": np.array([self.x], np.float32)}, 0.0, success,
                not success and self.t >= 40, {"success": success, "progress": self.x})


class StubActor:
    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def act(self, obs, raw_state):
        return np.array([0.0, 0, 0, 0], np.float32), Controller.POLICY, 7


def test_operator_rescue_is_recorded_step_by_step():
    config = OperatorConfig(help_prob=1.0, stall_steps=3, stall_min_gain=0.01, smoothing=1.0,
                            reaction_delay=1, finish_prob=1.0, action_noise=0.0)
    op = SimulatedOperator(config, lambda s: np.array([0.1, 0, 0, 0], np.float32),
                           np.random.default_rng(0))
    actor = StubActor()
    ep = run_episode(StubEnv(), actor, seed=0, source=EpisodeSource.ROLLOUT, operator=op)
    # policy for 3 stalled steps + 1 step of reaction delay, then the operator pushes 0.1/step
    assert ep.success and ep.length == 4 + 10
    assert ep.controller.tolist() == [0] * 4 + [1] * 10
    assert ep.policy_version.tolist() == [7] * 4 + [-1] * 10
    assert actor.resets == 2  # episode start + takeover
    np.testing.assert_allclose(ep.state[4:, 0], np.arange(10) * 0.1, atol=1e-6)


def test_without_operator_the_policy_runs_to_time_out():
    ep = run_episode(StubEnv(), StubActor(), seed=0, source=EpisodeSource.ROLLOUT)
    assert not ep.success and ep.length == 40 and (ep.controller == 0).all()


class PedalTeleop:
    """A person's teleop rig: holds the pedal down on steps [3, 7) and pushes +0.2 per step."""

    def __init__(self):
        self.t = 0

    @property
    def in_control(self):
        return 3 <= self.t < 7

    def reset(self):
        self.t = 0

    def act(self, raw_state):
        return np.array([0.2, 0, 0, 0], np.float32)

    def observe(self, progress):
        self.t += 1

    def logged_controllers(self, controller):
        return controller


def test_any_operator_with_the_protocol_can_take_over():
    """Not only the simulated operator: a teleop rig that reads no progress signal."""
    actor = StubActor()
    ep = run_episode(StubEnv(), actor, seed=0, source=EpisodeSource.ROLLOUT,
                     operator=PedalTeleop())
    assert not ep.success and ep.length == 40
    assert ep.controller.tolist() == [0] * 3 + [1] * 4 + [0] * 33
    assert ep.policy_version.tolist() == [7] * 3 + [-1] * 4 + [7] * 33
    assert actor.resets == 3  # episode start, takeover, hand-back
    np.testing.assert_allclose(ep.state[7:, 0], 0.8, atol=1e-6)  # the policy holds still
