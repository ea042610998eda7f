import numpy as np
import pytest
import torch

from habc.errors import CheckpointError, ConfigError
from habc.policy.backend import Observation, load_policy
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy

SMALL = PolicyConfig(chunk_horizon=4, exec_horizon=2, hidden_dim=32, num_blocks=1,
                     time_embed_dim=8, num_inference_steps=3)


def fitted_policy(states: np.ndarray) -> FlowMatchingPolicy:
    policy = FlowMatchingPolicy(SMALL, states.shape[1], 2, meta={"task": "reach"})
    policy.normalizer.fit(states, np.full(2, -1.0), np.full(2, 1.0))
    return policy


def test_param_count_of_default_is_in_range():
    n = sum(p.numel() for p in FlowMatchingPolicy(PolicyConfig(), 39, 4).parameters())
    assert 500_000 <= n <= 3_000_000


def test_save_load_round_trip_gives_identical_samples(tmp_path):
    torch.manual_seed(0)
    policy = fitted_policy(np.random.default_rng(0).standard_normal((50, 5)).astype(np.float32))
    policy.save(tmp_path / "ckpt", step=12)
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.meta["step"] == 12 and loaded.config == SMALL
    obs = Observation(state=torch.randn(3, 5))
    a = policy.sample_chunk(obs, torch.Generator().manual_seed(1))
    b = loaded.sample_chunk(obs, torch.Generator().manual_seed(1))
    assert a.shape == (3, 4, 2)
    torch.testing.assert_close(a, b)


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_policy(tmp_path)
    policy = fitted_policy(np.zeros((4, 5), np.float32))
    policy.save(tmp_path / "ckpt")
    (tmp_path / "ckpt/model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_policy(tmp_path / "ckpt")


def test_normalizer_is_robust_to_states_outside_tiny_demo_statistics():
    # A dimension constant in the demos (std 0) must not explode when later data moves it.
    states = np.zeros((10, 3), np.float32)
    states[:, 0] = np.linspace(0, 1, 10)
    policy = fitted_policy(states)
    far = policy.normalizer.state(torch.tensor([[0.5, 2.0, -3.0]]))
    assert far.abs().max() <= SMALL.state_clip
    assert far[0, 0].abs() < 2.0


def test_action_normalisation_round_trip():
    policy = FlowMatchingPolicy(SMALL, 3, 2)
    policy.normalizer.fit(np.zeros((2, 3), np.float32), np.array([0.0, -2.0]), np.array([1.0, 2.0]))
    a = torch.tensor([[0.0, -2.0], [1.0, 2.0], [0.25, 1.0]])
    n = policy.normalizer.action(a)
    torch.testing.assert_close(n, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-0.5, 0.5]]))
    torch.testing.assert_close(policy.normalizer.unaction(n), a)


def test_per_sample_loss_shape_and_fully_padded_sample_is_zero():
    policy = fitted_policy(np.zeros((4, 5), np.float32))
    valid = torch.ones(2, 4, 2, dtype=torch.bool)
    valid[1] = False
    losses = policy.per_sample_loss(Observation(state=torch.zeros(2, 5)), torch.zeros(2, 4, 2),
                                    valid, torch.Generator().manual_seed(0))
    assert losses.shape == (2,)
    assert losses[0] > 0 and losses[1] == 0


def test_config_validation():
    with pytest.raises(ConfigError):
        PolicyConfig(chunk_horizon=4, exec_horizon=5)


def test_sft_overfits_a_single_chunk():
    """Two thousand samples of training drive the loss well below its initial value."""
    torch.manual_seed(0)
    policy = fitted_policy(np.zeros((4, 5), np.float32))
    obs = Observation(state=torch.zeros(16, 5))
    target = torch.tensor([0.5, -0.3]).expand(16, 4, 2)
    valid = torch.ones(16, 4, 2, dtype=torch.bool)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = policy.per_sample_loss(obs, target, valid).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
    sample = policy.sample_chunk(Observation(state=torch.zeros(1, 5)),
                                 torch.Generator().manual_seed(0))
    assert torch.allclose(sample[0], target[0], atol=0.25)


def test_multi_task_policy_conditions_on_each_samples_prompt(tmp_path):
    torch.manual_seed(0)
    policy = FlowMatchingPolicy(SMALL, 5, 2, prompts=["pick place", "reach"])
    policy.normalizer.fit(np.zeros((4, 5), np.float32), np.full(2, -1.0), np.full(2, 1.0))
    torch.nn.init.normal_(policy.task_embedding.weight, std=1.0)
    state = torch.zeros(2, 5)
    # one prompt for the batch, or one per sample; the same state gets different features
    mixed = policy.encode(Observation(state=state, prompt=("pick place", "reach")))
    assert not torch.allclose(mixed[0], mixed[1])
    torch.testing.assert_close(mixed[1], policy.encode(Observation(state=state[:1],
                                                                   prompt="reach"))[0])
    assert policy.prompt_index(("reach", "pick place", "reach"), 3).tolist() == [1, 0, 1]
    with pytest.raises(CheckpointError, match="knows the tasks"):
        policy.encode(Observation(state=state, prompt="push"))
    with pytest.raises(CheckpointError, match="3 prompts for a batch of 2"):
        policy.encode(Observation(state=state, prompt=("reach",) * 3))
    with pytest.raises(CheckpointError, match="twice"):
        FlowMatchingPolicy(SMALL, 5, 2, prompts=["reach", "reach"])
    # the prompts travel with the checkpoint; a single-task policy accepts any prompt
    policy.save(tmp_path / "mt")
    loaded = load_policy(tmp_path / "mt")
    assert isinstance(loaded, FlowMatchingPolicy) and loaded.prompts == ("pick place", "reach")
    torch.testing.assert_close(loaded.encode(Observation(state=state, prompt="reach")),
                               policy.eval().encode(Observation(state=state, prompt="reach")))
    fitted_policy(np.zeros((4, 5), np.float32)).check_prompt("anything at all")
