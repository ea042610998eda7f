"""`habc learn`: one learner round on rollouts collected elsewhere, with `habc online`'s learner."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from habc.cli import main
from habc.episodes.episode import Controller, Episode, EpisodeSource
from habc.episodes.store import EpisodeStore
from habc.policy.backend import Observation, load_policy
from tests.conftest import TINY_POLICY, make_episode
from tests.test_online_cli import TINY_ONLINE

LEARNER = ["--learner.batch-size", "16", "--learner.critic.hidden-dim", "16",
           "--learner.critic.value-bins", "11", "--habc.warmup-steps", "4", "--log-every", "4",
           "--ckpt-every", "4", "--num-threads", "1", "--steps", "8", "--max-steps", "60"]


@pytest.fixture(scope="module")
def online_run(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny SFT checkpoint and a 1-round `habc online` run from it (3 rollouts, 8 steps)."""
    root = tmp_path_factory.mktemp("learn")
    assert main(["collect", "--task", "reach", "--out", str(root / "demos"), "--num-episodes",
                 "2", "--max-steps", "150"]) == 0
    assert main(["train", "--datasets", str(root / "demos"), "--run-dir", str(root / "sft"),
                 "--steps", "10", "--batch-size", "8", *TINY_POLICY]) == 0
    sft = root / "sft/checkpoints/last"
    assert main(["online", "--sft-checkpoint", str(sft), "--run-dir", str(root / "online"),
                 "--method", "habc", "--rounds", "1", *TINY_ONLINE]) == 0
    return sft, root / "online"


def weights(path: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in load_file(str(path)).items()}


def learn(sft: Path, rollouts: Path, run: Path, *extra: str) -> int:
    return main(["learn", "--sft-checkpoint", str(sft), "--rollouts", str(rollouts),
                 "--run-dir", str(run), *LEARNER, *extra])


def test_learning_on_an_online_runs_rollouts_publishes_the_same_policy(online_run, tmp_path):
    """The online run's round 1 is collect + train: its rollouts fed to `learn` give v001."""
    sft, online = online_run
    assert learn(sft, online / "rollouts", tmp_path) == 0
    mine = weights(tmp_path / "policies/v001/model.safetensors")
    theirs = weights(online / "policies/v001/model.safetensors")
    assert mine.keys() == theirs.keys()
    assert all(np.array_equal(mine[k], theirs[k]) for k in mine)
    critic = weights(tmp_path / "learner/latest/critic.safetensors")
    assert all(np.array_equal(critic[k], v)
               for k, v in weights(online / "learner/latest/critic.safetensors").items())
    record = json.loads((tmp_path / "learn/round_001.json").read_text())
    held = json.loads((online / "rounds/round_001.json").read_text())
    assert record["train"] == held["train"] and record["learner_step"] == 8
    assert record["rollouts"]["n"] == 3
    assert record["rollouts"]["operator_steps"] == held["rollouts"]["operator_steps"]


def test_each_call_trains_the_next_round_once(online_run, tmp_path):
    sft, online = online_run
    assert learn(sft, online / "rollouts", tmp_path) == 0
    assert learn(sft, online / "rollouts", tmp_path) == 0
    record = json.loads((tmp_path / "learn/round_002.json").read_text())
    assert record["round"] == 2 and record["learner_step"] == 16
    v2 = weights(tmp_path / "policies/v002/model.safetensors")
    # naming a published round trains nothing and publishes nothing new
    assert learn(sft, online / "rollouts", tmp_path, "--round", "2") == 0
    assert json.loads((tmp_path / "learn/round_002.json").read_text()) == record
    assert not (tmp_path / "policies/v003").exists()
    # a stop after the learner saved round 2 but before it published: the next call publishes
    # round 2 from the saved learner without training it again
    (tmp_path / "learn/round_002.json").unlink()
    for path in sorted((tmp_path / "policies/v002").iterdir()):
        path.unlink()
    (tmp_path / "policies/v002").rmdir()
    assert learn(sft, online / "rollouts", tmp_path) == 0
    again = json.loads((tmp_path / "learn/round_002.json").read_text())
    assert again["learner_step"] == 16 and again["train"] == record["train"]
    republished = weights(tmp_path / "policies/v002/model.safetensors")
    assert all(np.array_equal(republished[k], v2[k]) for k in v2)
    assert learn(sft, online / "rollouts", tmp_path, "--round", "4") == 2  # round 3 comes next
    (tmp_path / "learn/round_001.json").unlink()  # a round behind the learner is not redone
    assert learn(sft, online / "rollouts", tmp_path, "--round", "1") == 2


def test_learn_bad_input(online_run, tmp_path, rng, capsys):
    sft, online = online_run
    assert learn(sft, tmp_path / "missing", tmp_path / "a") == 2
    assert learn(sft, online / "rollouts", online) == 2  # an online run's directory
    (tmp_path / "e").mkdir()
    (tmp_path / "e/config.json").write_text(json.dumps({"method": "habc"}))  # not learn's
    assert learn(sft, online / "rollouts", tmp_path / "e") == 2
    assert "another command" in capsys.readouterr().err
    assert learn(sft, online / "rollouts", tmp_path / "b", "--max-steps", "5") == 2
    assert "longer than the step limit 5" in capsys.readouterr().err
    assert learn(sft, online / "rollouts", tmp_path / "c") == 0
    assert learn(sft, online / "rollouts", tmp_path / "c", "--steps", "4") == 2
    assert "pass --steps 8" in capsys.readouterr().err
    narrow = EpisodeStore.create(tmp_path / "narrow", state_dim=5, action_dim=4, fps=80,
                                 robot_type="robot")
    narrow.append([make_episode(rng, 20, source=EpisodeSource.ROLLOUT, state_dim=5)])
    assert learn(sft, tmp_path / "narrow", tmp_path / "d") == 2
    assert "widths" in capsys.readouterr().err


def robot_episode(rng: np.random.Generator, n: int, *, source: EpisodeSource, success: bool,
                  seed: int, human: tuple[int, int] | None = None,
                  staged: bool = False, grasp: tuple[int, int] | None = None) -> Episode:
    """An episode of a task outside the registry: state (3,), actions in [-5, 5] (2,); with
    ``staged``, annotated stages 0 then 1 (half the episode each); with ``grasp``, the last
    action dimension (the gripper) is 4 (closed) on frames [start, end) and 0 elsewhere."""
    action = rng.uniform(-5, 5, (n, 2)).astype(np.float32)
    if grasp is not None:
        action[:, -1] = 0.0
        action[grasp[0]:grasp[1], -1] = 4.0
    controller = np.full(n, int(source is EpisodeSource.DEMO), dtype=np.int8)
    if human is not None:
        controller[human[0]:human[1]] = Controller.HUMAN
    return Episode(state=rng.standard_normal((n, 3)).astype(np.float32),
                   action=action, controller=controller,
                   policy_version=np.where(controller == Controller.HUMAN, -1, 0).astype(np.int32),
                   success=success, source=source, task="slide-block", prompt="slide the block",
                   seed=seed, stage=(np.arange(n) >= n // 2).astype(np.int64) if staged else None)


def test_a_round_on_a_robot_task_outside_the_registry(tmp_path, rng, capsys):
    """SFT on a robot's demos, then a round on its rollouts with takeovers: no simulator."""
    demos = EpisodeStore.create(tmp_path / "demos", state_dim=3, action_dim=2, fps=10,
                                robot_type="arm")
    demos.append([robot_episode(rng, 30, source=EpisodeSource.DEMO, success=True, seed=s)
                  for s in range(4)])
    assert main(["train", "--datasets", str(tmp_path / "demos"), "--run-dir",
                 str(tmp_path / "sft"), "--steps", "10", "--batch-size", "8", *TINY_POLICY]) == 0
    sft = tmp_path / "sft/checkpoints/last"
    policy = load_policy(sft)
    actions = demos.read().action
    assert policy.meta["task"] == "slide-block"
    np.testing.assert_allclose(policy.normalizer.action_low.numpy(), actions.min(0))
    np.testing.assert_allclose(policy.normalizer.action_high.numpy(), actions.max(0))

    robot = EpisodeStore.create(tmp_path / "robot", state_dim=3, action_dim=2, fps=10,
                                robot_type="arm")
    robot.append([robot_episode(rng, 40, source=EpisodeSource.ROLLOUT, success=False, seed=10),
                  robot_episode(rng, 25, source=EpisodeSource.ROLLOUT, success=True, seed=11,
                                human=(5, 15)),
                  robot_episode(rng, 40, source=EpisodeSource.ROLLOUT, success=False, seed=12,
                                human=(20, 40)),
                  robot_episode(rng, 18, source=EpisodeSource.ROLLOUT, success=True, seed=13)])
    run = tmp_path / "run"
    args = ["learn", "--sft-checkpoint", str(sft), "--rollouts", str(tmp_path / "robot"),
            "--run-dir", str(run), *LEARNER[:-2]]
    assert main(args) == 2
    assert "not in the registry: pass --max-steps" in capsys.readouterr().err
    assert main([*args, "--max-steps", "40", "--method", "rabc"]) == 2
    assert "stage labels" in capsys.readouterr().err
    assert main([*args, "--max-steps", "40"]) == 0
    record = json.loads((run / "learn/round_001.json").read_text())
    assert record["rollouts"]["n"] == 4 and record["rollouts"]["operator_steps"] == 30
    assert record["rollouts"]["episodes_by_policy_version"] == {"0": 4}
    assert record["learner_step"] == 8 and "critic/loss_v" in record["train"]
    chunk = load_policy(run / "policies/v001").sample_chunk(
        Observation(state=torch.zeros(1, 3)), torch.Generator().manual_seed(0))
    assert chunk.shape == (1, 4, 2) and torch.isfinite(chunk).all()


def test_rabc_on_a_robot_task_takes_the_stores_stage_labels(tmp_path, rng, capsys):
    """No scripted expert: the progress model's stages come from the stores' stage column."""
    stores = {}
    for name, source in (("demos", EpisodeSource.DEMO), ("robot", EpisodeSource.ROLLOUT)):
        stores[name] = EpisodeStore.create(tmp_path / name, state_dim=3, action_dim=2, fps=10,
                                           robot_type="arm", stage_names=["push", "slide"])
        stores[name].append([robot_episode(rng, 30, source=source, success=s % 3 != 1, seed=s,
                                           staged=True) for s in range(6)
                             if source is EpisodeSource.ROLLOUT or s % 3 != 1])
    assert main(["train", "--datasets", str(tmp_path / "demos"), "--run-dir",
                 str(tmp_path / "sft"), "--steps", "10", "--batch-size", "8", *TINY_POLICY]) == 0
    args = ["learn", "--sft-checkpoint", str(tmp_path / "sft/checkpoints/last"), "--rollouts",
            str(tmp_path / "robot"), "--method", "rabc", *LEARNER[:-2], "--max-steps", "30",
            "--learner.progress.pretrain-steps", "4", "--learner.validation-every", "3"]
    assert main([*args, "--run-dir", str(tmp_path / "run")]) == 0
    train = json.loads((tmp_path / "run/learn/round_001.json").read_text())["train"]
    # held out: every 3rd rollout, seeds 2 and 5, both successes of 30 frames
    assert "progress/loss" in train and train["progress/heldout_frames"] == 60
    plain = EpisodeStore.create(tmp_path / "plain", state_dim=3, action_dim=2, fps=10,
                                robot_type="arm")
    plain.append([robot_episode(rng, 30, source=EpisodeSource.ROLLOUT, success=True, seed=9)])
    args[args.index(str(tmp_path / "robot"))] = str(tmp_path / "plain")
    assert main([*args, "--run-dir", str(tmp_path / "run2")]) == 2
    assert "not every dataset has a stage column" in capsys.readouterr().err


def test_learning_on_a_multi_task_online_runs_rollouts_publishes_the_same_policy(
        multi_task_checkpoint, tmp_path):
    """The equivalence above, with a multi-task policy and a critic conditioned on the task."""
    online = tmp_path / "online"
    assert main(["online", "--sft-checkpoint", str(multi_task_checkpoint), "--run-dir",
                 str(online), "--method", "habc", "--rounds", "1", *TINY_ONLINE,
                 "--max-steps", "150"]) == 0  # the drawer-close demos run up to 78 steps
    assert learn(multi_task_checkpoint, online / "rollouts", tmp_path / "learn",
                 "--max-steps", "150") == 0
    mine = weights(tmp_path / "learn/policies/v001/model.safetensors")
    theirs = weights(online / "policies/v001/model.safetensors")
    assert "task_embedding.weight" in mine
    assert all(np.array_equal(mine[k], theirs[k]) for k in theirs)
    published = load_policy(tmp_path / "learn/policies/v001")
    assert published.meta["tasks"] == ["drawer-close", "reach"]
    record = json.loads((tmp_path / "learn/learn/round_001.json").read_text())
    assert record["task"] == "drawer-close+reach"


def test_rabc_on_a_robot_task_without_annotations_takes_gripper_stages(tmp_path, rng, capsys):
    """``--stages gripper``: no expert, no stage column; stages from the gripper's switches."""
    demos = EpisodeStore.create(tmp_path / "demos", state_dim=3, action_dim=2, fps=10,
                                robot_type="arm")
    # every demo grasps then releases: 2 switches, K = 3
    demos.append([robot_episode(rng, 30, source=EpisodeSource.DEMO, success=True, seed=s,
                                grasp=(10, 20)) for s in range(3)])
    robot = EpisodeStore.create(tmp_path / "robot", state_dim=3, action_dim=2, fps=10,
                                robot_type="arm")
    robot.append([robot_episode(rng, 30, source=EpisodeSource.ROLLOUT, success=s != 1, seed=s,
                                grasp=(5, 25 + s)) for s in range(4)])
    assert main(["train", "--datasets", str(tmp_path / "demos"), "--run-dir",
                 str(tmp_path / "sft"), "--steps", "10", "--batch-size", "8", *TINY_POLICY]) == 0
    args = ["learn", "--sft-checkpoint", str(tmp_path / "sft/checkpoints/last"), "--rollouts",
            str(tmp_path / "robot"), "--method", "rabc", *LEARNER[:-2], "--max-steps", "30",
            "--learner.progress.pretrain-steps", "4"]
    assert main([*args, "--run-dir", str(tmp_path / "r0")]) == 2
    assert "--stages gripper derives them" in capsys.readouterr().err
    assert main([*args, "--run-dir", str(tmp_path / "r1"), "--stages", "annotated"]) == 2
    assert "not every dataset has the same stage column" in capsys.readouterr().err
    assert main([*args, "--run-dir", str(tmp_path / "r2"), "--stages", "gripper",
                 "--gripper.dim", "2"]) == 2
    assert "gripper dim 2 is outside the 2 action dimensions" in capsys.readouterr().err
    assert main([*args, "--run-dir", str(tmp_path / "run"), "--stages", "gripper"]) == 0
    record = json.loads((tmp_path / "run/learn/round_001.json").read_text())
    # the command is 0 or 4: percentiles 0 and 4, midpoint 2
    assert record["stages"] == {"source": "the gripper's switches: slide-block K=3 (closed "
                                "above 2)", "num_stages": [3]}
    assert "progress/loss" in record["train"]
    model = load_file(str(tmp_path / "run/learner/latest/critic.safetensors"))
    assert model["net.stage_mask"].tolist() == [[False] * 3]
    # holding: the opening in state dim 2 (random normal here) read 0 frames into a close
    assert main([*args, "--run-dir", str(tmp_path / "r3"), "--stages", "gripper",
                 "--gripper.opening-dim", "2"]) == 2
    assert "opening_dim and opening_above go together" in capsys.readouterr().err
    assert main([*args, "--run-dir", str(tmp_path / "held"), "--stages", "gripper",
                 "--gripper.opening-dim", "2", "--gripper.opening-above", "-9",
                 "--gripper.settle", "0"]) == 0
    record = json.loads((tmp_path / "held/learn/round_001.json").read_text())
    # every opening is above -9, so holding is the command's state: the same K
    assert record["stages"] == {"source": "the gripper's switches: slide-block K=3 (closed "
                                "above 2); holding: opening (state dim 2) above -9, 0 frames "
                                "after a close", "num_stages": [3]}
    # the approach split relative to the object (state dim 1), from the hand's state dim 0
    assert main([*args, "--run-dir", str(tmp_path / "near"), "--stages", "gripper",
                 "--gripper.approach-radius", "0.5", "--gripper.hand-dims", "0",
                 "--gripper.object-dims", "1"]) == 0
    record = json.loads((tmp_path / "near/learn/round_001.json").read_text())
    assert record["stages"]["num_stages"] == [4]
    assert "; the approach split 0.5 from the demos' grasp point on the object (hand state " \
        "dims 0, object 1; offsets slide-block [" in record["stages"]["source"]


def test_gripper_stages_label_each_task_by_its_own_threshold_and_k(tmp_path, rng):
    """Two tasks: one grasps once (K = 2, closed above 2), one never (K = 1)."""
    from habc.episodes.store import open_stores
    from habc.errors import ConfigError
    from habc.experiments.online import gripper_stages
    from habc.progress.primitives import GripperStageConfig

    store = EpisodeStore.create(tmp_path / "demos", state_dim=3, action_dim=2, fps=10,
                                robot_type="arm")
    grasp = robot_episode(rng, 6, source=EpisodeSource.DEMO, success=True, seed=0, grasp=(2, 6))
    still = robot_episode(rng, 5, source=EpisodeSource.DEMO, success=True, seed=1, grasp=(0, 0))
    still = Episode(**{**vars(still), "task": "hold-block", "prompt": "hold the block"})
    failed = robot_episode(rng, 6, source=EpisodeSource.ROLLOUT, success=False, seed=2,
                           grasp=(1, 3))
    store.append([grasp, still, failed])
    arrays = open_stores([tmp_path / "demos"])
    stages = gripper_stages(arrays, ["slide-block", "hold-block"],
                            GripperStageConfig(min_run=2))
    assert stages.num_stages == (2, 1)
    # grasp: open 2, closed 4 -> 0 0 1 1 1 1; still: K = 1 -> 0; the failed rollout (not a
    # demo: it sets neither K nor the threshold): open 1 (a flicker), closed 2, open 3. Its
    # first held state is closed, so it switches once, at frame 3 -> 0 0 0 1 1 1
    assert stages.label(arrays, 0).tolist() == [0, 0, 1, 1, 1, 1] + [0] * 5 + [0, 0, 0, 1, 1, 1]
    assert stages.label(arrays, 11).tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ConfigError, match="no successful demo of push-block"):
        gripper_stages(arrays, ["slide-block", "push-block"], GripperStageConfig())


def test_gripper_stages_with_the_opening_count_only_closes_that_hold_something(tmp_path, rng):
    """A missed grasp (the fingers close on nothing) stays in the approach stage."""
    from habc.episodes.store import open_stores
    from habc.errors import ConfigError
    from habc.experiments.online import gripper_stages
    from habc.progress.primitives import GripperStageConfig

    def episode(seed: int, success: bool, grasp: tuple[int, int],
                opening: list[float]) -> Episode:
        plain = robot_episode(rng, len(opening), source=EpisodeSource.DEMO if success
                              else EpisodeSource.ROLLOUT, success=success, seed=seed, grasp=grasp)
        state = plain.state.copy()
        state[:, 2] = opening  # the gripper's opening in state dim 2
        return Episode(**{**vars(plain), "state": state})

    store = EpisodeStore.create(tmp_path / "demos", state_dim=3, action_dim=2, fps=10,
                                robot_type="arm")
    # the demo closes at frame 2 and the fingers stop on the block at 0.5
    demo = episode(0, True, (2, 8), [1.0, 1.0, 0.8, 0.5, 0.5, 0.5, 0.5, 0.5])
    # the rollout closes at frame 1 on nothing (0.1), reopens at 4, then grasps at frame 6
    rollout = episode(1, False, (1, 4), [1.0, 0.8, 0.1, 0.1, 0.5, 1.0, 0.8, 0.5, 0.5, 0.5])
    rollout.action[6:, -1] = 4.0
    store.append([demo, rollout])
    arrays = open_stores([tmp_path / "demos"])
    config = GripperStageConfig(min_run=1, opening_dim=2, opening_above=0.3, settle=1)
    stages = gripper_stages(arrays, ["slide-block"], config)
    assert stages.num_stages == (2,)  # the demo holds from frame 3 on: one switch
    # demo: holding from frame 3 (closed since frame 2, settled one frame, 0.5 > 0.3);
    # rollout: the first close reads 0.1 once settled, so only the second grasp counts (from
    # frame 7).
    assert stages.label(arrays, 0).tolist() == [0, 0, 0, 1, 1, 1, 1, 1] + [0] * 7 + [1] * 3
    # the command alone: the missed grasp is the carry stage until the reopening at frame 4
    command_only = gripper_stages(arrays, ["slide-block"], GripperStageConfig(min_run=1))
    assert command_only.label(arrays, 8).tolist() == [0, 1, 1, 1, 0, 0, 1, 1, 1, 1]
    assert stages.source.endswith("holding: opening (state dim 2) above 0.3, 1 frames after "
                                  "a close")
    # the demo's settled grasp reads 0.5 (frames 3-7): an opening_above of 0.5 or more cannot
    # tell it from closing on nothing
    with pytest.raises(ConfigError, match=r"slide-block: the demos' settled grasps read an "
                       r"opening of 0.5 \(median\), and only 0% of them above opening_above 0.5"):
        gripper_stages(arrays, ["slide-block"],
                       GripperStageConfig(min_run=1, opening_dim=2, opening_above=0.5, settle=1))
    with pytest.raises(ConfigError, match="opening_dim 3 is outside the 3 state dimensions"):
        gripper_stages(arrays, ["slide-block"],
                       GripperStageConfig(opening_dim=3, opening_above=0.3))
    # the approach split on the hand's x (state dim 0): one more stage, from the frame the hand
    # last came within reach of where the command first closed (demo: frame 2; rollout: 1)
    state = arrays.state
    state[:, 0] = [0.5, 0.11, 0.10, 0.10, 0.2, 0.2, 0.2, 0.2,
                   0.3, 0.10, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    split = gripper_stages(arrays, ["slide-block"], GripperStageConfig(
        min_run=1, opening_dim=2, opening_above=0.3, settle=1, approach_radius=0.05,
        hand_dims=(0,)))
    assert split.num_stages == (3,)
    # demo: near from frame 1 (0.11 is within 0.05 of 0.10), holding from 3; rollout: near from
    # frame 1, the reopening at 4 does not undo it, holding from 7
    assert split.label(arrays, 0).tolist() == [0, 1, 1, 2, 2, 2, 2, 2] + [0] + [1] * 6 + [2] * 3
    assert split.source.endswith("; the approach split 0.05 from the first grasp (state dims 0)")
    with pytest.raises(ConfigError, match="hand_dims 3 is outside the 3 state dimensions"):
        gripper_stages(arrays, ["slide-block"],
                       GripperStageConfig(approach_radius=0.05, hand_dims=(0, 3)))
    # relative to the object (its x in state dim 1): the demo closes at frame 2 with the hand at
    # 0.10 and the object at 0.12, so the grasp point is the object's x - 0.02. A frame holding
    # nothing is stage 1 while the hand is within 0.05 of it; holding frames are stage 2.
    state[:, 1] = [0.5, 0.12, 0.12, 0.12, 0.3, 0.3, 0.3, 0.3,
                   0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 0.92, 0.92, 0.92, 0.92]
    on_object = gripper_stages(arrays, ["slide-block"], GripperStageConfig(
        min_run=1, opening_dim=2, opening_above=0.3, settle=1, approach_radius=0.05,
        hand_dims=(0,), object_dims=(1,)))
    assert on_object.num_stages == (3,)
    # demo: 0.5 from 0.48 -> 1, 0.11 from 0.10 -> 1, 0.10 on it -> 1, then holding.
    # rollout: hand 0.3, 0.10, 0.9 ... against points 0.08, 0.08, 0.08, 0.48 x3, 0.9 x4:
    # 0.22 away -> 0, 0.02 -> 1, 0.82 -> 0, 0.42 x3 -> 0, 0 x1 -> 1 (frame 6 of the rollout,
    # holding nothing yet), then holding from its frame 7.
    assert on_object.label(arrays, 0).tolist() == [1, 1, 1, 2, 2, 2, 2, 2,  # the demo
                                                   0, 1, 0, 0, 0, 0, 1, 2, 2, 2]
    assert "the approach split 0.05 from the demos' grasp point on the object (hand state " \
        "dims 0, object 1; offsets slide-block [-0.02])" in on_object.source
    # the last stage split at the goal: the object (state dim 1) against a "goal" in state dim
    # 0. The demo ends with the object at 0.3 and the goal at 0.2, so its place is the goal +
    # 0.1. The object is that far from it: demo 0.1, 0.09, 0.08, 0.08, then 0 x4; rollout 0.3,
    # 0.1, 0.9, 0.5 x3, 0.08 x4. Within 0.085, frames in the last stage (2) move to stage 3.
    at_goal = gripper_stages(arrays, ["slide-block"], GripperStageConfig(
        min_run=1, opening_dim=2, opening_above=0.3, settle=1, approach_radius=0.05,
        hand_dims=(0,), object_dims=(1,), goal_radius=0.085, carried_dims=(1,), goal_dims=(0,)))
    assert at_goal.num_stages == (4,)
    # demo frame 2 is near the place but in stage 1, so it stays there
    assert at_goal.label(arrays, 0).tolist() == [1, 1, 1, 3, 3, 3, 3, 3,
                                                 0, 1, 0, 0, 0, 0, 1, 3, 3, 3]
    assert at_goal.source.endswith("; the last stage split 0.085 from the demos' final place at "
                                   "the goal (object state dims 1, goal 0; offsets slide-block "
                                   "[0.1])")
    with pytest.raises(ConfigError, match="goal_dims 5 is outside the 3 state dimensions"):
        gripper_stages(arrays, ["slide-block"], GripperStageConfig(
            goal_radius=0.05, carried_dims=(1,), goal_dims=(5,)))
    with pytest.raises(ConfigError, match="slide-block: no demo closes its gripper"):
        gripper_stages(arrays, ["slide-block"], GripperStageConfig(
            threshold=9.0, approach_radius=0.05, hand_dims=(0,), object_dims=(1,)))
    with pytest.raises(ConfigError, match="object_dims 5 is outside the 3 state dimensions"):
        gripper_stages(arrays, ["slide-block"],
                       GripperStageConfig(approach_radius=0.05, hand_dims=(0,), object_dims=(5,)))
