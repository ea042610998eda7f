"""CLI smoke runs at tiny sizes, and one-line errors on bad input."""

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from habc.cli import main
from habc.episodes.store import EpisodeStore
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy

TINY_POLICY = ["--policy.hidden-dim", "32", "--policy.num-blocks", "1",
               "--policy.chunk-horizon", "4", "--policy.exec-horizon", "2",
               "--policy.num-inference-steps", "2"]


def habc(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in this process: a subprocess would cost a 3 s interpreter start per call."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # the parser's own errors and --help
            code = int(e.code or 0)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def habc_process(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point in a process of its own, as a user's shell does."""
    return subprocess.run([sys.executable, "-m", "habc.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_collect_train_eval_end_to_end(tmp_path):
    demos, run = tmp_path / "demos", tmp_path / "run"
    r = habc("collect", "--task", "reach", "--out", str(demos), "--num-episodes", "3",
             "--action-noise", "0.1", "--max-steps", "150")
    assert r.returncode == 0, r.stderr
    arrays = EpisodeStore.open(demos).read()
    assert arrays.num_episodes == 3 and arrays.success.all()
    assert set(arrays.source) == {"demo"} and (arrays.controller == 1).all()

    r = habc("train", "--datasets", str(demos), "--run-dir", str(run), "--steps", "30",
             "--batch-size", "16", "--ckpt-every", "20", "--log-every", "10", *TINY_POLICY)
    assert r.returncode == 0, r.stderr
    assert (run / "checkpoints/last/model.safetensors").exists()
    assert (run / "checkpoints/step_000020/config.json").exists()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    log = (run / "train_log.csv").read_text().splitlines()
    assert log[0] == "step,loss,lr,grad_norm,samples_per_s" and len(log) == 4

    out = tmp_path / "eval.json"
    r = habc("eval", "--checkpoint", str(run / "checkpoints/last"), "--num-trials", "3",
             "--workers", "2", "--max-steps", "20", "--out", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    for key in ("success_rate", "ci95_low", "ci95_high", "n_trials", "mean_success_length",
                "task", "checkpoint"):
        assert key in result
    assert result["n_trials"] == 3 and result["task"] == "reach"
    assert [t["seed"] for t in result["trials"]] == [1_000_000, 1_000_001, 1_000_002]
    assert all(1 <= t["length"] <= 20 for t in result["trials"])
    assert result["ci95_low"] <= result["success_rate"] <= result["ci95_high"]
    assert result["exec_horizon"] == 2  # the checkpoint's own (TINY_POLICY)

    r = habc("eval", "--checkpoint", str(run / "checkpoints/last"), "--num-trials", "1",
             "--workers", "1", "--max-steps", "20", "--exec-horizon", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["exec_horizon"] == 1
    r = habc("eval", "--checkpoint", str(run / "checkpoints/last"), "--exec-horizon", "5")
    assert r.returncode == 2 and "exec_horizon 5 must lie in [1, 4]" in r.stderr

    r = habc("throughput", "--checkpoint", str(run / "checkpoints/last"), "--sim-steps", "300",
             "--episodes", "1")
    assert r.returncode == 0, r.stderr
    rates = json.loads(r.stdout)
    assert rates["sim_steps_per_s"] > 0 and rates["policy_loop_steps_per_s"] > 0
    assert rates["ratio"] == pytest.approx(rates["policy_loop_steps_per_s"] /
                                           rates["sim_steps_per_s"])


def test_eval_of_the_scripted_expert(tmp_path):
    out = tmp_path / "expert.json"
    assert main(["eval", "--expert", "--task", "reach", "--num-trials", "3", "--workers", "1",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["controller"] == "expert" and result["checkpoint"] is None
    assert [t["seed"] for t in result["trials"]] == [1_000_000, 1_000_001, 1_000_002]
    assert result["n_successes"] == 3  # the reach expert solves every layout
    noisy = tmp_path / "noisy.json"
    assert main(["eval", "--expert", "--task", "reach", "--num-trials", "3", "--workers", "1",
                 "--expert-noise", "0.5", "--out", str(noisy)]) == 0
    lengths = [t["length"] for t in json.loads(noisy.read_text())["trials"]]
    assert lengths != [t["length"] for t in result["trials"]]  # the noise acts


def test_eval_counts_failures_by_the_experts_stage(tmp_path):
    out = tmp_path / "expert.json"
    # one step: every trial times out before the expert's hand is above the puck (stage 0)
    r = habc("eval", "--expert", "--task", "pick-place", "--num-trials", "2", "--workers", "1",
             "--max-steps", "1", "--seed-offset", "100000", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "2 failed trials by the scripted expert's stage (0-3)" in r.stdout
    result = json.loads(out.read_text())
    assert [t["seed"] for t in result["trials"]] == [1_100_000, 1_100_001]
    assert result["num_stages"] == 4
    assert result["failures_by_stage"] == {"furthest": [2, 0, 0, 0], "last": [2, 0, 0, 0]}
    # 40 steps: the expert holds the puck on its way to the goal (stage 3) when time runs out
    assert main(["eval", "--expert", "--task", "pick-place", "--num-trials", "2", "--workers",
                 "1", "--max-steps", "40", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["failures_by_stage"] == {"furthest": [0, 0, 0, 2], "last": [0, 0, 0, 2]}
    assert all(t["stage_last"] == t["stage_furthest"] == 3 for t in result["trials"])
    # with time to finish, nothing fails and nothing is counted
    assert main(["eval", "--expert", "--task", "pick-place", "--num-trials", "2", "--workers",
                 "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n_successes"] == 2
    assert result["failures_by_stage"] == {"furthest": [0, 0, 0, 0], "last": [0, 0, 0, 0]}
    assert result["n_unstable"] == 0 and not any(t["unstable"] for t in result["trials"])


def test_train_resumes_from_last_checkpoint(tmp_path):
    demos = tmp_path / "demos"
    assert main(["collect", "--task", "reach", "--out", str(demos), "--num-episodes", "2",
                 "--max-steps", "150"]) == 0
    args = ["train", "--datasets", str(demos), "--run-dir", str(tmp_path / "run"),
            "--batch-size", "8", "--log-every", "5", *TINY_POLICY]
    assert main([*args, "--steps", "10"]) == 0
    assert main([*args, "--steps", "20"]) == 0
    steps = [int(line.split(",")[0])
             for line in (tmp_path / "run/train_log.csv").read_text().splitlines()[1:]]
    assert steps == [5, 10, 15, 20]
    cfg = json.loads((tmp_path / "run/checkpoints/last/config.json").read_text())
    assert cfg["meta"]["step"] == 20


def test_pipeline_tiny(tmp_path):
    r = habc("pipeline", "--task", "reach", "--run-dir", str(tmp_path), "--num-demos", "2",
             "--train-steps", "10", "--batch-size", "8", "--eval-trials", "2", "--workers", "1",
             "--rounds", "1", "--rollouts-per-round", "2", "--steps-per-round", "4",
             "--max-steps", "60",
             *TINY_POLICY)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sft"]["n_trials"] == 2
    assert len(summary["online"]["success_by_round"]) == 2
    assert "success moved from" in r.stdout
    assert (tmp_path / "online/habc/rounds/round_001.json").exists()
    assert (tmp_path / "report/index.html").exists() and "report ->" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["collect", "--task", "peg-insrt-side", "--out", "x"], "did you mean peg-insert-side"),
    (["train", "--datasets", "/nonexistent/ds", "--run-dir", "r"], "no episode store"),
    (["collect", "--task", "reach", "--out", "x", "--num-episodes", "0"], "num_episodes"),
    (["eval", "--checkpoint", "/nonexistent/ckpt"], "not a habc checkpoint"),
    (["eval", "--checkpoint", "c", "--seeds", "3"], "evaluation seeds"),
    (["eval", "--checkpoint", "c", "--seeds", "1000000", "--seed-offset", "5"], "seed_offset"),
    (["eval"], "either --checkpoint or --expert"),
    (["eval", "--checkpoint", "c", "--expert", "--task", "reach"], "either --checkpoint"),
    (["eval", "--expert"], "--expert needs --task"),
    (["eval", "--checkpoint", "c", "--expert-noise", "0.1"], "needs --expert"),
    (["eval", "--expert", "--task", "reach", "--exec-horizon", "2"], "needs --checkpoint"),
])
def test_bad_input_gives_one_line_error(args, message):
    r = habc(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("habc: error:") and message in lines[0], \
        r.stderr


def test_the_installed_command_exits_with_one_line_on_bad_input():
    r = habc_process("collect", "--task", "peg-insrt-side", "--out", "x")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean peg-insert-side" in lines[0], r.stderr


def test_checkpoint_that_does_not_fit_task(tmp_path):
    policy = FlowMatchingPolicy(PolicyConfig(hidden_dim=16, num_blocks=1), 10, 4,
                                meta={"task": "reach"})
    policy.normalizer.fit(np.zeros((2, 10), np.float32), -np.ones(4), np.ones(4))
    policy.save(tmp_path / "ckpt")
    r = habc("eval", "--checkpoint", str(tmp_path / "ckpt"), "--num-trials", "1",
             "--workers", "1")
    assert r.returncode == 2
    assert "expects state 10/action 4" in r.stderr and "Traceback" not in r.stderr


def test_collect_stops_when_the_expert_keeps_failing(tmp_path):
    """A step limit too short for the task ends with an error, not an endless search."""
    r = habc("collect", "--task", "drawer-close", "--out", str(tmp_path / "ds"), "--max-steps",
             "5", "--max-failures-in-a-row", "3")
    assert r.returncode == 2
    assert "failed 3 drawer-close episodes in a row (after 0 demos; step limit 5" in r.stderr
    assert "Traceback" not in r.stderr


def test_invalid_option_type_is_rejected_by_the_parser():
    r = habc_process("collect", "--task", "reach", "--out", "x", "--num-episodes", "many")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_tasks_lists_the_registry(capsys):
    assert main(["tasks"]) == 0
    names = capsys.readouterr().out.split()
    assert len(names) == 50 and "peg-insert-side" in names


def test_every_subcommand_has_help():
    for sub in ("pipeline", "collect", "train", "eval", "throughput", "sft-benchmark", "tasks",
                "online", "table", "experiment", "report"):
        r = habc(sub, "--help")
        assert r.returncode == 0 and "usage" in r.stdout.lower()


def test_resume_drops_log_rows_after_the_checkpoint(tmp_path):
    demos = tmp_path / "demos"
    assert main(["collect", "--task", "reach", "--out", str(demos), "--num-episodes", "2",
                 "--max-steps", "150"]) == 0
    args = ["train", "--datasets", str(demos), "--run-dir", str(tmp_path / "run"),
            "--batch-size", "8", "--log-every", "5", "--ckpt-every", "10", *TINY_POLICY]
    assert main([*args, "--steps", "20"]) == 0
    log = tmp_path / "run/train_log.csv"
    # Pretend the run died at step 17 after its step-10 checkpoint: rows 15 were logged.
    cfg = tmp_path / "run/checkpoints/last/config.json"
    payload = json.loads(cfg.read_text())
    payload["meta"]["step"] = 10
    cfg.write_text(json.dumps(payload))
    assert main([*args, "--steps", "20"]) == 0
    steps = [int(line.split(",")[0]) for line in log.read_text().splitlines()[1:]]
    assert steps == [5, 10, 15, 20]


def test_multi_task_train_and_eval(tmp_path):
    stores = [tmp_path / "reach", tmp_path / "drawer-close"]
    for store in stores:
        r = habc("collect", "--task", store.name, "--out", str(store), "--num-episodes", "2",
                 "--max-steps", "150")
        assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    r = habc("train", "--datasets", *map(str, stores), "--run-dir", str(run), "--steps", "10",
             "--batch-size", "16", "--ckpt-every", "10", "--log-every", "5", *TINY_POLICY)
    assert r.returncode == 0, r.stderr
    config = json.loads((run / "checkpoints/last/config.json").read_text())
    assert config["backend_config"] == {"prompts": ["drawer close", "reach"]}
    assert config["meta"]["tasks"] == ["drawer-close", "reach"] and "task" not in config["meta"]
    ckpt = str(run / "checkpoints/last")
    for task in ("reach", "drawer-close"):
        out = tmp_path / f"eval-{task}.json"
        r = habc("eval", "--checkpoint", ckpt, "--task", task, "--num-trials", "1",
                 "--workers", "1", "--max-steps", "10", "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert json.loads(out.read_text())["task"] == task
    r = habc("eval", "--checkpoint", ckpt, "--num-trials", "1")
    assert r.returncode == 2 and "multi-task policy (drawer-close, reach); pass --task" in r.stderr
    r = habc("eval", "--checkpoint", ckpt, "--task", "push", "--num-trials", "1")
    assert r.returncode == 2 and "knows the tasks ['drawer close', 'reach']" in r.stderr
