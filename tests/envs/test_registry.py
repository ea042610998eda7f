import numpy as np
import pytest

from habc.envs.registry import (
    EVAL_SEED_BASE,
    check_eval_seeds,
    eval_seeds,
    get_task,
    list_tasks,
    make_env,
    make_expert,
    train_seeds,
)
from habc.episodes.episode import Controller, EpisodeSource
from habc.errors import ConfigError, UnknownTaskError
from habc.rollout.runner import run_episode


def test_all_fifty_tasks_have_experts():
    from metaworld.policies import ENV_POLICY_MAP

    names = list_tasks()
    assert len(names) == 50
    assert all(get_task(n).env_name in ENV_POLICY_MAP for n in names)


def test_task_name_with_or_without_suffix():
    assert get_task("peg-insert-side-v3") == get_task("peg-insert-side")


def test_unknown_task_suggests_close_names():
    with pytest.raises(UnknownTaskError, match="did you mean peg-insert-side"):
        get_task("peg-insert")


def test_seed_ranges_never_overlap():
    assert max(train_seeds(0, 100)) < min(eval_seeds(100)) == EVAL_SEED_BASE
    with pytest.raises(ConfigError):
        train_seeds(EVAL_SEED_BASE - 1, 2)
    with pytest.raises(ConfigError):
        check_eval_seeds([3])


def test_layout_is_deterministic_per_seed_across_env_objects():
    task = get_task("pick-place")
    env_a, env_b = make_env(task), make_env(task)
    first = env_a.reset(seed=7)[0]["state"]
    for s in (1, 2, 3):  # other resets in between must not change seed 7's layout
        env_a.reset(seed=s)
    again = env_a.reset(seed=7)[0]["state"]
    other_env = env_b.reset(seed=7)[0]["state"]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, other_env)
    different = env_a.reset(seed=8)[0]["state"]
    assert not np.allclose(first[-3:], different[-3:]) or not np.allclose(first[4:7],
                                                                          different[4:7])


def test_expert_succeeds_and_success_terminates():
    task = get_task("reach")
    env = make_env(task, max_steps=200)
    expert = make_expert(task)
    env.reset(seed=0)
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(expert(env.raw_state))
        if terminated or truncated:
            break
    assert terminated and info["success"] and not truncated


def test_time_out_is_truncation_not_success():
    env = make_env(get_task("reach"), max_steps=5)
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert truncated and not terminated and not info["success"]


def test_reset_requires_seed():
    env = make_env(get_task("reach"))
    with pytest.raises(ValueError):
        env.reset()


def test_unstable_physics_ends_the_episode_as_a_failure_with_the_last_stable_state():
    """MuJoCo resets a blown-up scene and carries on; the episode must stop there instead."""
    class BlowUpAtStep:  # pushes right, then a huge force on one joint at step 5
        def __init__(self, env):
            self.env, self.t = env, 0

        def reset(self):
            self.t = 0

        def act(self, obs, raw_state):
            self.t += 1
            self.env.sim.data.qfrc_applied[:] = 1e12 if self.t == 5 else 0.0
            return np.array([1.0, 0, 0, 0], np.float32), Controller.POLICY, 0

    env = make_env(get_task("reach"), max_steps=50)
    with pytest.warns(UserWarning, match="reach seed 3: .*unstable at step 5"):
        episode = run_episode(env, BlowUpAtStep(env), seed=3, source=EpisodeSource.ROLLOUT)
    assert episode.length == 5 and not episode.success and episode.unstable and env.unstable
    assert (np.diff(episode.state[:, 0]) > 0).all()  # the hand moved right at every step
    # MuJoCo moved the scene elsewhere; the env keeps the last stable state (after step 4)
    assert np.linalg.norm(env.sim.tcp_center - env.raw_state[:3]) > 0.1
    np.testing.assert_allclose(env.raw_state, episode.state[-1], atol=1e-6)
    with pytest.warns(UserWarning, match="unstable at step 6"):  # and stays ended
        obs, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert truncated and not terminated and info == {"success": False, "progress": 0.0,
                                                      "unstable": True}
    np.testing.assert_array_equal(obs["state"], episode.state[-1])
    env.reset(seed=3)
    assert not env.unstable  # a reset clears it
