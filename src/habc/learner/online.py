"""The online learner: one update trains the critic(s) and the actor on the same batch.

Per step (reads like SPEC §3-§5):
1. sample anchors from the method's source mixture (demos / rollouts / human windows);
2. critic step: viability BCE on outcome-labelled frames + lambda * Huber on successful frames
   (or the distributional value for recap, or the progress model for rabc), then an EMA update
   of the target critic;
3. advantages from the updated critic (or chunk progress), bounded weights via the method's rule;
4. actor step on the weighted flow-matching loss, then (with ``actor_ema``) an update of the
   actor's weight average, which is the policy the run publishes.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from habc.credit.labels import (
    NO_LABEL,
    UNCREDITED_KINDS,
    CreditLabels,
    FrameKind,
    assign_credit,
    failed_takeover_frames,
    intervention_windows,
)
from habc.critic import calibration as cal
from habc.critic import losses as CL
from habc.critic.config import CriticConfig
from habc.critic.networks import DistributionalValue, DualHeadCritic
from habc.envs.registry import task_prompt
from habc.episodes.episode import EpisodeSource
from habc.episodes.store import StoreArrays
from habc.errors import ConfigError, StoreError
from habc.learner.batches import frames_at, gather_windows
from habc.learner.optim_state import flatten_optimizer, restore_optimizer
from habc.networks import ImageEncoder
from habc.policy import flow_matching as fm
from habc.policy.backend import ChunkPolicy, load_policy
from habc.progress.model import ProgressConfig, ProgressModel
from habc.progress.targets import dense_progress, progress_mse, within_stage_progress
from habc.weighting import advantages as adv
from habc.weighting.rules import (
    HabcRule,
    HabcSignals,
    RecapRule,
    WeightingRule,
    WeightInputs,
)

POLICY_DIR = "policy"
CRITIC_FILE = "critic.safetensors"
OPTIM_FILE = "optimizers.safetensors"
EMA_FILE = "actor_ema.safetensors"
STATE_FILE = "learner.json"


@dataclass(frozen=True)
class LearnerConfig:
    """Online learner hyper-parameters."""

    batch_size: int = 256
    """Windows per update."""
    actor_lr: float = 1e-4
    """Actor AdamW learning rate (constant during online training)."""
    weight_decay: float = 1e-4
    """AdamW weight decay (actor and critic)."""
    grad_clip: float = 1.0
    """Gradient-norm clip (actor and critic)."""
    demo_fraction: float = 0.25
    """Share of each batch drawn from demos by the rollout-based methods."""
    dagger_human_fraction: float = 0.5
    """Share of each batch drawn from human windows by dagger (the rest: demos)."""
    actor_human_fraction: float | None = None
    """With ``actor_batches='weighted'``: share of each actor batch drawn from the operator's
    windows; the rest after ``demo_fraction`` comes from the policy's own imitable steps (a
    mixture choice, not the paper's). None: human and own imitable steps are one pool, drawn in
    proportion to their frame counts. The policy's own imitable steps are those of its
    successful rollouts, and of its failed ones too when the rule's ``failed_rollout_weight``
    can give them weight."""
    imitate_failed_takeovers: bool = True
    """Imitate the frames of a takeover that ran to the end of a failed episode (SPEC §2: every
    human frame is imitated). False leaves them out of the actor's batches; this needs a method
    with its own actor pool (dagger, hiors, or an HABC rule with ``actor_batches="weighted"``)."""
    advantage_horizon: int = 1
    """k of the k-step advantages (paper: 1)."""
    boundary_margin: int = 0
    """Rollout frames within this many steps of a logged takeover start or end are neither
    imitated as the operator's nor outcome-labelled (``FrameKind.BOUNDARY``), against takeover
    boundaries logged a few steps off (SPEC §11 names them a limit; 0: SPEC's labels)."""
    advantage_scale: Literal["std", "robust"] = "std"
    """Running scale s_v, s_e that divides each advantage before the gate merges them: ``std``
    (SPEC), or ``robust``, 1.4826 x the median absolute deviation of each batch (a choice: the
    one-step advantages are heavy-tailed, and their std is 6-12 times the bulk's spread;
    docs/benchmarks.md)."""
    actor_batches: Literal["shared", "weighted"] = "shared"
    """``shared``: one batch per step trains the critic and the actor (SPEC). ``weighted`` (HABC
    rules with intervention-aware credit): the critic keeps that batch, and the actor draws its
    own batch only from frames whose credit label can carry weight (demos, human steps, the
    policy's steps of successful rollouts, and of failed ones when the rule's
    ``failed_rollout_weight`` can weight them), so no actor sample is spent on a frame that the
    rule always gives weight 0."""
    validation_every: int = 10
    """Every n-th rollout episode is held out from critic training (choice; the actor still
    imitates it): recap picks its threshold on these episodes, and the dual-head critic's
    calibration is measured on them after each round (``critic/heldout_*``)."""
    recap_threshold_every: int = 100
    """Recompute recap's threshold every this many updates."""
    critic_steps_per_round: int | None = None
    """Train the critic (dual-head, or recap's value) only in the first n learner steps of each
    round, then hold it fixed while the actor trains on (choice, against the critic memorising
    its ~60 training episodes; docs/benchmarks.md). None: every step, as in the paper."""
    actor_ema: float | None = None
    """Decay of an exponential moving average of the actor's weights, updated after every actor
    step; when set, the published policies (rollouts, evaluation) are the average, as in
    Diffusion Policy (a choice against the round-to-round swings of one checkpoint). None: the
    trained weights are published."""
    task_balance: bool = False
    """With a multi-task policy: draw each pool's samples equally from the tasks that have
    frames in it (each task's share split evenly among its frames) instead of in proportion to
    the tasks' frame counts, where tasks with longer or more episodes fill more of each batch
    (a choice; SPEC is single-task)."""
    critic: CriticConfig = field(default_factory=CriticConfig)
    """Critic architecture and losses."""
    progress: ProgressConfig = field(default_factory=ProgressConfig)
    """Progress model of rabc."""

    def __post_init__(self) -> None:
        if self.batch_size < 2 or self.advantage_horizon < 1 or self.boundary_margin < 0:
            raise ConfigError("batch_size >= 2, advantage_horizon >= 1 and boundary_margin >= 0")
        if not 0 <= self.demo_fraction <= 1 or not 0 <= self.dagger_human_fraction <= 1:
            raise ConfigError("demo_fraction and dagger_human_fraction must lie in [0, 1]")
        if self.actor_lr <= 0 or self.grad_clip <= 0 or self.weight_decay < 0:
            raise ConfigError("actor_lr, grad_clip > 0 and weight_decay >= 0")
        if self.advantage_scale not in ("std", "robust"):
            raise ConfigError("advantage_scale must be 'std' or 'robust'")
        if self.validation_every < 2 or self.recap_threshold_every < 1:
            raise ConfigError("validation_every >= 2 and recap_threshold_every >= 1")
        if self.critic_steps_per_round is not None and self.critic_steps_per_round < 1:
            raise ConfigError("critic_steps_per_round must be >= 1 (or None: every step)")
        if self.actor_ema is not None and not 0.0 < self.actor_ema < 1.0:
            raise ConfigError("actor_ema must lie in (0, 1) (or None: no average)")
        if self.actor_human_fraction is not None:
            if self.actor_batches != "weighted":
                raise ConfigError("actor_human_fraction needs actor_batches='weighted'")
            if not 0 <= self.actor_human_fraction <= 1 - self.demo_fraction:
                raise ConfigError("actor_human_fraction must lie in [0, 1 - demo_fraction]")


def restore_checkpoint(directory: Path) -> bool:
    """Whether a complete ``OnlineLearner.save`` checkpoint is at ``directory``.

    If a crash fell between the renames of a save, the previous checkpoint is put back first.
    """
    old = directory.with_name(directory.name + ".old")
    if not directory.exists() and old.exists():
        old.rename(directory)
    return (directory / STATE_FILE).exists()


OWN_POOL_METHODS = ("dagger", "hiors")
"""Methods whose actor batches come from pools that honour ``imitate_failed_takeovers``."""


@dataclass(frozen=True)
class TrainingData:
    """Store arrays plus per-frame credit labels and index helpers (all (N,) unless noted)."""

    arrays: StoreArrays
    labels: CreditLabels
    next1: npt.NDArray[np.int64]
    nextk: npt.NDArray[np.int64]
    nextk_exists: npt.NDArray[np.bool_]
    last: npt.NDArray[np.int64]
    intervention_window: npt.NDArray[np.bool_]
    validation: npt.NDArray[np.bool_]
    pools: dict[str, npt.NDArray[np.int64]]
    state_std: npt.NDArray[np.float32]
    """(S,) std of each state dimension over all frames (floored at 1e-3)."""
    stage: npt.NDArray[np.int64] | None = None
    """(N,) stage label of each frame (rabc's progress model), else None."""
    within: npt.NDArray[np.float32] | None = None
    """(N,) within-stage progress of each frame (with ``stage``), else None."""
    episode_task: npt.NDArray[np.int64] | None = None
    """(E,) each episode's task index among a multi-task policy's prompts, else None."""
    pool_probabilities: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    """Sampling probabilities of a pool's frames, aligned with ``pools[name]`` (task-balanced
    pools); a pool not listed is sampled uniformly."""

    def task_at(self, idx: npt.NDArray[np.int64]) -> Tensor | None:
        """(len(idx),) task index of the frames ``idx`` for a multi-task critic, else None."""
        if self.episode_task is None:
            return None
        return torch.from_numpy(self.episode_task[self.arrays.frame_episode[idx]])


def episode_tasks(arrays: StoreArrays, prompts: Sequence[str]) -> npt.NDArray[np.int64]:
    """(E,) index in ``prompts`` of each episode's task prompt.

    Raises:
        StoreError: if an episode's task is not one of ``prompts``.
    """
    index = {p: i for i, p in enumerate(prompts)}
    unknown = sorted({str(t) for t in arrays.task if task_prompt(str(t)) not in index})
    if unknown:
        raise StoreError(f"episodes of tasks {unknown} are not among the policy's tasks "
                         f"{list(prompts)}")
    return np.array([index[task_prompt(str(t))] for t in arrays.task], dtype=np.int64)


def task_balanced_probabilities(task: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """(n,) sampling probabilities of a pool's frames from their task indices (n,).

    Every task present gets an equal share, split evenly among its frames: tasks [0, 0, 0, 1]
    give [1/6, 1/6, 1/6, 1/2].
    """
    _, inverse, counts = np.unique(task, return_inverse=True, return_counts=True)
    return 1.0 / (len(counts) * counts[inverse])


def imitates_failed_rollouts(rule: WeightingRule) -> bool:
    """Whether ``rule`` can give weight to the policy's steps of failed rollouts."""
    return isinstance(rule, HabcRule) and rule.failed_rollout_weight != "zero"


def prepare_data(arrays: StoreArrays, *, horizon: int, k: int, naive: bool,
                 critic_use_demos: bool, validation_every: int,
                 imitate_failed_takeovers: bool = True, imitate_failed_rollouts: bool = False,
                 boundary_margin: int = 0, stage: npt.NDArray[np.int64] | None = None,
                 prompts: Sequence[str] = (), task_balance: bool = False) -> TrainingData:
    """Label frames (SPEC §2) and build the sampling pools.

    ``imitate_failed_takeovers=False`` leaves the frames of takeovers that ran to the end of a
    failed episode out of the actor's pools (``human``, ``rollout_imitable`` and ``accepted``).
    ``imitate_failed_rollouts=True`` puts the policy's outcome-labelled steps of failed episodes
    into the actor's pools ``own_imitable`` and ``rollout_imitable``, for an HABC rule whose
    ``failed_rollout_weight`` can give them weight (default: only its successful ones).
    ``boundary_margin`` is ``assign_credit``'s: the frames near a logged takeover boundary.
    ``stage`` (N,), the stage label of every frame, adds the progress model's targets (SPEC
    §8) and its training pool ``progress``: the frames of successful episodes (demos included)
    outside the held-out ones, the episodes whose time line is a path to success.
    ``prompts``, a multi-task policy's, give every episode its task index (``episode_task``);
    ``task_balance`` then samples every pool task-balanced (``pool_probabilities``).
    """
    labels = assign_credit(arrays.controller, arrays.episode_starts, arrays.episode_ends,
                           arrays.source, arrays.success, naive=naive,
                           critic_use_demos=critic_use_demos, boundary_margin=boundary_margin)
    idx = np.arange(arrays.num_frames)
    last = arrays.episode_ends[arrays.frame_episode] - 1
    windows = intervention_windows(idx, arrays.controller, arrays.episode_ends,
                                   arrays.frame_episode, horizon)
    is_demo = labels.kind == FrameKind.DEMO
    rollout_ep = arrays.source != str(EpisodeSource.DEMO)
    held_out_ep = rollout_ep & (np.cumsum(rollout_ep) % validation_every == 0)
    validation = held_out_ep[arrays.frame_episode]
    policy_step = (labels.kind == FrameKind.AUTONOMOUS) | (labels.kind == FrameKind.SUFFIX)
    human = labels.kind == FrameKind.HUMAN
    if not imitate_failed_takeovers:
        human = human & ~failed_takeover_frames(arrays.controller, arrays.episode_starts,
                                                arrays.episode_ends, arrays.success)
    own_imitable = policy_step & (labels.episode_success | imitate_failed_rollouts)
    accepted = ~is_demo & (human | labels.episode_success)
    pools = {"demo": idx[is_demo], "rollout": idx[~is_demo],
             "rollout_imitable": idx[human | own_imitable], "human": idx[human & windows],
             "own_imitable": idx[own_imitable], "accepted": idx[accepted]}
    within = None
    if stage is not None:
        within = within_stage_progress(stage, arrays.episode_starts)
        pools["progress"] = idx[labels.episode_success & ~validation]
    episode_task = episode_tasks(arrays, prompts) if prompts else None
    probabilities = {}
    if task_balance and episode_task is not None:
        frame_task = episode_task[arrays.frame_episode]
        probabilities = {name: task_balanced_probabilities(frame_task[pool])
                         for name, pool in pools.items() if len(pool)}
    return TrainingData(arrays=arrays, labels=labels, next1=np.minimum(idx + 1, last),
                        nextk=np.minimum(idx + k, last), nextk_exists=idx + k <= last, last=last,
                        intervention_window=windows, validation=validation, pools=pools,
                        state_std=np.maximum(arrays.state.std(0), 1e-3).astype(np.float32),
                        stage=stage, within=within, episode_task=episode_task,
                        pool_probabilities=probabilities)


def perturb_states(states: Tensor, std: Tensor, sigma: float,
                   generator: torch.Generator | None = None) -> Tensor:
    """``states + sigma * std * z``, z ~ N(0, I): states (B, S), std (S,) -> (B, S).

    With ``sigma == 0`` the states come back unchanged, and no random number is drawn.
    """
    if sigma == 0:
        return states
    return states + sigma * std * torch.randn(states.shape, generator=generator)


def ema_update(average: torch.nn.Module, current: torch.nn.Module, decay: float) -> None:
    """``theta_avg <- decay * theta_avg + (1 - decay) * theta`` for every parameter.

    Buffers (the state normaliser) are copied, not averaged.
    """
    with torch.no_grad():
        for p_avg, p in zip(average.parameters(), current.parameters(), strict=True):
            p_avg.lerp_(p, 1.0 - decay)
        for b_avg, b in zip(average.buffers(), current.buffers(), strict=True):
            b_avg.copy_(b)


def sample_anchors(pools: dict[str, npt.NDArray[np.int64]], shares: dict[str, float], batch: int,
                   rng: np.random.Generator,
                   probabilities: dict[str, npt.NDArray[np.float64]] | None = None) \
        -> npt.NDArray[np.int64]:
    """Draw ``batch`` anchors with the given pool shares; empty pools give their share away.

    Within a pool, frames are drawn uniformly, or with ``probabilities[pool]`` if given.
    """
    live = {k: s for k, s in shares.items() if s > 0 and len(pools[k]) > 0}
    if not live:
        raise ConfigError(f"no training data in pools {sorted(shares)}")
    total = sum(live.values())
    names = list(live)
    counts = rng.multinomial(batch, [live[n] / total for n in names])
    probabilities = probabilities or {}
    return np.concatenate([rng.choice(pools[n], size=c, p=probabilities.get(n))
                           for n, c in zip(names, counts, strict=True)])


def _in_chunks(fn: Callable[[npt.NDArray[np.int64]], tuple[Tensor, ...]],
               idx: npt.NDArray[np.int64], net: torch.nn.Module) -> tuple[Tensor, ...]:
    """``fn(idx)``, in chunks of 512 frames when ``net`` sees camera frames (memory)."""
    if not any(isinstance(m, ImageEncoder) for m in net.modules()):
        return fn(idx)
    parts = [fn(idx[i:i + 512]) for i in range(0, len(idx), 512)]
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


class OnlineLearner:
    """Actor + critic(s) + optimisers + running statistics of one online run."""

    def __init__(self, policy: ChunkPolicy, rule: WeightingRule, config: LearnerConfig,
                 *, t_max: int, method: str, num_stages: tuple[int, ...] | None = None) -> None:
        """Build the critic(s) the rule needs and the optimisers.

        ``num_stages``: K of each task's stage labels (in the order of the policy's
        ``prompts``; one for a single-task policy), needed by a rule on the progress model.
        """
        self.policy = policy
        self.rule = rule
        self.config = config
        self.t_max = t_max
        self.method = method
        self.step = 0
        self.round = 0
        self.ir_enabled = False
        self.scale_v = adv.RunningScale(estimator=config.advantage_scale)
        self.scale_e = adv.RunningScale(estimator=config.advantage_scale)
        self.recap_threshold = 0.0
        self.actor_ema: ChunkPolicy | None = None
        self._ema_decay = config.actor_ema or 0.0
        if config.actor_ema is not None:
            self.actor_ema = copy.deepcopy(policy).requires_grad_(False)
        self.actor_opt = torch.optim.AdamW(policy.parameters(), lr=config.actor_lr,
                                           weight_decay=config.weight_decay, fused=True)
        cc = config.critic
        normalizer = copy.deepcopy(policy.normalizer)
        self.critic: DualHeadCritic | None = None
        self.value: DistributionalValue | None = None
        self.progress: ProgressModel | None = None
        params: list[torch.nn.Parameter] = []
        lr = cc.lr
        cameras = cc.cameras(policy.config.cameras)
        if rule.critic == "dual":
            self.critic = DualHeadCritic(policy.state_dim, cc, normalizer, cameras,
                                         policy.config.image_shift, len(policy.prompts))
            params = list(self.critic.parameters())
        elif rule.critic == "distributional":
            self.value = DistributionalValue(policy.state_dim, cc, normalizer, cameras,
                                             policy.config.image_shift, len(policy.prompts))
            params = list(self.value.parameters())
        elif rule.critic == "progress":
            if num_stages is None:
                raise ConfigError(f"{method} needs the task's stage labels (num_stages)")
            if len(num_stages) != max(1, len(policy.prompts)):
                raise ConfigError(f"{len(num_stages)} tasks' stage counts for a policy of "
                                  f"{max(1, len(policy.prompts))} tasks")
            self.progress = ProgressModel(policy.state_dim, num_stages, config.progress,
                                          normalizer, cameras)
            params, lr = list(self.progress.parameters()), config.progress.lr
        self.critic_opt = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay,
                                            fused=True) \
            if params else None
        net = self.critic if self.critic is not None else self.value
        self.target = copy.deepcopy(net) if net is not None else None
        if config.actor_batches == "weighted" and not (
                isinstance(rule, HabcRule) and not rule.naive_credit):
            raise ConfigError("actor_batches='weighted' needs an HABC rule with "
                              "intervention-aware credit")
        if not config.imitate_failed_takeovers and not (
                method in OWN_POOL_METHODS or config.actor_batches == "weighted"):
            raise ConfigError("imitate_failed_takeovers=False needs an actor pool without "
                              "those frames: method dagger or hiors, or "
                              "actor_batches='weighted'")

    # ------------------------------------------------------------------------------- update
    def shares(self, *, actor: bool = False) -> dict[str, float]:
        """Source mixture of this method's batches (``actor``: of its separate actor batch)."""
        c = self.config
        if self.method == "sft":
            return {"demo": 1.0}
        if self.method == "dagger":
            return {"demo": 1.0 - c.dagger_human_fraction, "human": c.dagger_human_fraction}
        if self.method == "hiors":
            return {"demo": c.demo_fraction, "accepted": 1.0 - c.demo_fraction}
        if actor and c.actor_human_fraction is not None:
            return {"demo": c.demo_fraction, "human": c.actor_human_fraction,
                    "own_imitable": 1.0 - c.demo_fraction - c.actor_human_fraction}
        rollout = "rollout_imitable" if actor else "rollout"
        return {"demo": c.demo_fraction, rollout: 1.0 - c.demo_fraction}

    def update(self, data: TrainingData, rng: np.random.Generator, generator: torch.Generator,
               *, train_critic: bool = True) -> dict[str, float]:
        """One learner step on a fresh batch; returns scalar statistics.

        ``train_critic=False`` leaves the critic as it is and only uses it to weight the actor.
        """
        anchors = sample_anchors(data.pools, self.shares(), self.config.batch_size, rng,
                                 data.pool_probabilities)
        arrays, labels = data.arrays, data.labels
        stats: dict[str, float] = {}
        if self.critic is not None:
            if train_critic:
                s_critic = perturb_states(torch.from_numpy(arrays.state[anchors]),
                                          torch.from_numpy(data.state_std),
                                          self.config.critic.input_noise, generator)
                stats |= self._critic_step(data, anchors, s_critic, generator)
            if self.config.actor_batches == "weighted":
                anchors = sample_anchors(data.pools, self.shares(actor=True),
                                         self.config.batch_size, rng, data.pool_probabilities)
        s_t = torch.from_numpy(arrays.state[anchors])
        kind = torch.from_numpy(labels.kind[anchors].astype(np.int64))
        stats["actor/operator_fraction"] = float((kind == FrameKind.HUMAN).float().mean())
        stats["actor/demo_fraction"] = float((kind == FrameKind.DEMO).float().mean())
        success = torch.from_numpy(labels.episode_success[anchors])
        inputs = WeightInputs(
            kind=kind, episode_success=success,
            intervention_window=torch.from_numpy(data.intervention_window[anchors]),
            learner_step=self.step, ir_enabled=self.ir_enabled)
        if self.critic is not None:
            inputs = WeightInputs(**{**inputs.__dict__,
                                     "habc": self._habc_signals(data, anchors, s_t, kind)})
        elif self.progress is not None:
            if train_critic:
                stats |= self._progress_step(data, rng)
            start, end = self.progress_estimates(data, anchors)
            inputs = WeightInputs(**{**inputs.__dict__, "progress_start": start,
                                     "progress_end": end})
        elif self.value is not None:
            if train_critic:
                stats |= self._value_step(data, anchors, s_t, generator)
            if self.step % self.config.recap_threshold_every == 0:
                self._update_recap_threshold(data, rng)
            inputs = WeightInputs(**{**inputs.__dict__,
                                     "td_residual": self._td_residual(data, anchors),
                                     "recap_threshold": self.recap_threshold})

        weights, rule_stats = self.rule(inputs)
        stats |= rule_stats
        if rule_stats["skipped_batch"] == 0.0:
            batch = gather_windows(arrays, anchors, self.policy.config.chunk_horizon)
            losses = self.policy.per_sample_loss(batch.obs, batch.actions, batch.valid,
                                                 generator)
            actor_loss = fm.weighted_loss(losses, weights, rule_stats["n_valid"])  # sum w l / n
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            stats["actor/grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
                self.policy.parameters(), self.config.grad_clip))
            self.actor_opt.step()
            if self.actor_ema is not None:
                ema_update(self.actor_ema, self.policy, self._ema_decay)
            stats["actor/loss"] = actor_loss.item()
            stats["actor/unweighted_loss"] = float(losses.detach().mean())
        self.step += 1
        return stats

    def _ema(self) -> None:
        net = self.critic if self.critic is not None else self.value
        assert net is not None and self.target is not None
        tau = self.config.critic.target_ema
        with torch.no_grad():
            for p_t, p in zip(self.target.parameters(), net.parameters(), strict=True):
                p_t.lerp_(p, tau)

    def _critic_step(self, data: TrainingData, anchors: npt.NDArray[np.int64],
                     s_t: Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        assert self.critic is not None and self.target is not None and self.critic_opt
        cc, labels = self.config.critic, data.labels
        outcome = torch.from_numpy(labels.outcome_label[anchors].astype(np.int64))
        trained = torch.from_numpy(~data.validation[anchors])  # held-out episodes: no loss
        labelled = (outcome != NO_LABEL) & trained
        succ_valid = torch.from_numpy(labels.succ_target_valid[anchors]) & trained
        steps_to_end = torch.from_numpy(labels.steps_to_end[anchors])
        v_t, e_t = self.critic(s_t, frames_at(data.arrays, anchors), generator,
                               data.task_at(anchors))
        if cc.efficiency_target == "td":
            nxt = data.next1[anchors]
            with torch.no_grad():
                _, e_next = self.target(torch.from_numpy(data.arrays.state[nxt]),
                                        frames_at(data.arrays, nxt), task=data.task_at(nxt))
            terminal = (steps_to_end == 0) & torch.from_numpy(labels.episode_success[anchors])
            y_e = CL.efficiency_td_target(e_next, terminal, self.t_max)
        else:
            y_e = CL.efficiency_mc_target(steps_to_end)
        loss_v = CL.masked_mean(CL.viability_loss(v_t, outcome.clamp_min(0)), labelled)
        loss_e = CL.masked_mean(CL.efficiency_loss(e_t, y_e, cc.huber_delta), succ_valid)
        loss = loss_v + cc.lambda_e * loss_e
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), self.config.grad_clip)
        self.critic_opt.step()
        self._ema()
        stats = {"critic/loss_v": loss_v.item(), "critic/loss_e": loss_e.item(),
                 "critic/labelled_fraction": float(labelled.float().mean())}
        if labelled.any():
            p = torch.sigmoid(v_t.detach()[labelled])
            y = outcome[labelled].float()
            stats["critic/brier"] = cal.brier_score(p, y)
            stats["critic/ece"] = cal.expected_calibration_error(p, y)
        if succ_valid.any():  # calibration of e against the true steps to success
            stats["critic/e_abs_error"] = cal.steps_to_success_error(e_t.detach(), steps_to_end,
                                                                     succ_valid)
        return stats

    def critic_heldout(self, data: TrainingData) -> dict[str, float]:
        """The dual-head critic on the held-out episodes' frames (none of them trained it).

        Brier score, its skill over the training labels' success rate (left out when
        undefined), and ECE of the viability head on the outcome-labelled held-out frames; the
        efficiency head's mean error against the true steps to success on the held-out
        successful frames; and how many held-out episodes (and successes) these frames come
        from, since a few episodes of one outcome make the scores noisy. A training Brier far
        below the held-out one means the critic memorised its episodes. Empty without held-out
        labels.
        """
        critic = self.critic
        assert critic is not None
        labels = data.labels
        labelled = labels.outcome_label != NO_LABEL
        held = np.flatnonzero(labelled & data.validation)
        train = labelled & ~data.validation
        if len(held) == 0 or not train.any():
            return {}
        with torch.no_grad():
            v, e = _in_chunks(lambda i: critic(torch.from_numpy(data.arrays.state[i]),
                                               frames_at(data.arrays, i), task=data.task_at(i)),
                              held, critic)
        p = torch.sigmoid(v)
        y = torch.from_numpy(labels.outcome_label[held].astype(np.float32))
        base_rate = float(labels.outcome_label[train].mean())
        episodes = np.unique(data.arrays.frame_episode[held])
        stats = {"critic/heldout_frames": float(len(held)),
                 "critic/heldout_episodes": float(len(episodes)),
                 "critic/heldout_successes": float(data.arrays.success[episodes].sum()),
                 "critic/heldout_brier": cal.brier_score(p, y),
                 "critic/heldout_ece": cal.expected_calibration_error(p, y)}
        skill = cal.brier_skill_score(p, y, base_rate)
        if np.isfinite(skill):  # NaN when every label equals the base rate
            stats["critic/heldout_brier_skill"] = skill
        succ = torch.from_numpy(labels.succ_target_valid[held])
        if succ.any():
            stats["critic/heldout_e_abs_error"] = cal.steps_to_success_error(
                e, torch.from_numpy(labels.steps_to_end[held]), succ)
        return stats

    def _habc_signals(self, data: TrainingData, anchors: npt.NDArray[np.int64], s_t: Tensor,
                      kind: Tensor) -> HabcSignals:
        assert self.critic is not None
        k = self.config.advantage_horizon
        states = data.arrays.state
        idx = np.concatenate([anchors, data.nextk[anchors], data.last[anchors]])
        with torch.no_grad():  # one forward pass over s_t, s_{t+k} and the episode's last state
            v, e = self.critic(torch.cat([s_t, torch.from_numpy(states[data.nextk[anchors]]),
                                          torch.from_numpy(states[data.last[anchors]])]),
                               frames_at(data.arrays, idx), task=data.task_at(idx))
        (v_t, v_k, _), (e_t, e_k, e_last) = v.chunk(3), e.chunk(3)
        v_k, e_k = adv.next_values_at_episode_end(
            v_k, e_k, next_exists=torch.from_numpy(data.nextk_exists[anchors]),
            episode_success=torch.from_numpy(data.labels.episode_success[anchors]),
            e_last=e_last, v_max=self.config.critic.v_max)
        a_v = adv.viability_advantage(v_t, v_k)
        steps_left = torch.from_numpy(data.last[anchors] - anchors + 1)
        a_e = adv.efficiency_advantage(e_t, e_k, adv.advantage_steps(steps_left, k))
        scored = (kind != FrameKind.DEMO) \
            & ~torch.isin(kind, torch.tensor(UNCREDITED_KINDS, dtype=kind.dtype))
        return HabcSignals(a_v=a_v, a_e=a_e, v_t=v_t,
                           scale_v=self.scale_v.update(a_v[scored]),
                           scale_e=self.scale_e.update(a_e[scored]))

    def pretrain_progress(self, data: TrainingData, rng: np.random.Generator) -> dict[str, float]:
        """``progress.pretrain_steps`` steps of the progress model alone; the last step's stats."""
        stats: dict[str, float] = {}
        for _ in range(self.config.progress.pretrain_steps):
            stats = self._progress_step(data, rng)
        return {f"{k}_pretrain": v for k, v in stats.items()}

    def _progress_step(self, data: TrainingData, rng: np.random.Generator) -> dict[str, float]:
        """One step of the progress model on frames of successful episodes (SPEC §8)."""
        assert self.progress is not None and self.critic_opt is not None
        assert data.stage is not None and data.within is not None
        pool = data.pools["progress"]
        if len(pool) == 0:
            return {}
        idx = rng.choice(pool, size=self.config.batch_size)
        task = self._task_or_zero(data, idx)
        losses = self.progress.per_sample_loss(
            torch.from_numpy(data.arrays.state[idx]), task, torch.from_numpy(data.stage[idx]),
            torch.from_numpy(data.within[idx]), self.config.progress.within_loss_weight,
            frames_at(data.arrays, idx))
        loss = losses.mean()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.progress.parameters(), self.config.grad_clip)
        self.critic_opt.step()
        return {"progress/loss": loss.item()}

    @staticmethod
    def _task_or_zero(data: TrainingData, idx: npt.NDArray[np.int64]) -> Tensor:
        """(len(idx),) task index of the frames ``idx``: 0 throughout for a single task."""
        task = data.task_at(idx)
        return task if task is not None else torch.zeros(len(idx), dtype=torch.int64)

    def progress_estimates(self, data: TrainingData, anchors: npt.NDArray[np.int64]) \
            -> tuple[Tensor, Tensor]:
        """Estimated progress (B,) at each anchor and after its chunk.

        "After" is H steps on, or the episode's last frame if that comes first.
        """
        assert self.progress is not None
        end = np.minimum(anchors + self.policy.config.chunk_horizon, data.last[anchors])
        idx = np.concatenate([anchors, end])
        states = torch.from_numpy(data.arrays.state[idx])
        with torch.no_grad():
            p = self.progress.progress(states, self._task_or_zero(data, idx),
                                       frames_at(data.arrays, idx))
        start, after = p.chunk(2)
        return start, after

    def progress_heldout(self, data: TrainingData) -> dict[str, float]:
        """Progress MSE against ground truth, SPEC §8's quality metric.

        Measured on the held-out successful episodes' frames and on the training pool; empty
        without held-out successes.
        """
        model = self.progress
        assert model is not None and data.stage is not None and data.within is not None
        held = np.flatnonzero(data.validation & data.labels.episode_success)
        if len(held) == 0:
            return {}
        stats = {"progress/heldout_frames": float(len(held))}
        for name, idx in (("heldout", held), ("train", data.pools["progress"])):
            with torch.no_grad():
                p, = _in_chunks(lambda i: (model.progress(
                    torch.from_numpy(data.arrays.state[i]), self._task_or_zero(data, i),
                    frames_at(data.arrays, i)),), idx, model)
            k = torch.as_tensor(model.num_stages)[self._task_or_zero(data, idx)]
            truth = dense_progress(data.stage[idx], data.within[idx], k)
            stats[f"progress/{name}_mse"] = progress_mse(p, truth)
        return stats

    def _recap_terms(self, data: TrainingData, anchors: npt.NDArray[np.int64]) \
            -> tuple[Tensor, Tensor]:
        c_fail = self.config.critic.c_fail if self.config.critic.c_fail is not None \
            else float(self.t_max)
        steps_to_end = torch.from_numpy(data.labels.steps_to_end[anchors])
        reward = CL.recap_reward(steps_to_end, torch.from_numpy(
            data.labels.episode_success[anchors]), c_fail, self.t_max)
        return reward, steps_to_end == 0

    def _value_step(self, data: TrainingData, anchors: npt.NDArray[np.int64],
                    s_t: Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        assert self.value is not None and self.target is not None and self.critic_opt
        assert isinstance(self.target, DistributionalValue)
        reward, is_last = self._recap_terms(data, anchors)
        trained = torch.from_numpy((data.labels.outcome_label[anchors] != NO_LABEL)
                                   & ~data.validation[anchors])
        nxt = data.next1[anchors]
        with torch.no_grad():
            v_next = self.target.value(torch.from_numpy(data.arrays.state[nxt]),
                                       frames_at(data.arrays, nxt), data.task_at(nxt))
        target = CL.value_target(reward, v_next, is_last)
        logits = self.value(s_t, frames_at(data.arrays, anchors), generator,
                            data.task_at(anchors))
        loss = CL.masked_mean(CL.distributional_loss(logits, CL.two_hot(target,
                                                                        self.value.support)),
                              trained)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.value.parameters(), self.config.grad_clip)
        self.critic_opt.step()
        self._ema()
        return {"critic/loss_value": loss.item()}

    def _td_residual(self, data: TrainingData, anchors: npt.NDArray[np.int64]) -> Tensor:
        value = self.value
        assert value is not None
        reward, is_last = self._recap_terms(data, anchors)
        states = data.arrays.state

        def values(i: npt.NDArray[np.int64]) -> tuple[Tensor, ...]:
            nxt = data.next1[i]
            return (value.value(torch.from_numpy(states[i]), frames_at(data.arrays, i),
                                data.task_at(i)),
                    value.value(torch.from_numpy(states[nxt]), frames_at(data.arrays, nxt),
                                data.task_at(nxt)))

        with torch.no_grad():
            v_t, v_next = _in_chunks(values, anchors, value)
        return CL.td_residual(reward, v_t, v_next, is_last)

    def _update_recap_threshold(self, data: TrainingData, rng: np.random.Generator) -> None:
        pool = np.flatnonzero(data.validation)
        if len(pool) == 0:
            pool = data.pools["rollout"]
        if len(pool) == 0:
            return
        sample = rng.choice(pool, size=min(len(pool), 4096), replace=False)
        residual = self._td_residual(data, sample)
        assert isinstance(self.rule, RecapRule)
        self.recap_threshold = float(torch.quantile(residual, self.rule.pass_quantile))

    # ------------------------------------------------------------------------- save / load
    def deployed_policy(self) -> ChunkPolicy:
        """The policy to publish: the weight average with ``actor_ema``, else the actor."""
        if self.actor_ema is None:
            return self.policy
        self.actor_ema.meta = self.policy.meta
        return self.actor_ema

    def _trained_net(self) -> torch.nn.Module | None:
        """The network the learner trains beside the actor (critic, value or progress)."""
        for net in (self.critic, self.value, self.progress):
            if net is not None:
                return net
        return None

    def save(self, directory: Path, **meta: Any) -> None:
        """Write policy, critic, optimisers and counters into ``directory``.

        Everything is written to a staging directory first and swapped in by renames, so a
        crash leaves one complete checkpoint: ``directory``, or ``directory.old`` if the crash
        fell between the renames (``restore_checkpoint`` puts it back).
        """
        final = Path(directory)
        directory = final.with_name(final.name + ".partial")
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.policy.save(directory / POLICY_DIR, **meta)
        net = self._trained_net()
        if net is not None:
            tensors = {f"net.{k}": v.contiguous() for k, v in net.state_dict().items()}
            if self.target is not None:
                tensors |= {f"target.{k}": v.contiguous()
                            for k, v in self.target.state_dict().items()}
            save_file(tensors, str(directory / CRITIC_FILE))
        opt = flatten_optimizer("actor", self.actor_opt)
        if self.critic_opt is not None:
            opt |= flatten_optimizer("critic", self.critic_opt)
        save_file(opt, str(directory / OPTIM_FILE))
        if self.actor_ema is not None:
            save_file({k: v.contiguous() for k, v in self.actor_ema.state_dict().items()},
                      str(directory / EMA_FILE))
        state = {"step": self.step, "round": self.round, "ir_enabled": self.ir_enabled,
                 "scale_v": self.scale_v.state(), "scale_e": self.scale_e.state(),
                 "recap_threshold": self.recap_threshold, "method": self.method}
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2))
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        directory.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def load(self, directory: Path) -> None:
        """Restore everything written by ``save``."""
        directory = Path(directory)
        policy = load_policy(directory / POLICY_DIR)
        self.policy.load_state_dict(policy.state_dict())
        self.policy.meta = policy.meta
        net = self._trained_net()
        if net is not None:
            tensors = load_file(str(directory / CRITIC_FILE))
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
            if self.target is not None:
                self.target.load_state_dict({k[7:]: v for k, v in tensors.items()
                                             if k.startswith("target.")})
        opt = load_file(str(directory / OPTIM_FILE))
        restore_optimizer("actor", self.actor_opt, opt)
        if self.actor_ema is not None:
            ema_path = directory / EMA_FILE
            # a checkpoint from a run without the average (a Step-1 fork): start it there
            self.actor_ema.load_state_dict(load_file(str(ema_path)) if ema_path.exists()
                                           else self.policy.state_dict())
        if self.critic_opt is not None:
            restore_optimizer("critic", self.critic_opt, opt)
        state = json.loads((directory / STATE_FILE).read_text())
        self.step, self.round = int(state["step"]), int(state["round"])
        self.ir_enabled = bool(state["ir_enabled"])
        self.scale_v.load(state["scale_v"])
        self.scale_e.load(state["scale_e"])
        self.recap_threshold = float(state["recap_threshold"])
