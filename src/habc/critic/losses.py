"""Critic targets and per-sample losses (SPEC §3, §7) as pure functions of (B,) tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def viability_loss(logits: Tensor, outcome: Tensor) -> Tensor:
    """Per-sample BCE of ``sigmoid(v(o_t))`` against the outcome label y in {0, 1}: (B,)."""
    return F.binary_cross_entropy_with_logits(logits, outcome.to(logits.dtype), reduction="none")


def efficiency_td_target(e_next_target: Tensor, is_terminal_success: Tensor, t_max: int) \
        -> Tensor:
    """``y_e = 1 + sg(e_target(o_{t+1}))``, or 1 on the terminal success step, in [1, T_max]."""
    target = torch.where(is_terminal_success, torch.ones_like(e_next_target),
                         1.0 + e_next_target.detach())
    return target.clamp(1.0, float(t_max))


def efficiency_mc_target(steps_to_end: Tensor) -> Tensor:
    """``y_e = T_succ - t + 1`` for successful episodes (``steps_to_end = T_succ - t``)."""
    return steps_to_end.to(torch.float32) + 1.0


def efficiency_loss(e_pred: Tensor, target: Tensor, delta: float) -> Tensor:
    """Per-sample Huber loss ``Huber_delta(e(o_t), y_e)``: (B,)."""
    return F.huber_loss(e_pred, target, reduction="none", delta=delta)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` (B,) over ``mask`` (B,); 0 when the mask is empty."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp_min(1.0)


def recap_reward(steps_to_end: Tensor, episode_success: Tensor, c_fail: float, t_max: int) \
        -> Tensor:
    """Normalised reward of the parent value: -1 per step, -C_fail more on a failed last step.

    Divided by ``T_max + C_fail`` so that returns lie in [-1, 0].
    """
    last_failed = (steps_to_end == 0) & ~episode_success
    reward = -1.0 - c_fail * last_failed.to(torch.float32)
    return reward / (t_max + c_fail)


def value_target(reward: Tensor, v_next: Tensor, is_last: Tensor) -> Tensor:
    """MC return at episode boundaries (the last reward), TD target ``r + V(o')`` elsewhere."""
    return torch.where(is_last, reward, reward + v_next.detach()).clamp(-1.0, 0.0)


def two_hot(values: Tensor, support: Tensor) -> Tensor:
    """Project scalars (B,) onto a uniform support (K,) as two-hot distributions (B, K)."""
    k = support.numel()
    lo, hi = float(support[0]), float(support[-1])
    pos = ((values.clamp(lo, hi) - lo) / (hi - lo) * (k - 1))
    left = pos.floor().long().clamp(0, k - 1)
    right = (left + 1).clamp(max=k - 1)
    w_right = pos - left.to(pos.dtype)
    out = torch.zeros(values.shape[0], k, dtype=values.dtype)
    out.scatter_add_(1, left[:, None], (1.0 - w_right)[:, None])
    out.scatter_add_(1, right[:, None], w_right[:, None])
    return out


def distributional_loss(logits: Tensor, target_probs: Tensor) -> Tensor:
    """Per-sample cross-entropy of bin logits (B, K) against target distributions (B, K)."""
    return -(target_probs * F.log_softmax(logits, dim=-1)).sum(-1)


def td_residual(reward: Tensor, v_t: Tensor, v_next: Tensor, is_last: Tensor) -> Tensor:
    """``delta_t = r_t + V(o_{t+1}) - V(o_t)``, with ``V = 0`` after the last step."""
    return reward + torch.where(is_last, torch.zeros_like(v_next), v_next) - v_t
