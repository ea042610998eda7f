"""Evaluation statistics (SPEC §10)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) \
        -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default).

    Args:
        successes: number of successes k.
        trials: number of trials n >= 1.
        z: standard normal quantile of the interval.

    Returns:
        (low, high) bounds in [0, 1].
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def mean_success_length(success: npt.NDArray[np.bool_], length: npt.NDArray[np.int64]) \
        -> float | None:
    """Mean episode length over successful trials only; None if there are none."""
    if not np.any(success):
        return None
    return float(np.mean(length[success]))
