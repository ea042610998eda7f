"""Window batches: the chunk of each anchor, and the prompt of each anchor's episode's task."""

import numpy as np

from habc.episodes.store import StoreArrays
from habc.learner.batches import gather_windows


def test_each_window_carries_its_episodes_prompt_and_its_padded_chunk():
    lengths = np.array([3, 2])
    ends = np.cumsum(lengths)
    n = int(ends[-1])
    arrays = StoreArrays(
        state=np.arange(n, dtype=np.float32)[:, None],
        action=np.arange(n, dtype=np.float32)[:, None],
        controller=np.zeros(n, np.int8), policy_version=np.zeros(n, np.int32),
        frame_episode=np.repeat(np.arange(2), lengths), episode_index=np.arange(2),
        episode_starts=ends - lengths, episode_ends=ends, success=np.ones(2, bool),
        source=np.array(["demo", "demo"]), seed=np.array([0, 1]),
        task=np.array(["pick-place", "reach"]))
    batch = gather_windows(arrays, np.array([4, 1, 0]), horizon=3)
    assert batch.obs.prompt == ("reach", "pick place", "pick place")
    # frame 4 is the last of episode 1: its chunk repeats it, and only its first step is real
    assert batch.actions[:, :, 0].tolist() == [[4, 4, 4], [1, 2, 2], [0, 1, 2]]
    assert batch.valid[:, :, 0].tolist() == [[True, False, False], [True, True, False],
                                             [True, True, True]]
