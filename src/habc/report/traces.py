"""Per-step critic signals along one episode of an online run (paper Figs. 4 and 5).

Reads the run's final critic (``learner/latest``) and recomputes, with the same pure functions
the learner uses, v(o_t), e(o_t), A_v, A_e, the gate g and the bounded weight w~ for every step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from safetensors.torch import load_file

from habc.credit.labels import UNCREDITED_KINDS, FrameKind, assign_credit
from habc.critic.config import CriticConfig
from habc.critic.networks import DualHeadCritic
from habc.episodes.store import EpisodeStore, StoreArrays
from habc.errors import HabcError
from habc.learner.online import episode_tasks
from habc.policy.backend import load_policy
from habc.weighting import advantages as adv
from habc.weighting.rules import HabcRule


@dataclass(frozen=True)
class EpisodeTrace:
    """Signals (T,) along one episode."""

    seed: int
    success: bool
    controller: npt.NDArray[np.int8]
    kind: npt.NDArray[np.int8]
    viability: npt.NDArray[np.float32]
    a_v: npt.NDArray[np.float32]
    a_e: npt.NDArray[np.float32]
    gate: npt.NDArray[np.float32]
    weight: npt.NDArray[np.float32]


class RunCritic:
    """The final dual-head critic of an online run, with its rule and running scales."""

    @staticmethod
    def kept(run_dir: Path) -> bool:
        """Whether ``run_dir`` keeps its critic and rollouts (exported records keep neither)."""
        return (Path(run_dir) / "learner/latest/critic.safetensors").exists() and \
            (Path(run_dir) / "rollouts").is_dir()

    def __init__(self, run_dir: Path) -> None:
        run_dir = Path(run_dir)
        latest = run_dir / "learner" / "latest"
        if not (latest / "critic.safetensors").exists():
            raise HabcError(f"{run_dir} has no dual-head critic "
                            "(learner/latest/critic.safetensors)")
        config = json.loads((run_dir / "config.json").read_text())
        state = json.loads((latest / "learner.json").read_text())
        policy = load_policy(latest / "policy")
        critic_config = CriticConfig(**config["learner"]["critic"])
        self.cameras = critic_config.cameras(policy.config.cameras)
        self.critic = DualHeadCritic(policy.state_dim, critic_config, policy.normalizer,
                                     self.cameras, num_tasks=len(policy.prompts))
        self.prompts = policy.prompts
        tensors = load_file(str(latest / "critic.safetensors"))
        self.critic.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.critic.eval()
        habc = dict(config["habc"])
        if config["method"] == "habc_v":
            habc["gate"] = "zero"
        self.rule = HabcRule(**habc)
        self.k = int(config["learner"]["advantage_horizon"])
        self.boundary_margin = int(config["learner"].get("boundary_margin", 0))
        self.scale_v = max(state["scale_v"]["var"] ** 0.5, 1e-3)
        self.scale_e = max(state["scale_e"]["var"] ** 0.5, 1e-3)
        self.store = EpisodeStore.open(run_dir / "rollouts")

    def read_rollouts(self) -> StoreArrays:
        """The run's rollouts, with the frames of the cameras the critic sees."""
        return self.store.read(self.cameras)

    def trace(self, arrays: StoreArrays, episode: int) -> EpisodeTrace:
        """Signals along episode position ``episode`` of ``arrays`` (from ``read_rollouts``)."""
        s, e = int(arrays.episode_starts[episode]), int(arrays.episode_ends[episode])
        controller = arrays.controller[s:e]
        success = bool(arrays.success[episode])
        labels = assign_credit(controller, np.array([0]), np.array([e - s]),
                               np.array([arrays.source[episode]]), np.array([success]),
                               boundary_margin=self.boundary_margin)
        task = None
        if self.prompts:
            index = int(episode_tasks(arrays, self.prompts)[episode])
            task = torch.full((e - s,), index, dtype=torch.int64)
        with torch.no_grad():
            v, eff = self.critic(torch.from_numpy(arrays.state[s:e]),
                                 {c: torch.from_numpy(f[s:e]) for c, f in arrays.images.items()},
                                 task=task)
        t = torch.arange(e - s)
        nxt = torch.clamp(t + self.k, max=e - s - 1)
        v_k, e_k = adv.next_values_at_episode_end(
            v[nxt], eff[nxt], next_exists=t + self.k <= e - s - 1,
            episode_success=torch.full((e - s,), success),
            e_last=eff[-1].expand(e - s), v_max=self.critic.config.v_max)
        a_v = adv.viability_advantage(v, v_k)
        a_e = adv.efficiency_advantage(eff, e_k, adv.advantage_steps(e - s - t, self.k))
        gate = self.rule.gate_values(v)
        merged = adv.merged_advantage(a_v, a_e, gate, self.scale_v, self.scale_e)
        w = adv.bounded_weight(merged, beta=self.rule.beta, w_min=self.rule.w_min,
                               w_max=self.rule.w_max)
        kind = labels.kind
        w = torch.where(torch.from_numpy(np.isin(kind, UNCREDITED_KINDS)), 0.0, w)
        if not success and self.rule.failed_rollout_weight == "zero":
            w = torch.where(torch.from_numpy(np.isin(kind, [FrameKind.AUTONOMOUS,
                                                            FrameKind.SUFFIX])), 0.0, w)
        return EpisodeTrace(seed=int(arrays.seed[episode]), success=success,
                            controller=controller, kind=kind,
                            viability=torch.sigmoid(v).numpy(),
                            a_v=a_v.numpy(), a_e=a_e.numpy(), gate=gate.numpy(),
                            weight=w.numpy())


def pick_episodes(arrays: StoreArrays) -> dict[str, int]:
    """Interesting episodes: an intervention with hand-back, an autonomous success, a failure."""
    human = np.add.reduceat((arrays.controller == 1).astype(np.int64), arrays.episode_starts)
    last_human = np.maximum.reduceat(
        np.where(arrays.controller == 1, np.arange(arrays.num_frames), -1), arrays.episode_starts)
    suffix = (human > 0) & (last_human < arrays.episode_ends - 1)
    picks: dict[str, int] = {}
    for name, mask in (("intervention with hand-back", suffix),
                       ("intervention", human > 0),
                       ("autonomous success", (human == 0) & arrays.success),
                       ("autonomous failure", (human == 0) & ~arrays.success)):
        found = np.flatnonzero(mask)
        if len(found) and not (name == "intervention" and "intervention with hand-back" in picks):
            picks[name] = int(found[-1])
    return picks
