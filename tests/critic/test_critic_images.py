"""The critic, the value head and the progress model see the policy's cameras (SPEC §3: phi(o)
over the images)."""

import dataclasses

import numpy as np
import pytest
import torch

from habc.critic.config import CriticConfig
from habc.critic.networks import CriticEncoder, DualHeadCritic
from habc.episodes.episode import EpisodeSource
from habc.episodes.store import StoreArrays
from habc.errors import CheckpointError
from habc.learner.online import LearnerConfig, OnlineLearner, prepare_data
from habc.networks import Normalizer
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy
from habc.progress.model import ProgressConfig, ProgressModel
from habc.weighting.rules import RULES, HabcRule
from tests.conftest import make_episode

SMALL_CRITIC = CriticConfig(hidden_dim=16, num_blocks=1, value_bins=11)


def frames(batch: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 16, 16, 3), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_state_only_encoder_keeps_its_parameters_and_refuses_nothing():
    encoder = CriticEncoder(5, SMALL_CRITIC)
    assert sorted(encoder.state_dict()) == ["net.0.bias", "net.0.weight", "net.1.net.0.bias",
                                            "net.1.net.0.weight", "net.1.net.1.bias",
                                            "net.1.net.1.weight", "net.1.net.3.bias",
                                            "net.1.net.3.weight", "net.2.bias", "net.2.weight"]
    state = torch.randn(3, 5)
    torch.testing.assert_close(encoder(state, {"top": frames(3, 0)}), encoder.net(state))


def test_camera_critic_reads_the_frames_and_shifts_them_only_with_a_generator():
    torch.manual_seed(0)
    critic = DualHeadCritic(5, SMALL_CRITIC, Normalizer(5, 2, std_floor=0.05, clip=5.0),
                            cameras=("top",), image_shift=2)
    state, a, b = torch.zeros(4, 5), frames(4, 1), frames(4, 2)
    v_a, e_a = critic(state, {"top": a})
    v_b, _ = critic(state, {"top": b})
    assert v_a.shape == e_a.shape == (4,) and not torch.allclose(v_a, v_b)
    torch.testing.assert_close(critic(state, {"top": a})[0], v_a)  # no generator: no shift
    shifted, _ = critic(state, {"top": a}, torch.Generator().manual_seed(3))
    assert not torch.allclose(shifted, v_a)
    with pytest.raises(CheckpointError, match="camera 'top'"):
        critic(state)


@pytest.fixture
def camera_data(rng) -> tuple:
    episodes = [make_episode(rng, 12) for _ in range(2)]
    episodes += [make_episode(rng, 15, source=EpisodeSource.ROLLOUT, success=i < 2,
                              seed=100 + i, human_span=(3, 9) if i == 1 else None)
                 for i in range(4)]
    lengths = np.array([ep.length for ep in episodes])
    ends = np.cumsum(lengths)
    n = int(ends[-1])
    arrays = StoreArrays(
        state=np.concatenate([ep.state for ep in episodes]),
        action=np.concatenate([ep.action for ep in episodes]),
        controller=np.concatenate([ep.controller for ep in episodes]),
        policy_version=np.concatenate([ep.policy_version for ep in episodes]),
        frame_episode=np.repeat(np.arange(len(episodes)), lengths),
        episode_index=np.arange(len(episodes)), episode_starts=ends - lengths,
        episode_ends=ends, success=np.array([ep.success for ep in episodes]),
        source=np.array([str(ep.source) for ep in episodes]),
        seed=np.array([ep.seed for ep in episodes]), task=np.array(["reach"] * len(episodes)),
        images={"top": rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)})
    data = prepare_data(arrays, horizon=5, k=1, naive=False, critic_use_demos=False,
                        validation_every=2)
    torch.manual_seed(0)
    policy = FlowMatchingPolicy(PolicyConfig(chunk_horizon=5, exec_horizon=2, hidden_dim=32,
                                             num_blocks=1, time_embed_dim=8,
                                             num_inference_steps=2, cameras=("top",),
                                             image_size=16, image_shift=2), 39, 4)
    policy.normalizer.fit(arrays.state, -np.ones(4), np.ones(4))
    return data, policy


@pytest.mark.parametrize("method", ["habc", "recap"])
def test_learner_trains_a_critic_that_sees_the_policy_cameras(camera_data, method):
    data, policy = camera_data
    config = LearnerConfig(batch_size=16, critic=SMALL_CRITIC, validation_every=2,
                           recap_threshold_every=1)
    rule = HabcRule(warmup_steps=1) if method == "habc" else RULES[method]
    learner = OnlineLearner(policy, rule, config, t_max=20, method=method)
    net = learner.critic if method == "habc" else learner.value
    assert net is not None
    before = net.encoder.image_encoders["top"].out.weight.detach().clone()
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for _ in range(2):
        stats = learner.update(data, rng, g)
    assert all(np.isfinite(v) for v in stats.values())
    assert not torch.equal(before, net.encoder.image_encoders["top"].out.weight)
    if method == "habc":
        assert "critic/heldout_brier" in learner.critic_heldout(data)

    blind = dataclasses.replace(config, critic=dataclasses.replace(SMALL_CRITIC, images=False))
    learner = OnlineLearner(policy, rule, blind, t_max=20, method=method)
    net = learner.critic if method == "habc" else learner.value
    assert net is not None and len(net.encoder.image_encoders) == 0
    learner.update(data, rng, g)


def test_progress_model_reads_the_frames_of_its_cameras():
    torch.manual_seed(0)
    model = ProgressModel(5, (3,), ProgressConfig(hidden_dim=16, num_experts=2),
                          Normalizer(5, 2, std_floor=0.05, clip=5.0), cameras=("top",))
    state, task = torch.zeros(4, 5), torch.zeros(4, dtype=torch.int64)
    a, b = model.progress(state, task, {"top": frames(4, 1)}), \
        model.progress(state, task, {"top": frames(4, 2)})
    logits_a, _ = model(state, task, {"top": frames(4, 1)})
    logits_b, _ = model(state, task, {"top": frames(4, 2)})
    assert a.shape == (4,) and not torch.allclose(logits_a, logits_b)
    assert ((a >= 0) & (a <= 1)).all() and ((b >= 0) & (b <= 1)).all()
    with pytest.raises(CheckpointError, match=r"cameras \['top'\]"):
        model.progress(state, task)


def test_rabc_trains_a_progress_model_that_sees_the_policy_cameras(camera_data):
    data, policy = camera_data
    arrays = data.arrays
    stage = (np.arange(arrays.num_frames) - arrays.episode_starts[arrays.frame_episode]) // 5
    data = prepare_data(arrays, horizon=5, k=1, naive=False, critic_use_demos=False,
                        validation_every=2, stage=np.minimum(stage, 2).astype(np.int64))
    config = LearnerConfig(batch_size=16, critic=SMALL_CRITIC, validation_every=2,
                           progress=ProgressConfig(hidden_dim=16, num_experts=2,
                                                   pretrain_steps=1))
    learner = OnlineLearner(policy, RULES["rabc"], config, t_max=20, method="rabc",
                            num_stages=(3,))
    assert learner.progress is not None
    before = learner.progress.image_encoders["top"].out.weight.detach().clone()
    rng = np.random.default_rng(0)
    learner.pretrain_progress(data, rng)
    stats = learner.update(data, rng, torch.Generator().manual_seed(0))
    assert all(np.isfinite(v) for v in stats.values())
    assert not torch.equal(before, learner.progress.image_encoders["top"].out.weight)
    assert "progress/heldout_mse" in learner.progress_heldout(data)
