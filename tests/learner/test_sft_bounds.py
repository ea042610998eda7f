"""The action range SFT maps to [-1, 1]: the registry's, or a robot's demos' own."""

import numpy as np

from habc.learner.sft import action_bounds


def test_registry_task_uses_its_bounds_and_a_robot_task_its_demos_range():
    low, high = action_bounds(["reach"], np.zeros((3, 4), np.float32))
    assert low.tolist() == [-1.0] * 4 and high.tolist() == [1.0] * 4
    # a robot task: per-dimension min/max; a dimension that never moves is widened to 1e-3
    actions = np.array([[0.0, 2.0], [1.0, 2.0], [0.5, 2.0]], np.float32)
    low, high = action_bounds(["my-robot-task"], actions)
    np.testing.assert_allclose(low, [0.0, 1.9995], atol=1e-6)
    np.testing.assert_allclose(high, [1.0, 2.0005], atol=1e-6)


def test_several_registry_tasks_share_their_widest_bounds():
    low, high = action_bounds(["reach", "pick-place"], np.zeros((3, 4), np.float32))
    assert low.tolist() == [-1.0] * 4 and high.tolist() == [1.0] * 4
    # one task outside the registry: the demos' range for all
    low, high = action_bounds(["reach", "my-robot-task"], np.full((2, 4), 0.5, np.float32))
    np.testing.assert_allclose(high - low, 1e-3, atol=1e-6)
