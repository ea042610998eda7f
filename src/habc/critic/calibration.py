"""How well the viability head's probabilities match outcomes, as pure functions of (B,) tensors.

``p`` are predicted success probabilities ``sigmoid(v(o_t))``, ``y`` the outcome labels in
{0, 1} of the frames' episodes.
"""

from __future__ import annotations

from torch import Tensor

from habc.critic import losses as CL


def brier_score(p: Tensor, y: Tensor) -> float:
    """``mean((p - y)^2)``: 0 is perfect, 0.25 is a constant 0.5."""
    return float(((p - y.to(p.dtype)) ** 2).mean())


def brier_skill_score(p: Tensor, y: Tensor, base_rate: float) -> float:
    """``1 - Brier(p) / Brier(base_rate)``: skill over always predicting ``base_rate``.

    ``base_rate`` is the success rate of the labels the critic was trained on, so a critic that
    learned nothing about the state scores about 0, and a negative score is worse than that
    constant. NaN when the constant is itself perfect (every label equals it).
    """
    reference = brier_score(p.new_full(p.shape, base_rate), y)
    return 1.0 - brier_score(p, y) / reference if reference > 0 else float("nan")


def expected_calibration_error(p: Tensor, y: Tensor, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width bins: sum of |mean p - mean y| weighted by bin share."""
    index = (p * bins).long().clamp(max=bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += float(mask.float().mean()) * abs(float(p[mask].mean() - y[mask].mean()))
    return total


def steps_to_success_error(e: Tensor, steps_to_end: Tensor, successful: Tensor) -> float:
    """Mean ``|e(o_t) - (T_succ - t + 1)|`` over the ``successful`` (B,) frames, in steps.

    ``e`` (B,) is the efficiency head's output, ``steps_to_end`` (B,) is ``T_succ - t``.
    """
    return float(CL.masked_mean((e - CL.efficiency_mc_target(steps_to_end)).abs(), successful))
