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


def difference_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95% interval of p1 - p2 for two independent proportions (Newcombe's hybrid score).

    With Wilson intervals (l1, u1) of p1 = k1/n1 and (l2, u2) of p2 = k2/n2 and d = p1 - p2:
    ``(d - sqrt((p1 - l1)^2 + (u2 - p2)^2), d + sqrt((u1 - p1)^2 + (p2 - l2)^2))``
    (Newcombe 1998, method 10).
    """
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson_interval(k1, n1), wilson_interval(k2, n2)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def mean_success_length(success: npt.NDArray[np.bool_], length: npt.NDArray[np.int64]) \
        -> float | None:
    """Mean episode length over successful trials only; None if there are none."""
    if not np.any(success):
        return None
    return float(np.mean(length[success]))


def failures_by_stage(success: npt.NDArray[np.bool_], stage: npt.NDArray[np.int64],
                      num_stages: int) -> list[int]:
    """Failed trials per stage: success (N,), stage (N,) in [0, K) -> K counts.

    ``stage`` is one stage per trial (e.g. the furthest stage of the scripted expert's plan the
    trial reached); successful trials are not counted.
    """
    if len(success) != len(stage):
        raise ValueError(f"{len(success)} outcomes but {len(stage)} stages")
    if np.any((stage < 0) | (stage >= num_stages)):
        raise ValueError(f"stages must lie in [0, {num_stages})")
    return np.bincount(stage[~success], minlength=num_stages).tolist()
