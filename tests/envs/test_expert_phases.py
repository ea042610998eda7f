"""Stage labels from the scripted expert's phase (SPEC §8), read from its branch chain."""

import numpy as np

from habc.envs.expert_phases import ExpertPhases
from habc.envs.registry import get_task, make_env, make_expert, train_seeds
from habc.episodes.store import StoreArrays
from habc.experiments.online import expert_stages


def test_pick_place_has_the_experts_four_phases_in_task_order():
    task = get_task("pick-place")
    phases = ExpertPhases(task)
    assert phases.num_stages == 4  # above the puck, down onto it, close the gripper, to goal
    env, expert = make_env(task), make_expert(task)
    env.reset(seed=train_seeds(0, 1)[0])
    states = []
    for _ in range(task.max_steps):
        raw = env.raw_state
        states.append(raw)
        _, _, success, truncated, _ = env.step(expert(raw))
        if success or truncated:
            break
    assert success
    seq = phases(np.array(states))
    assert seq[0] == 0 and seq[-1] == 3
    assert set(seq.tolist()) == {0, 1, 2, 3}
    assert np.all(np.diff(seq) >= 0)  # this expert episode never goes back a phase


def test_hand_far_from_the_puck_is_phase_0_and_hand_on_the_grasped_puck_is_phase_3():
    phases = ExpertPhases(get_task("pick-place"))
    state = np.zeros(39)
    state[0:3] = (0.0, 0.6, 0.2)  # hand
    state[3] = 1.0  # gripper fully open
    state[4:7] = (0.1, 0.6, 0.02)  # puck, 10 cm away in x
    assert phases.phase(state) == 0
    state[0:3] = (0.095, 0.6, 0.03)  # hand on the puck (x offset -0.005), gripper closed
    state[3] = 0.5
    assert phases.phase(state) == 3


def test_an_expert_without_a_branch_chain_has_one_phase():
    phases = ExpertPhases(get_task("reach"))
    assert phases.num_stages == 1
    assert phases(np.zeros((3, 39))).tolist() == [0, 0, 0]


def test_stage_labels_of_several_tasks_use_each_episodes_own_expert():
    # the hand-on-the-grasped-puck state of the test above: phase 3 of pick-place; reach has 1
    state = np.zeros(39, np.float32)
    state[0:3], state[3], state[4:7] = (0.095, 0.6, 0.03), 0.5, (0.1, 0.6, 0.02)
    lengths = np.array([2, 3])
    ends = np.cumsum(lengths)
    arrays = StoreArrays(
        state=np.tile(state, (5, 1)), action=np.zeros((5, 4), np.float32),
        controller=np.zeros(5, np.int8), policy_version=np.zeros(5, np.int32),
        frame_episode=np.repeat(np.arange(2), lengths), episode_index=np.arange(2),
        episode_starts=ends - lengths, episode_ends=ends, success=np.ones(2, bool),
        source=np.array(["demo", "demo"]), seed=np.array([0, 1]),
        task=np.array(["reach", "pick-place"]))
    stages = expert_stages([get_task("pick-place"), get_task("reach")])
    assert stages.num_stages == (4, 1)
    assert stages.label(arrays, 0).tolist() == [0, 0, 3, 3, 3]
    assert stages.label(arrays, 3).tolist() == [3, 3]  # only the frames from `start`
