"""SPEC §8 equations on hand-computed cases: within-stage progress, p_t, r_t, weights, MSE."""

import numpy as np
import pytest
import torch

from habc.progress.targets import (
    chunk_progress_weight,
    dense_progress,
    progress_mse,
    within_stage_progress,
)

t = torch.tensor


def test_within_stage_progress_is_the_time_fraction_through_each_run_of_one_stage():
    # Episode 1: stages 0 0 0 | 1 1 | 0 (a stage can come back: a new run). Episode 2: 0 | 2.
    stage = np.array([0, 0, 0, 1, 1, 0, 0, 2])
    within = within_stage_progress(stage, np.array([0, 6]))
    expected = [0, 1 / 3, 2 / 3, 0, 1 / 2, 0, 0, 0]
    np.testing.assert_allclose(within, expected, rtol=1e-6)


def test_a_run_never_crosses_an_episode_start():
    # The same stage at the end of episode 1 and the start of episode 2: two runs of 2.
    within = within_stage_progress(np.array([1, 1, 1, 1]), np.array([0, 2]))
    np.testing.assert_allclose(within, [0, 0.5, 0, 0.5])


def test_dense_progress_adds_stage_and_within_and_divides_by_k():
    # (0 + 0.5) / 4, (1 + 0.25) / 4, (3 + 0.9) / 4
    p = dense_progress(t([0, 1, 3]), t([0.5, 0.25, 0.9]), 4)
    torch.testing.assert_close(p, t([0.125, 0.3125, 0.975]))


def test_dense_progress_takes_a_per_sample_k():
    p = dense_progress(t([1, 1]), t([0.5, 0.5]), t([2, 3]))
    torch.testing.assert_close(p, t([0.75, 0.5]))


def test_chunk_weight_sums_the_dense_rewards_over_the_chunk():
    # p = 0.1, 0.3, 0.2, 0.6 along a chunk: r_t = p_{t+1} - p_t = +0.2, -0.1, +0.4, sum 0.5.
    w = chunk_progress_weight(t([0.1]), t([0.6]))
    torch.testing.assert_close(w, t([0.2 - 0.1 + 0.4]))


def test_chunk_weight_is_the_chunks_progress_clipped_to_0_1():
    w = chunk_progress_weight(t([0.1, 0.5, 0.0]), t([0.3, 0.4, 1.5]))
    torch.testing.assert_close(w, t([0.2, 0.0, 1.0]))


def test_progress_mse_hand_case():
    assert progress_mse(t([0.5, 1.0]), t([0.0, 1.0])) == pytest.approx(0.125)
