"""`habc online` end to end at tiny sizes: rounds, per-round JSON, resume after a kill."""

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
from safetensors.torch import load_file

from habc.cli import main
from habc.credit.labels import boundary_band
from habc.episodes.episode import Controller, EpisodeSource
from habc.episodes.store import EpisodeStore
from habc.errors import ConfigError
from habc.experiments.online import (
    OnlineConfig,
    async_allowed_steps,
    episode_summary,
    newest_policy_version,
    rollout_items,
)
from tests.conftest import make_episode

TINY_ONLINE = ["--rollouts-per-round", "3", "--steps-per-round", "8", "--eval-trials", "2",
               "--workers", "1", "--max-steps", "60", "--log-every", "4", "--ckpt-every", "4",
               "--learner.batch-size", "16", "--learner.critic.hidden-dim", "16",
               "--learner.critic.value-bins", "11", "--habc.warmup-steps", "4",
               "--operator.stall-steps", "10"]


def test_round_scores_the_critic_on_held_out_rollouts(sft_checkpoint, tmp_path):
    """Without takeovers every rollout is outcome-labelled; every 2nd one is held out."""
    run = tmp_path / "habc"
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                 "--method", "habc", "--rounds", "1", *TINY_ONLINE,
                 "--learner.validation-every", "2", "--operator.help-prob", "0"]) == 0
    train = json.loads((run / "rounds/round_001.json").read_text())["train"]
    arrays = EpisodeStore.open(run / "rollouts").read()
    assert not arrays.controller.any()
    lengths = arrays.episode_ends - arrays.episode_starts
    assert train["critic/heldout_frames"] == lengths[1]  # the 2nd of 3 rollouts
    assert train["critic/heldout_episodes"] == 1
    assert train["critic/heldout_successes"] == arrays.success[1]
    assert 0.0 <= train["critic/heldout_brier"] <= 1.0 and "critic/heldout_ece" in train
    assert train["actor/operator_fraction"] == 0.0  # help_prob 0: no operator frame to draw
    assert 0.0 < train["actor/demo_fraction"] < 1.0


def test_boundary_margin_takes_the_frames_near_takeovers_out_of_credit(sft_checkpoint, tmp_path):
    """Takeovers logged up to 2 steps off, and a margin of 2: the round record counts the band."""
    run = tmp_path / "habc"
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                 "--method", "habc", "--rounds", "1", *TINY_ONLINE, "--operator.help-prob", "1",
                 "--operator.boundary-jitter", "2", "--learner.boundary-margin", "2"]) == 0
    train = json.loads((run / "rounds/round_001.json").read_text())["train"]
    arrays = EpisodeStore.open(run / "rollouts").read()
    band = boundary_band(arrays.controller, arrays.episode_starts, arrays.episode_ends, 2)
    assert band.any()  # the operator took over, and handed back or finished
    assert train["credit/boundary_frames"] == band.sum()
    assert train["credit/human_frames"] == np.sum(arrays.controller[~band] == Controller.HUMAN)
    demos = EpisodeStore.open(json.loads((sft_checkpoint / "config.json").read_text())
                              ["meta"]["datasets"][0]).read()
    assert sum(v for k, v in train.items() if k.startswith("credit/")) \
        == arrays.num_frames + demos.num_frames


def test_critic_trains_only_its_steps_of_each_round(sft_checkpoint, tmp_path):
    """8 learner steps per round, 3 of them for the critic: 6 critic updates in 2 rounds."""
    run = tmp_path / "habc"
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                 "--method", "habc", "--rounds", "2", *TINY_ONLINE,
                 "--learner.critic-steps-per-round", "3"]) == 0
    optim = load_file(str(run / "learner/latest/optimizers.safetensors"))
    assert optim["actor.0.step"].item() == 16
    assert optim["critic.0.step"].item() == 6


@pytest.mark.parametrize("method", [pytest.param("dagger", marks=pytest.mark.slow),
                                    pytest.param("recap", marks=pytest.mark.slow), "habc", "hiors",
                                    "rabc"])
def test_online_round_writes_per_round_json(sft_checkpoint, tmp_path, method):
    run = tmp_path / method
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                 "--method", method, "--rounds", "1", *TINY_ONLINE]) == 0
    r0 = json.loads((run / "rounds/round_000.json").read_text())
    r1 = json.loads((run / "rounds/round_001.json").read_text())
    assert r0["eval"]["n_trials"] == 2
    trials = json.loads((run / "eval/v001.json").read_text())["trials"]
    assert [t["seed"] for t in trials] == [1_000_000, 1_000_001]
    for key in ("success_rate", "ci95_low", "ci95_high", "mean_success_length"):
        assert key in r1["eval"]
    failed = round(2 * (1 - r1["eval"]["success_rate"]))  # reach: one stage holds every failure
    assert r1["eval"]["failures_by_stage"] == {"furthest": [failed], "last": [failed]}
    assert r1["eval"]["n_unstable"] == 0 and r1["rollouts"]["unstable"] == 0
    assert r1["rollouts"]["n"] == 3 and r1["learner_step"] == 8
    assert r1["rollouts"]["operator_steps"] >= 0 and "zero_weight_fraction" in r1["train"]
    assert r1["rollouts"]["takeovers"] >= r1["rollouts"]["with_intervention"]
    arrays = EpisodeStore.open(run / "rollouts").read()
    assert sorted(arrays.seed.tolist()) == [10_000, 10_001, 10_002]
    assert set(arrays.policy_version[arrays.controller == 0].tolist()) <= {0}
    assert (run / "policies/v001/model.safetensors").exists()
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["success_by_round"]) == 2


def test_episode_summary_hand_computed(tmp_path, rng):
    """Three rollouts: an autonomous success, a failure with one takeover of 3 steps, and a
    failure that ended when the physics went unstable."""
    store = EpisodeStore.create(tmp_path / "r", state_dim=39, action_dim=4, fps=80,
                                robot_type="sawyer")
    rollout = EpisodeSource.ROLLOUT
    store.append([make_episode(rng, 5, source=rollout, seed=1),
                  make_episode(rng, 6, source=rollout, success=False, seed=2, human_span=(2, 5)),
                  replace(make_episode(rng, 4, source=rollout, success=False, seed=3),
                          unstable=True)])
    assert episode_summary(store.read()) == {
        "n": 3, "success_rate": 1 / 3, "autonomous_successes": 1, "with_intervention": 1,
        "takeovers": 1, "intervention_successes": 0, "unhelped_failures": 1, "unstable": 1,
        "operator_steps": 3, "env_steps": 15, "episodes_by_policy_version": {"3": 3}}


def test_rabc_round_trains_the_progress_model_and_scores_it_on_held_out_successes(
        sft_checkpoint, tmp_path):
    """reach's expert has one phase, so ground-truth progress is the time fraction to success."""
    run = tmp_path / "rabc"
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                 "--method", "rabc", "--rounds", "1", *TINY_ONLINE,
                 "--learner.validation-every", "2", "--learner.progress.hidden-dim", "16",
                 "--learner.progress.pretrain-steps", "5"]) == 0
    train = json.loads((run / "rounds/round_001.json").read_text())["train"]
    arrays = EpisodeStore.open(run / "rollouts").read()
    held_out_success = arrays.success[1]  # the 2nd of 3 rollouts is held out
    assert train["progress/loss"] > 0.0
    assert 0.0 <= train["progress/chunk_delta_mean"] <= 1.0
    assert ("progress/heldout_mse" in train) == held_out_success
    assert train["progress/loss_pretrain"] > 0.0
    optim = load_file(str(run / "learner/latest/optimizers.safetensors"))
    assert optim["critic.0.step"].item() == 5 + 8  # pre-training, then every learner step


def test_rabc_with_gripper_stages_records_where_its_stages_came_from(sft_checkpoint, tmp_path):
    """reach's expert never closes the gripper: no switch in the demos, so one stage."""
    run = tmp_path / "rabc"
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                 "--method", "rabc", "--rounds", "1", *TINY_ONLINE, "--stages", "gripper",
                 "--learner.progress.pretrain-steps", "2"]) == 0
    record = json.loads((run / "rounds/round_001.json").read_text())
    assert record["stages"]["num_stages"] == [1]
    assert record["stages"]["source"].startswith("the gripper's switches: reach K=1")
    assert "progress/loss" in record["train"]


def test_hiors_with_the_progress_reward_runs_from_the_cli(sft_checkpoint, tmp_path):
    run = tmp_path / "hiors"
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                 "--method", "hiors", "--hiors.reward", "progress", "--rounds", "1",
                 *TINY_ONLINE, "--learner.progress.pretrain-steps", "2"]) == 0
    train = json.loads((run / "rounds/round_001.json").read_text())["train"]
    assert train["progress/loss"] > 0.0 and "progress/no_progress_fraction" in train


def test_async_learner_is_held_to_the_sync_budgets_steps_per_episode(tmp_path):
    config = OnlineConfig(sft_checkpoint=tmp_path, run_dir=tmp_path, rollouts_per_round=20,
                          steps_per_round=1000)
    # 50 steps per episode: 7 episodes allow 350 steps; round 1's 1000 need all 20 episodes.
    assert [async_allowed_steps(n, config) for n in (0, 7, 20, 21)] == [0, 350, 1000, 1050]
    with pytest.raises(ConfigError, match="async"):
        OnlineConfig(sft_checkpoint=tmp_path, run_dir=tmp_path, method="sft", mode="async")


def test_rollout_workers_follow_the_newest_complete_policy(tmp_path):
    assert newest_policy_version(tmp_path / "policies") == -1
    for name in ("v000", "v001", ".v002.tmp"):  # a save in progress is a hidden .tmp directory
        (tmp_path / "policies" / name).mkdir(parents=True)
    (tmp_path / "policies" / "v003").write_text("not a directory")
    assert newest_policy_version(tmp_path / "policies") == 1


def test_async_rounds_collect_each_seed_once_with_policies_as_fresh_as_sync(sft_checkpoint,
                                                                          tmp_path):
    args = ["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(tmp_path),
            "--method", "habc", "--mode", "async", *TINY_ONLINE, "--async-refresh-every", "3"]
    assert main([*args, "--rounds", "2"]) == 0
    assert main([*args, "--rounds", "3"]) == 0  # continues: round 3's seeds, round 3's steps
    arrays = EpisodeStore.open(tmp_path / "rollouts").read()
    assert sorted(arrays.seed.tolist()) == list(range(10_000, 10_009))
    version = np.maximum.reduceat(arrays.policy_version, arrays.episode_starts)
    round_of = (arrays.seed - 10_000) // 3 + 1
    # async_max_lag 0: round r's episodes all come from v(r - 1), as in sync rounds
    np.testing.assert_array_equal(version, round_of - 1)
    r2 = json.loads((tmp_path / "rounds/round_002.json").read_text())
    r3 = json.loads((tmp_path / "rounds/round_003.json").read_text())
    assert r2["learner_step"] == 16 and r3["learner_step"] == 24
    assert r2["rollouts"]["episodes_by_policy_version"] == {"1": 3}
    assert r2["wall_s"]["collect_and_train_s"] > 0 and "actor/loss" in r2["train"]
    assert (tmp_path / "policies/v003/model.safetensors").exists()


def test_async_lag_lets_rollouts_run_ahead_of_the_learner(sft_checkpoint, tmp_path):
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(tmp_path),
                 "--method", "habc", "--mode", "async", *TINY_ONLINE, "--rounds", "2",
                 "--async-max-lag", "1"]) == 0
    arrays = EpisodeStore.open(tmp_path / "rollouts").read()
    version = np.maximum.reduceat(arrays.policy_version, arrays.episode_starts)
    round1 = arrays.seed < 10_003
    assert set(version[round1].tolist()) == {0}  # v1 needs all of round 1's episodes
    assert set(version[~round1].tolist()) <= {0, 1}  # round 2 may start before v1 is out


def test_published_policy_is_the_actors_weight_average(sft_checkpoint, tmp_path):
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(tmp_path),
                 "--method", "habc", "--rounds", "1", *TINY_ONLINE,
                 "--learner.actor-ema", "0.9"]) == 0
    published = load_file(str(tmp_path / "policies/v001/model.safetensors"))
    trained = load_file(str(tmp_path / "learner/latest/policy/model.safetensors"))
    average = load_file(str(tmp_path / "learner/latest/actor_ema.safetensors"))
    assert published.keys() == trained.keys() == average.keys()
    assert all(np.array_equal(published[k].numpy(), average[k].numpy()) for k in published)
    assert any(not np.array_equal(published[k].numpy(), trained[k].numpy()) for k in published)


def test_more_rounds_continue_without_duplicating(sft_checkpoint, tmp_path):
    args = ["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(tmp_path),
            "--method", "habc", *TINY_ONLINE]
    assert main([*args, "--rounds", "1"]) == 0
    first = (tmp_path / "rounds/round_001.json").read_text()
    assert main([*args, "--rounds", "2"]) == 0
    assert (tmp_path / "rounds/round_001.json").read_text() == first
    arrays = EpisodeStore.open(tmp_path / "rollouts").read()
    assert sorted(arrays.seed.tolist()) == list(range(10_000, 10_006))
    frame_seed = arrays.seed[arrays.frame_episode]
    assert set(arrays.policy_version[frame_seed >= 10_003].tolist()) <= {-1, 1}
    assert set(arrays.policy_version[frame_seed < 10_003].tolist()) <= {-1, 0}
    r2 = json.loads((tmp_path / "rounds/round_002.json").read_text())
    assert r2["learner_step"] == 16
    # A stop after round 2's training but before its record: the rewritten record keeps the
    # round's training statistics (the learner does not train the round again).
    (tmp_path / "rounds/round_002.json").unlink()
    assert main([*args, "--rounds", "2"]) == 0
    again = json.loads((tmp_path / "rounds/round_002.json").read_text())
    assert again["train"] == r2["train"] and "actor/loss" in again["train"]
    assert again["learner_step"] == 16


def test_killed_run_resumes_to_the_same_end_state(sft_checkpoint, tmp_path):
    args = [sys.executable, "-m", "habc.cli", "online", "--sft-checkpoint", str(sft_checkpoint),
            "--run-dir", str(tmp_path), "--method", "habc", "--rounds", "2", *TINY_ONLINE]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "rollouts/meta/episodes").exists():
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    arrays = EpisodeStore.open(tmp_path / "rollouts").read()
    assert sorted(arrays.seed.tolist()) == list(range(10_000, 10_006))  # none lost or doubled
    r2 = json.loads((tmp_path / "rounds/round_002.json").read_text())
    assert r2["learner_step"] == 16


def test_validation_block_of_evaluation_seeds(sft_checkpoint, tmp_path):
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(tmp_path),
                 "--method", "sft", "--rounds", "1", "--eval-seed-offset", "100000",
                 *TINY_ONLINE]) == 0
    for version in ("v000", "v001"):
        trials = json.loads((tmp_path / f"eval/{version}.json").read_text())["trials"]
        assert [t["seed"] for t in trials] == [1_100_000, 1_100_001]
    with pytest.raises(ConfigError, match="eval_seed_offset"):
        OnlineConfig(sft_checkpoint=sft_checkpoint, run_dir=tmp_path, eval_seed_offset=-1)


def test_online_bad_input(tmp_path):
    r = subprocess.run([sys.executable, "-m", "habc.cli", "online", "--sft-checkpoint",
                        str(tmp_path / "nope"), "--run-dir", str(tmp_path / "r")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a habc checkpoint" in r.stderr
    r = subprocess.run([sys.executable, "-m", "habc.cli", "online", "--sft-checkpoint", "x",
                        "--run-dir", "r", "--method", "ppo"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_table_of_runs(sft_checkpoint, tmp_path, capsys):
    run = tmp_path / "habc"
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                 "--rounds", "1", *TINY_ONLINE]) == 0
    capsys.readouterr()
    assert main(["table", "--runs", str(run), "--out", str(tmp_path / "t.md")]) == 0
    table = capsys.readouterr().out
    rows = table.strip().splitlines()
    assert rows[0].startswith("| method | round 0 | round 1 |") and len(rows) == 3
    assert rows[2].startswith("| habc (habc) |") and "%" in rows[2]
    assert (tmp_path / "t.md").read_text() == table
    assert main(["table", "--runs", str(tmp_path / "missing")]) == 2


def test_same_config_gives_the_same_run_whatever_ran_before(sft_checkpoint, tmp_path):
    import torch

    args = ["online", "--sft-checkpoint", str(sft_checkpoint), "--rounds", "1", *TINY_ONLINE]
    assert main([*args, "--run-dir", str(tmp_path / "a")]) == 0
    torch.rand(1000)  # consume the global generator, as an earlier job in this process would
    assert main([*args, "--run-dir", str(tmp_path / "b")]) == 0
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "a/learner/latest/critic.safetensors"))
    b = load_file(str(tmp_path / "b/learner/latest/critic.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra = json.loads((tmp_path / "a/rounds/round_001.json").read_text())
    rb = json.loads((tmp_path / "b/rounds/round_001.json").read_text())
    assert ra["eval"]["success_rate"] == rb["eval"]["success_rate"]
    assert ra["rollouts"] == rb["rollouts"]


@pytest.mark.parametrize("method", ["habc", pytest.param("recap", marks=pytest.mark.slow)])
def test_multi_task_rounds_share_rollouts_and_evaluations_between_tasks(
        multi_task_checkpoint, tmp_path, method):
    run = tmp_path / method
    summary_args = ["online", "--sft-checkpoint", str(multi_task_checkpoint), "--run-dir",
                    str(run), "--method", method, "--rounds", "1", *TINY_ONLINE,
                    "--rollouts-per-round", "5"]
    assert main(summary_args) == 0
    record = json.loads((run / "rounds/round_001.json").read_text())
    assert record["task"] == "drawer-close+reach"
    assert record["tasks"] == ["drawer-close", "reach"]
    # round seeds alternate between the tasks: 3 for the first, 2 for the second
    arrays = EpisodeStore.open(run / "rollouts").read()
    assert {t: sorted(arrays.seed[arrays.task == t].tolist()) for t in set(arrays.task)} == \
        {"drawer-close": [10_000, 10_002, 10_004], "reach": [10_001, 10_003]}
    assert {t: r["n"] for t, r in record["rollouts_by_task"].items()} == \
        {"drawer-close": 3, "reach": 2}
    # each task is evaluated on the same 2 seeds; the record pools the 4 trials
    by_task = record["eval_by_task"]
    assert sorted(by_task) == ["drawer-close", "reach"]
    assert record["eval"]["n_trials"] == 4
    assert record["eval"]["success_rate"] == \
        sum(r["success_rate"] * r["n_trials"] for r in by_task.values()) / 4
    for task in by_task:
        result = json.loads((run / f"eval/v001-{task}.json").read_text())
        assert result["task"] == task and [t["seed"] for t in result["trials"]] == \
            [1_000_000, 1_000_001]
    # `habc table`: the pooled row, then one per task
    assert main(["table", "--runs", str(run), "--out", str(tmp_path / "table.md")]) == 0
    rows = (tmp_path / "table.md").read_text().splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == [
        f"| {method} ({method})", f"| {method} ({method}): drawer-close",
        f"| {method} ({method}): reach"]
    assert rows[2].split(" | ")[-2] == "2"  # reach's rollouts
    # the critic is conditioned on the task, and the policy stays multi-task
    critic = load_file(str(run / "learner/latest/critic.safetensors"))
    assert critic["net.encoder.task_embedding.weight"].shape[0] == 2
    policy = json.loads((run / "policies/v001/config.json").read_text())
    assert policy["backend_config"]["prompts"] == ["drawer close", "reach"]
    assert policy["meta"]["tasks"] == ["drawer-close", "reach"] and "task" not in policy["meta"]


def test_rollout_items_alternate_a_rounds_seeds_between_the_tasks():
    assert rollout_items([10, 11, 12], ["a", "b"]) == [(10, "a"), (11, "b"), (12, "a")]
    assert rollout_items([7, 8], ["a"]) == [(7, "a"), (8, "a")]
    assert rollout_items([], ["a", "b"]) == []


def test_multi_task_async_rounds_alternate_tasks_like_sync_rounds(multi_task_checkpoint,
                                                                  tmp_path):
    """Async mode from a multi-task checkpoint: the workers serve both tasks, round r's
    seeds go to the tasks in turn as in sync rounds, and with async_max_lag 0 round r's
    episodes come from v(r - 1)."""
    run = tmp_path / "hiors"
    assert main(["online", "--sft-checkpoint", str(multi_task_checkpoint), "--run-dir", str(run),
                 "--method", "hiors", "--mode", "async", *TINY_ONLINE, "--rounds", "2"]) == 0
    arrays = EpisodeStore.open(run / "rollouts").read()
    assert {t: sorted(arrays.seed[arrays.task == t].tolist()) for t in set(arrays.task)} == \
        {"drawer-close": [10_000, 10_002, 10_003, 10_005], "reach": [10_001, 10_004]}
    version = np.maximum.reduceat(arrays.policy_version, arrays.episode_starts)
    np.testing.assert_array_equal(version, (arrays.seed - 10_000) // 3)
    record = json.loads((run / "rounds/round_002.json").read_text())
    assert record["wall_s"]["collect_and_train_s"] > 0
    assert {t: r["n"] for t, r in record["rollouts_by_task"].items()} == \
        {"drawer-close": 2, "reach": 1}
    assert sorted(record["eval_by_task"]) == ["drawer-close", "reach"]


def test_task_balance_runs_on_multi_task_policies_only(multi_task_checkpoint, sft_checkpoint,
                                                       tmp_path, capsys):
    run = tmp_path / "balanced"
    assert main(["online", "--sft-checkpoint", str(multi_task_checkpoint), "--run-dir", str(run),
                 "--method", "dagger", "--rounds", "1", *TINY_ONLINE,
                 "--learner.task-balance"]) == 0
    assert json.loads((run / "config.json").read_text())["learner"]["task_balance"] is True
    assert (run / "policies/v001/model.safetensors").exists()
    capsys.readouterr()
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir",
                 str(tmp_path / "single"), "--method", "dagger", "--rounds", "1", *TINY_ONLINE,
                 "--learner.task-balance"]) == 2
    assert "--learner.task-balance needs a multi-task policy" in capsys.readouterr().err


def test_multi_task_rabc_has_a_progress_tower_per_task(multi_task_checkpoint, tmp_path):
    """SPEC §8's mixture of experts: one gate and tower per task, each with its task's stages."""
    run = tmp_path / "rabc"
    assert main(["online", "--sft-checkpoint", str(multi_task_checkpoint), "--run-dir",
                 str(run), "--method", "rabc", "--rounds", "1", *TINY_ONLINE,
                 "--learner.progress.pretrain-steps", "2"]) == 0
    model = load_file(str(run / "learner/latest/critic.safetensors"))
    # drawer-close's expert has 4 phases, reach's 1: reach's stage logits past its first are
    # masked
    assert sorted(k for k in model if k.startswith("net.gates.")) == \
        ["net.gates.0.bias", "net.gates.0.weight", "net.gates.1.bias", "net.gates.1.weight"]
    assert model["net.stage_mask"].tolist() == [[False] * 4, [False, True, True, True]]
    train = json.loads((run / "rounds/round_001.json").read_text())["train"]
    assert "progress/loss" in train
