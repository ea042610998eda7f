"""Critic configuration (frozen)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from habc.errors import ConfigError


@dataclass(frozen=True)
class CriticConfig:
    """Dual-head critic and distributional value head (SPEC §3, §7)."""

    hidden_dim: int = 256
    """Width of the critic's shared encoder."""
    num_blocks: int = 2
    """Residual blocks in the shared encoder."""
    lr: float = 3e-4
    """Critic AdamW learning rate."""
    v_max: float = 6.0
    """Viability logit cap: v = v_max * tanh(raw / v_max); also the episode-end logit."""
    efficiency_target: Literal["td", "mc"] = "td"
    """Efficiency target: one-step TD with a target network (paper default) or Monte Carlo."""
    efficiency_scale: float = 100.0
    """e(o) = efficiency_scale * softplus(raw): the head's output unit, in steps."""
    lambda_e: float = 1.0
    """Weight lambda of the efficiency loss in L = L_v + lambda L_e."""
    huber_delta: float = 1.0
    """Huber delta of the efficiency loss, in steps."""
    target_ema: float = 0.005
    """EMA rate tau of the target critic used for TD targets."""
    critic_use_demos: bool = False
    """Let demo frames train the efficiency head (SPEC §2 choice, default off). On the benchmark
    it halved the head's error on pick-place's held-out episodes and did not move the weights
    or success (docs/benchmarks.md, session 39)."""
    input_noise: float = 0.0
    """Std of Gaussian noise added to the dual-head critic's training states, in units of each
    state dimension's std over the training frames; 0 = off. A regulariser SPEC does not have,
    against memorising the layouts of few training episodes; it did not raise success in the
    sim benchmark's validation A/B (docs/benchmarks.md)."""
    value_bins: int = 201
    """Bins of the distributional value (recap)."""
    c_fail: float | None = None
    """Failure penalty C_fail of the distributional value; None = T_max."""
    images: bool = True
    """The critic, the value head and the progress model see the policy's cameras besides the
    state, as the paper's critic sees its multi-view images; False: the state only. No effect on
    a policy without cameras."""

    def __post_init__(self) -> None:
        if self.hidden_dim < 8 or self.num_blocks < 1:
            raise ConfigError("critic hidden_dim >= 8 and num_blocks >= 1")
        if self.lr <= 0 or self.v_max <= 0 or self.efficiency_scale <= 0:
            raise ConfigError("critic lr, v_max and efficiency_scale must be > 0")
        if self.lambda_e < 0 or self.huber_delta <= 0 or not 0 < self.target_ema <= 1:
            raise ConfigError("lambda_e >= 0, huber_delta > 0, target_ema in (0, 1]")
        if self.input_noise < 0:
            raise ConfigError("critic input_noise must be >= 0")
        if self.value_bins < 2:
            raise ConfigError("value_bins must be >= 2")
        if self.c_fail is not None and self.c_fail < 0:
            raise ConfigError("c_fail must be >= 0")

    def cameras(self, policy_cameras: tuple[str, ...]) -> tuple[str, ...]:
        """The cameras the critic sees, given the policy's."""
        return policy_cameras if self.images else ()
