"""Advantages, gate and bounded weights (SPEC §4) as small pure tensor functions.

All inputs are per-sample tensors of shape (B,).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor


def next_values_at_episode_end(v_next: Tensor, e_next: Tensor, *, next_exists: Tensor,
                               episode_success: Tensor, e_last: Tensor, v_max: float) \
        -> tuple[Tensor, Tensor]:
    """Fixed values for ``o_{t+k}`` when ``t + k`` lies past the episode's last step.

    Success: ``v := v_max``, ``e := 0``. Failure or time-out: ``v := -v_max``,
    ``e := e(o_{T-1})``.

    Args:
        v_next: (B,) viability logits of ``o_{t+k}`` (ignored where it does not exist).
        e_next: (B,) steps-to-success of ``o_{t+k}`` (likewise).
        next_exists: (B,) bool, True where ``t + k <= T - 1``.
        episode_success: (B,) bool outcome of the sample's episode.
        e_last: (B,) ``e(o_{T-1})`` of the sample's episode.
        v_max: logit cap.

    Returns:
        (v_next, e_next) with the episode-end values filled in.
    """
    v_end = torch.where(episode_success, torch.full_like(v_next, v_max),
                        torch.full_like(v_next, -v_max))
    e_end = torch.where(episode_success, torch.zeros_like(e_next), e_last)
    return torch.where(next_exists, v_next, v_end), torch.where(next_exists, e_next, e_end)


def viability_advantage(v_t: Tensor, v_next: Tensor) -> Tensor:
    """``A_v = v(o_{t+k}) - v(o_t)``, a change of viability logit (zero per-step reward)."""
    return v_next - v_t


def advantage_steps(steps_left: Tensor, k: int) -> Tensor:
    """Steps that ``A_e`` charges between ``o_t`` and ``o_{t+k}``: ``min(k, T - t)``.

    Inside the episode that is ``k``. Past its last step the episode-end values stand for the
    state the episode ended in, reached after the ``T - t`` steps it had left, so no more are
    charged: a successful window that reaches success exactly as fast as ``e(o_t)`` expected
    gets ``A_e = 0`` for every ``k``. With ``k = 1`` (the paper's) it is always 1.

    Args:
        steps_left: (B,) ``T - t``, steps from the sample to its episode's end (>= 1).
        k: advantage horizon.
    """
    return steps_left.clamp(max=k)


def efficiency_advantage(e_t: Tensor, e_next: Tensor, steps: Tensor | int) -> Tensor:
    """``A_e = e(o_t) - steps - e(o_{t+k})``: positive when progress beats one step per step.

    ``steps`` is ``k``, or ``advantage_steps`` where windows can reach past the episode's end.
    """
    return e_t - steps - e_next


def gate_linear(v_t: Tensor) -> Tensor:
    """``g = sg(sigmoid(v(o_t)))``: the current viability probability."""
    return torch.sigmoid(v_t).detach()


def gate_sigmoid(v_t: Tensor, *, threshold: float, temperature: float) -> Tensor:
    """``g = sigmoid((p - tau_g) / T_g)`` with ``p = sigmoid(v(o_t))``, stop-gradient."""
    p = torch.sigmoid(v_t)
    return torch.sigmoid((p - threshold) / temperature).detach()


def merged_advantage(a_v: Tensor, a_e: Tensor, gate: Tensor, scale_v: float,
                     scale_e: float) -> Tensor:
    """``A = (1 - g) A_v / s_v + g A_e / s_e``."""
    return (1.0 - gate) * a_v / scale_v + gate * a_e / scale_e


def bounded_weight(advantage: Tensor, *, beta: float, w_min: float, w_max: float) -> Tensor:
    """``w~ = clip(exp(A / beta), w_min, w_max)``."""
    return torch.exp(advantage / beta).clamp(w_min, w_max)


def unit_mean_normalise(w_tilde: Tensor, valid: Tensor) -> tuple[Tensor, bool]:
    """``w = w~ / mean_valid(w~)`` on valid samples, 0 elsewhere.

    Args:
        w_tilde: (B,) pre-normalisation weights.
        valid: (B,) bool ``actor_valid``.

    Returns:
        (weights (B,), skipped): ``skipped`` is True when every valid ``w~`` is 0 (or no sample
        is valid); the weights are then all 0 and the batch should be skipped.
    """
    w = torch.where(valid, w_tilde, torch.zeros_like(w_tilde))
    n_valid = valid.sum()
    total = w.sum()
    if n_valid == 0 or total <= 0:
        return torch.zeros_like(w), True
    return w / (total / n_valid), False


def effective_sample_fraction(weights: Tensor, valid: Tensor) -> float:
    """Kish effective sample size over the valid samples, as a fraction of their number.

    ``(sum w)^2 / (n * sum w^2)``: 1 when every valid weight is equal (plain behaviour cloning),
    ``1/n`` when one sample carries all the weight; 0 when no valid weight is positive.

    Args:
        weights: (B,) non-negative weights.
        valid: (B,) bool ``actor_valid``.
    """
    w = weights[valid]
    square_sum = float((w * w).sum())
    if square_sum <= 0.0:
        return 0.0
    return float(w.sum()) ** 2 / (w.numel() * square_sum)


MAD_TO_STD = 1.4826
"""Median absolute deviation times this is the standard deviation of a normal distribution."""


def robust_scale(values: Tensor) -> float:
    """``1.4826 * median(|x - median(x)|)``: the std of a normal bulk, blind to heavy tails.

    torch's median takes the lower middle value when the count is even.

    Args:
        values: (N,) samples, N >= 1.
    """
    return MAD_TO_STD * float((values - values.median()).abs().median())


class RunningScale:
    """EMA of an advantage's spread over recent valid samples (starts at 1).

    ``estimator="std"`` (SPEC) tracks the variance of each batch; ``"robust"`` (a choice, not
    the paper's) tracks the square of its ``robust_scale``, so that a few frames where the critic
    jumps do not set the unit of the bulk. Either way ``scale`` is the square root of the EMA.
    """

    def __init__(self, momentum: float = 0.01, floor: float = 1e-3,
                 estimator: Literal["std", "robust"] = "std") -> None:
        self.momentum = momentum
        self.floor = floor
        self.estimator = estimator
        self.mean = 0.0
        self.var = 1.0
        self.initialised = False

    def update(self, values: Tensor) -> float:
        """Fold in a batch (B,) of valid advantages; return the current scale."""
        if values.numel() >= 2:
            m = float(values.mean())
            v = (float(values.var(unbiased=False)) if self.estimator == "std"
                 else robust_scale(values) ** 2)
            if not self.initialised:
                self.mean, self.var, self.initialised = m, v, True
            else:
                self.mean += self.momentum * (m - self.mean)
                self.var += self.momentum * (v - self.var)
        return self.scale

    @property
    def scale(self) -> float:
        """Current scale (at least ``floor``)."""
        return max(self.var ** 0.5, self.floor)

    def state(self) -> dict[str, float]:
        """Serialisable state."""
        return {"mean": self.mean, "var": self.var, "initialised": float(self.initialised)}

    def load(self, state: dict[str, float]) -> None:
        """Restore from ``state()``."""
        self.mean, self.var = state["mean"], state["var"]
        self.initialised = bool(state["initialised"])
