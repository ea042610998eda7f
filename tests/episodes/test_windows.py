import numpy as np

from habc.episodes.windows import chunk_indices


def test_chunk_indices_hand_computed():
    episode_ends = np.array([3, 5])
    frame_episode = np.array([0, 0, 0, 1, 1])
    idx, valid = chunk_indices(np.array([1, 3, 4]), episode_ends, frame_episode, horizon=3)
    assert idx.tolist() == [[1, 2, 2], [3, 4, 4], [4, 4, 4]]
    assert valid.tolist() == [[True, True, False], [True, True, False], [True, False, False]]


def test_chunk_indices_agree_with_loop(rng):
    lengths = rng.integers(1, 20, size=30)
    ends = np.cumsum(lengths)
    frame_episode = np.repeat(np.arange(len(lengths)), lengths)
    anchors = rng.integers(0, ends[-1], size=200)
    idx, valid = chunk_indices(anchors, ends, frame_episode, horizon=7)
    for row, t in enumerate(anchors):
        end = ends[frame_episode[t]]
        for j in range(7):
            assert valid[row, j] == (t + j < end)
            assert idx[row, j] == min(t + j, end - 1)
