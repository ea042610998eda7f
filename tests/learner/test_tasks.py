"""A multi-task critic's task index of each frame: its episode's prompt among the policy's."""

import numpy as np
import pytest

from habc.episodes.store import StoreArrays
from habc.errors import StoreError
from habc.learner.online import episode_tasks, prepare_data


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
