"""Camera images in the policy: encoder maths, augmentation, checkpoints and refusals."""

import math

import numpy as np
import pytest
import torch

from habc.errors import CheckpointError, ConfigError
from habc.networks import ImageEncoder, image_to_float, random_shift, spatial_softmax
from habc.policy.backend import Observation, load_policy
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy

CAMERA_POLICY = PolicyConfig(chunk_horizon=4, exec_horizon=2, hidden_dim=32, num_blocks=1,
                             time_embed_dim=8, num_inference_steps=2, cameras=("corner2",),
                             image_size=16, image_shift=2)


def test_spatial_softmax_hand_computed():
    # One channel, 1 x 2 map with logits [0, ln 3]: p = [1/4, 3/4] over x = [-1, 1], so
    # x = -1/4 + 3/4 = 1/2; one row at y = linspace(-1, 1, 1) = [-1].
    features = torch.tensor([[[[0.0, math.log(3.0)]]]])
    torch.testing.assert_close(spatial_softmax(features), torch.tensor([[0.5, -1.0]]))
    # A 3 x 3 map peaked at row 2, column 0 gives (x, y) -> (-1, 1); a flat map gives (0, 0).
    peaked = torch.zeros(1, 2, 3, 3)
    peaked[0, 0, 2, 0] = 100.0
    out = spatial_softmax(peaked)  # [x_1, x_2, y_1, y_2]
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-6, rtol=0)


def test_random_shift_is_a_crop_of_the_edge_padded_image():
    images = torch.arange(2 * 1 * 5 * 4, dtype=torch.float32).reshape(2, 1, 5, 4)
    assert random_shift(images, 0) is images
    out = random_shift(images, 1, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate")
    for i in range(2):
        crops = [padded[i, :, dy:dy + 5, dx:dx + 4] for dy in range(3) for dx in range(3)]
        assert any(torch.equal(out[i], c) for c in crops)
    flat = torch.full((3, 3, 8, 8), 0.25)
    assert torch.equal(random_shift(flat, 2, torch.Generator().manual_seed(1)), flat)


def test_image_to_float_and_encoder_shapes():
    frames = torch.tensor([[[[0, 255, 51]]]], dtype=torch.uint8)  # (1, 1, 1, 3)
    torch.testing.assert_close(image_to_float(frames).flatten(), torch.tensor([-0.5, 0.5, -0.3]))
    encoder = ImageEncoder(24)
    assert encoder(torch.zeros(5, 3, 16, 16)).shape == (5, 24)


def camera_policy() -> FlowMatchingPolicy:
    torch.manual_seed(0)
    policy = FlowMatchingPolicy(CAMERA_POLICY, 5, 2, meta={"task": "reach"})
    policy.normalizer.fit(np.zeros((4, 5), np.float32), np.full(2, -1.0), np.full(2, 1.0))
    return policy


def camera_obs(batch: int, size: int = 16) -> Observation:
    frames = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(2))
    return Observation(state=torch.zeros(batch, 5), images={"corner2": frames})


def test_camera_policy_trains_on_the_frames_and_round_trips(tmp_path):
    policy = camera_policy()
    obs = camera_obs(3)
    actions, valid = torch.zeros(3, 4, 2), torch.ones(3, 4, 2, dtype=torch.bool)
    loss = policy.per_sample_loss(obs, actions, valid, torch.Generator().manual_seed(0))
    assert loss.shape == (3,)
    loss.mean().backward()
    grad = policy.image_encoders["corner2"].out.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    policy.eval()
    policy.save(tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.config == CAMERA_POLICY and loaded.config.cameras == ("corner2",)
    a = policy.sample_chunk(obs, torch.Generator().manual_seed(1))
    b = loaded.sample_chunk(obs, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    # Different frames give different actions: the policy reads the image.
    other = Observation(state=obs.state, images={"corner2": 255 - obs.images["corner2"]})
    assert not torch.allclose(a, loaded.sample_chunk(other, torch.Generator().manual_seed(1)))


def test_camera_policy_refuses_wrong_cameras_and_sizes():
    policy = camera_policy()
    with pytest.raises(CheckpointError, match="sees cameras"):
        policy.sample_chunk(Observation(state=torch.zeros(1, 5)))
    with pytest.raises(CheckpointError, match=r"takes \(16, 16, 3\)"):
        policy.sample_chunk(camera_obs(1, size=8))
    state_only = FlowMatchingPolicy(PolicyConfig(hidden_dim=32, num_blocks=1), 5, 2)
    with pytest.raises(CheckpointError, match="sees cameras"):
        state_only.sample_chunk(camera_obs(1))


def test_camera_config_errors():
    with pytest.raises(ConfigError, match="twice"):
        PolicyConfig(cameras=("a", "a"))
    with pytest.raises(ConfigError, match="image_shift"):
        PolicyConfig(image_size=8, image_shift=4)
