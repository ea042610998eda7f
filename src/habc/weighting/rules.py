"""One protocol for every weighting rule (SPEC §6): ``rule(inputs) -> (weights, stats)``.

Each rule has a frozen config and is picked by name from ``RULES``. A rule returns weights that
are unit-mean over the batch's valid samples (0 for invalid ones), and a dict of statistics.
A new rule adds an entry here; one that draws its own batch mixture (``hiors``: demos and
accepted rollout frames) also names its pool shares in the learner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

from habc.credit.labels import UNCREDITED_KINDS, FrameKind
from habc.errors import ConfigError
from habc.progress.targets import chunk_progress_weight
from habc.weighting import advantages as adv

Critic = Literal["none", "dual", "distributional", "progress"]
"""What a rule needs the learner to train: nothing, the dual-head critic, recap's distributional
value, or the progress model."""


@dataclass(frozen=True)
class HabcSignals:
    """Critic-derived per-sample signals (B,) for the advantage-weighted rules."""

    a_v: Tensor
    a_e: Tensor
    v_t: Tensor
    scale_v: float
    scale_e: float


@dataclass(frozen=True)
class WeightInputs:
    """What a rule may look at for a batch of B samples.

    Attributes:
        kind: (B,) ``FrameKind`` of each anchor step.
        episode_success: (B,) bool outcome of each sample's episode.
        intervention_window: (B,) bool, chunk holds >= m human steps.
        learner_step: learner steps done so far in this run (for warm-up).
        ir_enabled: intervention reweighting is on for this round.
        habc: critic signals for advantage-weighted rules, else None.
        td_residual: (B,) recap's TD residuals, else None.
        recap_threshold: recap's pass threshold epsilon, else None.
        progress_start: (B,) estimated progress at each chunk's first step (rabc), else None.
        progress_end: (B,) estimated progress after each chunk (rabc), else None.
    """

    kind: Tensor
    episode_success: Tensor
    intervention_window: Tensor
    learner_step: int
    ir_enabled: bool
    habc: HabcSignals | None = None
    td_residual: Tensor | None = None
    recap_threshold: float | None = None
    progress_start: Tensor | None = None
    progress_end: Tensor | None = None


class WeightingRule(Protocol):
    """A weighting rule: pre-normalisation weights, normalised over valid samples."""

    @property
    def critic(self) -> Critic:
        """Which critic the rule needs."""
        ...

    @property
    def naive_credit(self) -> bool:
        """Whether the rule's critic learns from naive (every-step) outcome labels."""
        ...

    def __call__(self, inputs: WeightInputs) -> tuple[Tensor, dict[str, float]]:
        """Return (weights (B,), stats)."""
        ...


def _finish(w_tilde: Tensor, valid: Tensor, inputs: WeightInputs, stats: dict[str, float]) \
        -> tuple[Tensor, dict[str, float]]:
    """Normalise to unit mean over ``valid`` samples and add the common stats.

    ``stats["n_valid"]`` is the number of valid samples, the denominator of the actor loss.
    """
    kind = inputs.kind
    rollout = kind != FrameKind.DEMO
    weights, skipped = adv.unit_mean_normalise(w_tilde, valid)
    ok_auto = ((kind == FrameKind.AUTONOMOUS) | (kind == FrameKind.SUFFIX)) \
        & inputs.episode_success
    human_windows = (kind == FrameKind.HUMAN) & inputs.intervention_window
    stats = stats | {
        "n_valid": float(valid.sum()),
        "zero_weight_fraction": float((w_tilde == 0).float().mean()),
        "skipped_batch": float(skipped),
        "rollout_fraction": float(rollout.float().mean()),
        "w_ess_fraction": adv.effective_sample_fraction(weights, valid),
    }
    if ok_auto.any():
        stats["w_tilde_success_autonomous"] = float(w_tilde[ok_auto].mean())
    if human_windows.any():
        stats["w_tilde_human_windows"] = float(w_tilde[human_windows].mean())
    return weights, stats


def _chunk_progress(inputs: WeightInputs) -> Tensor:
    """The progress model's chunk progress clip(p_end - p_start, 0, 1) (B,) of a batch."""
    if inputs.progress_start is None or inputs.progress_end is None:
        raise RuntimeError("a rule on the progress model needs progress estimates")
    return chunk_progress_weight(inputs.progress_start, inputs.progress_end)


@dataclass(frozen=True)
class ImitationRule:
    """``sft`` and ``dagger``: weight 1 on demos (and human steps), 0 on everything else."""

    include_human: bool = False
    """Also imitate human (intervention) steps: the DAgger rule."""
    critic: Critic = "none"
    naive_credit: bool = False

    def __call__(self, inputs: WeightInputs) -> tuple[Tensor, dict[str, float]]:
        """Weights and stats."""
        keep = inputs.kind == FrameKind.DEMO
        if self.include_human:
            keep = keep | (inputs.kind == FrameKind.HUMAN)
        return _finish(keep.float(), keep, inputs, {})


@dataclass(frozen=True)
class RecapRule:
    """``recap``: demos w = 1; a rollout sample passes (w = 1) iff its TD residual > epsilon."""

    pass_quantile: float = 0.7
    """Epsilon is this quantile of the TD residuals on held-out validation episodes."""
    critic: Critic = "distributional"
    naive_credit: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.pass_quantile < 1.0:
            raise ConfigError("recap pass_quantile must lie in (0, 1)")

    def __call__(self, inputs: WeightInputs) -> tuple[Tensor, dict[str, float]]:
        """Weights and stats (incl. the pass rate per 100 rollout samples)."""
        demo = inputs.kind == FrameKind.DEMO
        if inputs.td_residual is None or inputs.recap_threshold is None:
            raise RuntimeError("recap needs TD residuals and a threshold")
        passed = ~demo & (inputs.td_residual > inputs.recap_threshold)
        stats: dict[str, float] = {"recap_threshold": inputs.recap_threshold}
        if (~demo).any():
            stats["recap_pass_per_100"] = 100.0 * float(passed[~demo].float().mean())
        return _finish((demo | passed).float(), torch.ones_like(demo), inputs, stats)


@dataclass(frozen=True)
class RejectionRule:
    """``hiors`` (Hi-ORS): episode-level rejection sampling, then reward-weighted imitation.

    Demos and the operator's steps are kept; every policy step of a successful rollout episode
    is kept (the episode is accepted whole, the steps before a takeover included); every policy
    step of a failed episode gets w = 0 (rejected). A kept sample's weight is 1 with
    ``reward="none"``, or with ``reward="progress"`` the progress its chunk makes under the
    progress model, ``clip(p(o_{t+H}) - p(o_t), 0, 1)`` (Hi-ORS weights by a reward model).
    """

    reward: Literal["none", "progress"] = "none"
    """What weights the kept samples: nothing (w = 1) or the progress model's chunk progress."""
    naive_credit: bool = False

    @property
    def critic(self) -> Critic:
        """The progress model with ``reward="progress"``, else nothing."""
        return "progress" if self.reward == "progress" else "none"

    def __call__(self, inputs: WeightInputs) -> tuple[Tensor, dict[str, float]]:
        """Weights and stats."""
        kind = inputs.kind
        keep = ((kind == FrameKind.DEMO) | (kind == FrameKind.HUMAN)
                | inputs.episode_success).float()
        stats: dict[str, float] = {}
        if self.reward == "progress":
            keep = keep * _chunk_progress(inputs)
            stats["progress/no_progress_fraction"] = float((keep == 0).float().mean())
        return _finish(keep, torch.ones_like(kind, dtype=torch.bool), inputs, stats)


@dataclass(frozen=True)
class ProgressRule:
    """``rabc`` (SPIRAL-style): every sample weighted by the progress its chunk makes.

    ``w~ = clip(p(o_{t+H}) - p(o_t), 0, 1)`` with the progress model's estimate p, on demos,
    operator steps and policy steps alike (failed rollouts included: the dense reward, not the
    outcome, judges them).
    """

    critic: Critic = "progress"
    naive_credit: bool = False

    def __call__(self, inputs: WeightInputs) -> tuple[Tensor, dict[str, float]]:
        """Weights and stats (mean chunk progress, share of chunks that make none)."""
        w_tilde = _chunk_progress(inputs)
        stats = {"progress/chunk_delta_mean": float(w_tilde.mean()),
                 "progress/no_progress_fraction": float((w_tilde == 0).float().mean())}
        return _finish(w_tilde, torch.ones_like(inputs.kind, dtype=torch.bool), inputs, stats)


@dataclass(frozen=True)
class HabcRule:
    """``habc``, ``habc_v`` and ``habc_ir``: gated advantage weights (SPEC §4)."""

    gate: Literal["linear", "sigmoid", "zero"] = "linear"
    """``linear``: g = sigmoid(v); ``sigmoid``: g = sigmoid((p - tau_g) / T_g); ``zero``: HABC-V."""
    gate_threshold: float = 0.7
    """tau_g of the sigmoid gate."""
    gate_temperature: float = 0.1
    """T_g of the sigmoid gate."""
    beta: float = 1.0
    """Temperature of exp(A / beta)."""
    w_min: float = 0.0
    """Lower clip of the bounded weight."""
    w_max: float = 5.0
    """Upper clip of the bounded weight."""
    failed_rollout_weight: Literal["zero", "habc", "habc_positive"] = "zero"
    """Failed rollout samples: 0 (default), the HABC weight, or the HABC weight where A > 0."""
    warmup_steps: int = 2000
    """Learner steps (per run) during which every HABC weight is replaced by 1."""
    critic: Critic = "dual"
    naive_credit: bool = False

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.w_min < 0 or self.w_max <= self.w_min:
            raise ConfigError("need beta > 0 and 0 <= w_min < w_max")
        if self.gate not in ("linear", "sigmoid", "zero"):
            raise ConfigError("gate must be 'linear', 'sigmoid' or 'zero'")
        if self.gate_temperature <= 0 or self.warmup_steps < 0:
            raise ConfigError("gate_temperature > 0 and warmup_steps >= 0")
        if self.failed_rollout_weight not in ("zero", "habc", "habc_positive"):
            raise ConfigError("failed_rollout_weight must be 'zero', 'habc' or 'habc_positive'")

    def gate_values(self, v_t: Tensor) -> Tensor:
        """Gate g_t (B,) for viability logits v_t."""
        if self.gate == "zero":
            return torch.zeros_like(v_t)
        if self.gate == "sigmoid":
            return adv.gate_sigmoid(v_t, threshold=self.gate_threshold,
                                    temperature=self.gate_temperature)
        return adv.gate_linear(v_t)

    def __call__(self, inputs: WeightInputs) -> tuple[Tensor, dict[str, float]]:
        """Weights and stats (advantage and gate statistics included)."""
        if inputs.habc is None:
            raise RuntimeError("HABC rules need critic signals")
        s = inputs.habc
        gate = self.gate_values(s.v_t)
        merged = adv.merged_advantage(s.a_v, s.a_e, gate, s.scale_v, s.scale_e)
        w_habc = adv.bounded_weight(merged, beta=self.beta, w_min=self.w_min, w_max=self.w_max)
        warm = inputs.learner_step < self.warmup_steps
        if warm:
            w_habc = torch.ones_like(w_habc)
        kind, ok = inputs.kind, inputs.episode_success
        outcome_labelled = (kind == FrameKind.AUTONOMOUS) | (kind == FrameKind.SUFFIX)
        if self.failed_rollout_weight == "zero":
            w_failed = torch.zeros_like(w_habc)
        elif self.failed_rollout_weight == "habc":
            w_failed = w_habc
        else:
            w_failed = torch.where(merged > 0, w_habc, torch.zeros_like(w_habc))
        w_human = w_habc if inputs.ir_enabled else torch.ones_like(w_habc)
        w_tilde = torch.zeros_like(w_habc)
        w_tilde = torch.where(kind == FrameKind.DEMO, torch.ones_like(w_habc), w_tilde)
        w_tilde = torch.where(outcome_labelled & ok, w_habc, w_tilde)
        w_tilde = torch.where(outcome_labelled & ~ok, w_failed, w_tilde)
        w_tilde = torch.where(kind == FrameKind.HUMAN, w_human, w_tilde)
        rollout = kind != FrameKind.DEMO
        stats = {"warmup": float(warm)}
        if rollout.any():
            stats |= {"adv/a_v_mean": float(s.a_v[rollout].mean()),
                      "adv/a_v_std": float(s.a_v[rollout].std(unbiased=False)),
                      "adv/a_e_mean": float(s.a_e[rollout].mean()),
                      "adv/a_e_std": float(s.a_e[rollout].std(unbiased=False)),
                      "adv/merged_mean": float(merged[rollout].mean()),
                      "adv/gate_mean": float(gate[rollout].mean()),
                      "adv/scale_v": s.scale_v, "adv/scale_e": s.scale_e}
        credited = ~torch.isin(kind, torch.tensor(UNCREDITED_KINDS, dtype=kind.dtype))
        return _finish(w_tilde, credited, inputs, stats)


RULES: dict[str, WeightingRule] = {
    "sft": ImitationRule(),
    "dagger": ImitationRule(include_human=True),
    "recap": RecapRule(),
    "habc_v": HabcRule(gate="zero"),
    "habc": HabcRule(),
    "habc_ir": HabcRule(),
    "hiors": RejectionRule(),
    "rabc": ProgressRule(),
}
"""Default rule of every method, by name. ``habc_ir`` differs from ``habc`` only in that the
online loop switches intervention reweighting on after the initial phase."""
