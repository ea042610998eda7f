"""A multi-task critic's task index of each frame: its episode's prompt among the policy's."""

import numpy as np
import pytest

from habc.episodes.store import StoreArrays
from habc.errors import StoreError
from habc.learner.online import (
    episode_tasks,
    prepare_data,
    sample_anchors,
    task_balanced_probabilities,
)


def arrays_of(tasks: list[str], lengths: list[int]) -> StoreArrays:
    ends = np.cumsum(lengths)
    n = int(ends[-1])
    return StoreArrays(
        state=np.zeros((n, 3), np.float32), action=np.zeros((n, 2), np.float32),
        controller=np.zeros(n, np.int8), policy_version=np.zeros(n, np.int32),
        frame_episode=np.repeat(np.arange(len(tasks)), lengths),
        episode_index=np.arange(len(tasks)), episode_starts=ends - np.array(lengths),
        episode_ends=ends, success=np.ones(len(tasks), bool),
        source=np.array(["demo"] * len(tasks)), seed=np.arange(len(tasks)),
        task=np.array(tasks))


def test_frames_get_their_episodes_task_index():
    arrays = arrays_of(["reach", "pick-place", "reach"], [2, 1, 2])
    prompts = ("pick place", "reach")
    assert episode_tasks(arrays, prompts).tolist() == [1, 0, 1]
    data = prepare_data(arrays, horizon=2, k=1, naive=False, critic_use_demos=True,
                        validation_every=10, prompts=prompts)
    assert data.task_at(np.arange(5)).tolist() == [1, 1, 0, 1, 1]
    single = prepare_data(arrays, horizon=2, k=1, naive=False, critic_use_demos=True,
                          validation_every=10)
    assert single.task_at(np.arange(5)) is None
    with pytest.raises(StoreError, match=r"tasks \['pick-place'\] are not among"):
        episode_tasks(arrays, ("reach", "push"))


def test_task_balanced_probabilities_hand_computed():
    # two tasks: 1/2 each, split over 3 frames and 1 frame
    np.testing.assert_allclose(task_balanced_probabilities(np.array([0, 0, 0, 1])),
                               [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    # three tasks with 1, 2, 1 frames: 1/3, 1/6, 1/6, 1/3
    np.testing.assert_allclose(task_balanced_probabilities(np.array([2, 0, 0, 1])),
                               [1 / 3, 1 / 6, 1 / 6, 1 / 3])
    np.testing.assert_allclose(task_balanced_probabilities(np.array([4, 4])), [1 / 2, 1 / 2])


def test_task_balance_weights_each_pool_by_task():
    # reach: episodes of 3 and 2 frames; pick-place: one of 1 frame. All demos.
    arrays = arrays_of(["reach", "pick-place", "reach"], [3, 1, 2])
    prompts = ("pick place", "reach")
    data = prepare_data(arrays, horizon=2, k=1, naive=False, critic_use_demos=True,
                        validation_every=10, prompts=prompts, task_balance=True)
    assert data.pools["demo"].tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(data.pool_probabilities["demo"],
                               [0.1, 0.1, 0.1, 0.5, 0.1, 0.1])
    assert "rollout" not in data.pool_probabilities  # empty pools have none
    plain = prepare_data(arrays, horizon=2, k=1, naive=False, critic_use_demos=True,
                         validation_every=10, prompts=prompts)
    assert plain.pool_probabilities == {}
    # the sampler follows them: half of a large batch is pick-place's one frame
    anchors = sample_anchors(data.pools, {"demo": 1.0}, 20_000, np.random.default_rng(0),
                             data.pool_probabilities)
    assert abs((anchors == 3).mean() - 0.5) < 0.02
    # without probabilities it draws exactly what it drew before the option existed
    a = sample_anchors(plain.pools, {"demo": 1.0}, 64, np.random.default_rng(1))
    b = np.random.default_rng(1)
    b.multinomial(64, [1.0])
    np.testing.assert_array_equal(a, b.choice(plain.pools["demo"], size=64))
