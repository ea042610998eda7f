"""The policy actor executes K actions of each predicted chunk, in order, then re-plans."""

import numpy as np
import pytest
import torch

from habc.errors import ConfigError
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy
from habc.rollout.actors import PolicyActor


def tiny_policy() -> FlowMatchingPolicy:
    policy = FlowMatchingPolicy(PolicyConfig(hidden_dim=16, num_blocks=1, chunk_horizon=4,
                                             exec_horizon=4, num_inference_steps=1), 3, 2)
    policy.normalizer.fit(np.zeros((2, 3), np.float32), -np.ones(2), np.ones(2))
    return policy


def run_actor(exec_horizon: int | None, steps: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Act ``steps`` times; return the actions taken and the chunks the policy predicted."""
    policy, chunks = tiny_policy(), []
    sample = policy.sample_chunk

    def recording(obs, generator=None):
        chunk = sample(obs, generator=generator)
        chunks.append(chunk[0].numpy())
        return chunk

    policy.sample_chunk = recording  # type: ignore[method-assign]
    actor = PolicyActor(policy, prompt="p", version=0, generator=torch.Generator().manual_seed(0),
                        exec_horizon=exec_horizon)
    obs = {"state": np.zeros(3, np.float32)}
    return [actor.act(obs, np.zeros(3))[0] for _ in range(steps)], chunks


@pytest.mark.parametrize(("exec_horizon", "k"), [(None, 4), (1, 1), (3, 3)])
def test_actor_executes_the_first_k_actions_of_each_chunk(exec_horizon, k):
    actions, chunks = run_actor(exec_horizon, steps=6)
    assert len(chunks) == -(-6 // k)  # a new chunk every k steps
    expected = np.concatenate([c[:k] for c in chunks])[:6]
    np.testing.assert_array_equal(np.stack(actions), expected)


def test_exec_horizon_longer_than_the_chunk_is_refused():
    with pytest.raises(ConfigError, match=r"must lie in \[1, 4\]"):
        run_actor(5, steps=1)
