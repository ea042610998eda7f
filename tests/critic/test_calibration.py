"""Calibration scores of the viability head on hand-computed cases."""

import math

import pytest
import torch

from habc.critic.calibration import brier_score, brier_skill_score, expected_calibration_error

P = torch.tensor([0.9, 0.2, 0.6, 0.5])
Y = torch.tensor([1, 0, 0, 1])


def test_brier_score():
    # (0.1^2 + 0.2^2 + 0.6^2 + 0.5^2) / 4 = 0.66 / 4
    assert brier_score(P, Y) == pytest.approx(0.165)


def test_brier_skill_score_against_the_training_success_rate():
    # constant 0.5: every squared error is 0.25 -> 1 - 0.165 / 0.25
    assert brier_skill_score(P, Y, 0.5) == pytest.approx(0.34)
    # constant 0.25: (0.75^2 + 0.25^2 + 0.25^2 + 0.75^2) / 4 = 0.3125 -> 1 - 0.165 / 0.3125
    assert brier_skill_score(P, Y, 0.25) == pytest.approx(0.472)
    # the constant itself scores 0; worse than it is negative
    assert brier_skill_score(torch.full((4,), 0.5), Y, 0.5) == pytest.approx(0.0)
    assert brier_skill_score(1 - Y.float(), Y, 0.5) == pytest.approx(1 - 1 / 0.25)
    assert math.isnan(brier_skill_score(P, torch.ones(4), 1.0))


def test_expected_calibration_error():
    # 10 bins: one sample per bin, |0.9-1| + |0.2-0| + |0.6-0| + |0.5-1| = 1.4, each weight 1/4
    assert expected_calibration_error(P, Y.float()) == pytest.approx(0.35)
    # 2 bins: {0.2} -> |0.2 - 0| with weight 1/4; {0.9, 0.6, 0.5} -> |2/3 - 2/3| = 0
    assert expected_calibration_error(P, Y.float(), bins=2) == pytest.approx(0.05)
