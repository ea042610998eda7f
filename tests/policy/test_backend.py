"""Actor backends: any ``ChunkPolicy`` round-trips through a checkpoint and runs every stage."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from habc.cli import main
from habc.episodes.store import EpisodeStore
from habc.errors import CheckpointError
from habc.learner.sft import action_bounds
from habc.policy.backend import (
    BUILTIN_BACKEND,
    Observation,
    checkpoint_tasks,
    load_policy,
    task_meta,
)
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy
from tests.policy.toy_backend import FrozenBackbonePolicy
from tests.test_online_cli import TINY_ONLINE

TOY = "tests.policy.toy_backend:FrozenBackbonePolicy"
SMALL = PolicyConfig(chunk_horizon=4, exec_horizon=2, hidden_dim=16, num_blocks=1)


def toy(state_dim: int = 5, action_dim: int = 2) -> FrozenBackbonePolicy:
    torch.manual_seed(0)
    policy = FrozenBackbonePolicy(SMALL, state_dim, action_dim, meta={"task": "t"}, embed_dim=8)
    rng = np.random.default_rng(0)
    policy.normalizer.fit(rng.standard_normal((50, state_dim)).astype(np.float32),
                          -np.ones(action_dim, np.float32), np.ones(action_dim, np.float32))
    return policy


def test_a_backend_round_trips_through_its_checkpoint(tmp_path):
    policy = toy()
    policy.save(tmp_path / "ckpt", step=3)
    config = json.loads((tmp_path / "ckpt/config.json").read_text())
    assert config["backend"] == TOY and config["backend_config"] == {"embed_dim": 8}
    loaded = load_policy(tmp_path / "ckpt")
    assert isinstance(loaded, FrozenBackbonePolicy) and loaded.embed_dim == 8
    assert loaded.meta == {"task": "t", "step": 3} and not loaded.training
    for key, value in policy.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    obs = Observation(state=torch.randn(3, 5))
    policy.eval()
    assert torch.equal(policy.sample_chunk(obs, torch.Generator().manual_seed(1)),
                       loaded.sample_chunk(obs, torch.Generator().manual_seed(1)))


def test_checkpoints_without_a_backend_key_are_the_builtin_policy(tmp_path):
    FlowMatchingPolicy(SMALL, 5, 2).save(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt/config.json").read_text())
    assert config.pop("backend") == BUILTIN_BACKEND
    config.pop("backend_config")
    (tmp_path / "ckpt/config.json").write_text(json.dumps(config))  # as written before
    assert type(load_policy(tmp_path / "ckpt")) is FlowMatchingPolicy


@pytest.mark.parametrize("backend, message", [
    ("no_such_module:Policy", "cannot be imported"),
    ("habc.policy.policy:NoSuchPolicy", "cannot be imported"),
    ("habc.policy.config:PolicyConfig", "not a habc ChunkPolicy"),
])
def test_a_backend_that_cannot_load_is_refused_by_name(tmp_path, backend, message):
    toy().save(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt/config.json").read_text())
    (tmp_path / "ckpt/config.json").write_text(json.dumps(config | {"backend": backend}))
    with pytest.raises(CheckpointError, match=message):
        load_policy(tmp_path / "ckpt")


def test_a_custom_backend_fine_tunes_trains_online_and_evaluates(tmp_path):
    """`habc train --init-checkpoint`, `habc online` and `habc eval` on the toy backend: the
    frozen backbone stays, the action expert moves, and every checkpoint is the toy's class."""
    assert main(["collect", "--task", "reach", "--out", str(tmp_path / "demos"),
                 "--num-episodes", "2", "--max-steps", "150"]) == 0
    arrays = EpisodeStore.open(tmp_path / "demos").read()
    init = toy(arrays.state.shape[1], arrays.action.shape[1])
    init.normalizer.fit(arrays.state, *action_bounds(["reach"], arrays.action))
    init.save(tmp_path / "init")
    assert main(["train", "--datasets", str(tmp_path / "demos"), "--run-dir",
                 str(tmp_path / "sft"), "--init-checkpoint", str(tmp_path / "init"),
                 "--steps", "10", "--batch-size", "8"]) == 0
    sft = tmp_path / "sft/checkpoints/last"
    start = load_file(str(tmp_path / "init/model.safetensors"))
    tuned = load_file(str(sft / "model.safetensors"))
    assert all(torch.equal(start[k], tuned[k]) for k in start if k.startswith("backbone."))
    assert not torch.equal(start["expert.0.weight"], tuned["expert.0.weight"])
    policy = load_policy(sft)
    assert isinstance(policy, FrozenBackbonePolicy) and policy.meta["step"] == 10
    assert policy.meta["init_checkpoint"] == str(tmp_path / "init")
    assert main(["train", "--datasets", str(tmp_path / "demos"), "--run-dir",
                 str(tmp_path / "sft"), "--init-checkpoint", str(tmp_path / "init"),
                 "--steps", "12", "--batch-size", "8"]) == 0  # resumes from step 10
    assert load_policy(sft).meta["step"] == 12
    assert main(["train", "--datasets", str(tmp_path / "demos"), "--run-dir",
                 str(tmp_path / "sft"), "--steps", "14"]) == 2  # not from a new policy
    assert main(["online", "--sft-checkpoint", str(sft), "--run-dir", str(tmp_path / "online"),
                 "--method", "habc", "--rounds", "1", *TINY_ONLINE]) == 0
    v1 = tmp_path / "online/policies/v001"
    assert isinstance(load_policy(v1), FrozenBackbonePolicy)
    online = load_file(str(v1 / "model.safetensors"))
    tuned = load_file(str(sft / "model.safetensors"))
    assert all(torch.equal(tuned[k], online[k]) for k in tuned if k.startswith("backbone."))
    assert not torch.equal(tuned["expert.2.weight"], online["expert.2.weight"])
    out = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(v1), "--num-trials", "2", "--workers", "2",
                 "--max-steps", "20", "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["trials"]) == 2  # in 2 worker processes


def test_fine_tuning_refuses_a_checkpoint_of_other_widths(tmp_path, capsys):
    assert main(["collect", "--task", "reach", "--out", str(tmp_path / "demos"),
                 "--num-episodes", "1", "--max-steps", "150"]) == 0
    toy(state_dim=3).save(tmp_path / "init")
    assert main(["train", "--datasets", str(tmp_path / "demos"), "--run-dir",
                 str(tmp_path / "sft"), "--init-checkpoint", str(tmp_path / "init")]) == 2
    assert "states of width 3" in capsys.readouterr().err
    assert main(["train", "--datasets", str(tmp_path / "demos"), "--run-dir",
                 str(tmp_path / "sft2"), "--init-checkpoint", str(tmp_path / "missing")]) == 2


def test_task_meta_and_checkpoint_tasks_are_inverse():
    assert task_meta(["reach"]) == {"task": "reach"}
    assert task_meta(("reach", "push")) == {"tasks": ["reach", "push"]}
    for tasks in (["reach"], ["push", "reach"]):
        policy = FlowMatchingPolicy(PolicyConfig(hidden_dim=8, num_blocks=1), 3, 2,
                                    meta=task_meta(tasks))
        assert checkpoint_tasks(policy) == tasks
