"""scripts/robot_loop.py: the practice loop on a robot, run on its toy arm at tiny sizes."""

import importlib.util
import json
import sys
from pathlib import Path

from habc.episodes.store import EpisodeStore
from tests.conftest import TINY_POLICY

SCRIPT = Path(__file__).parents[1] / "scripts/robot_loop.py"


def test_two_rounds_of_robot_rollouts_with_takeovers_and_habc_learn(tmp_path):
    spec = importlib.util.spec_from_file_location("robot_loop", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["robot_loop"] = module  # dataclasses resolve their module
    spec.loader.exec_module(module)
    args = module.Args(out=tmp_path, demos=3, sft_steps=10, rounds=2, rollouts=4, steps=8,
                       trials=2, train_options=tuple(TINY_POLICY),
                       learn_options=("--learner.batch-size", "16",
                                      "--learner.critic.hidden-dim", "16",
                                      "--habc.warmup-steps", "4"))
    rates = module.run(args)
    assert len(rates) == 3 and all(0.0 <= x <= 1.0 for x in rates)  # v000, v001, v002
    rollouts = EpisodeStore.open(tmp_path / "rollouts").read()
    assert rollouts.num_episodes == 8 and (rollouts.controller == 1).any()
    record = json.loads((tmp_path / "learn/learn/round_002.json").read_text())
    assert record["learner_step"] == 16
    assert record["rollouts"]["episodes_by_policy_version"] == {"0": 4, "1": 4}
    assert record["rollouts"]["operator_steps"] == int((rollouts.controller == 1).sum())
