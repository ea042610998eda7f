"""`habc experiment` on the tiny smoke preset: every stage, resume, and bad specs."""

import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from habc.cli import main
from habc.episodes.store import EpisodeStore
from habc.errors import ConfigError, HabcError
from habc.evaluation.stats import difference_interval, wilson_interval
from habc.experiments.experiment import (
    ExperimentConfig,
    ExperimentSpec,
    Job,
    _online_config,
    comparison_table,
    directory_spec,
    experiment_jobs,
    next_job,
    preset_names,
    result_tables,
    results_table,
    run_jobs,
    sft_job,
)
from habc.experiments.online import OnlineConfig
from habc.experiments.rescore import check_block, final_checkpoints, rescored_table
from habc.experiments.tables import load_rounds, run_label, step2_source
from habc.policy.backend import load_policy
from habc.policy.config import PolicyConfig
from habc.rollout.operator import OperatorConfig
from habc.weighting.rules import HabcRule


def test_smoke_experiment_runs_every_stage_and_resumes(tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["experiment", "--preset", "smoke", "--out", str(out), "--jobs", "2", "--no-report"]
    assert main(args) == 0
    # one timed line per finished job, counted, so that a log file shows progress too
    counts = re.findall(r"\d\d:\d\d:\d\d done (\d+)/(\d+) in \d+ s: ", capsys.readouterr().out)
    total = len(experiment_jobs(ExperimentConfig(preset="smoke").spec(), out))
    assert counts == [(str(i), str(total)) for i in range(1, total + 1)]
    cell = out / "reach/seed_0"
    assert (cell / "sft/checkpoints/last/model.safetensors").exists()
    for step, method, rounds in ((1, "dagger", 1), (1, "habc", 1), (2, "habc", 2),
                                 (2, "habc_ir", 2)):
        run = cell / f"step{step}" / method
        last = json.loads((run / f"rounds/round_{rounds:03d}.json").read_text())
        assert last["eval"]["n_trials"] == 2
        assert json.loads((run / "config.json").read_text())["method"] == method
    # Step 2 continues the Step-1 habc run: same round-1 record, and IR on only for habc_ir.
    step1 = (cell / "step1/habc/rounds/round_001.json").read_text()
    assert (cell / "step2/habc_ir/rounds/round_001.json").read_text() == step1
    assert json.loads((cell / "step2/habc_ir/rounds/round_002.json").read_text())["ir_enabled"]
    assert not json.loads((cell / "step2/habc/rounds/round_002.json").read_text())["ir_enabled"]
    table = (out / "results.md").read_text()
    assert "| reach (2 demos) |" in table and "habc_ir" in table
    assert "Provenance: 1 invocation(s) on 1 distinct code and machine" in table
    (entry,) = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
    assert entry["jobs"] == 2 and entry["packages"]["torch"] == torch.__version__
    expert = json.loads((out / "reach/expert.json").read_text())
    assert expert["controller"] == "expert" and expert["n_trials"] == 2
    assert main(["report", str(out), "--no-animations"]) == 0  # the page leads with the tables
    page = (out / "report/index.html").read_text()
    assert page.index("<h2>Results</h2>") < page.index("(Fig. 3)")
    assert "<td>reach (2 demos)</td>" in page and "<h3>Targets</h3>" in page
    assert "<img src='habc_gaps.png'" in page and (out / "report/habc_gaps.png").exists()
    # Step 2's runs start with a copy of Step-1 HABC's round 1, which counts once.
    step1 = [f for f in out.glob("reach/seed_*/step1/*/rounds/round_*.json")
             if f.name != "round_000.json"]
    step2 = list(out.glob("reach/seed_*/step2/*/rounds/round_002.json"))
    assert step2 and f"h over {len(step1) + len(step2)} online rounds" in page

    # The exported records are small and give the same table.
    assert main(["experiment", "--preset", "smoke", "--out", str(out), "--export",
                 str(tmp_path / "records")]) == 0
    records = tmp_path / "records"
    assert (records / "reach/seed_0/step2/habc_ir/rounds/round_002.json").exists()
    assert not list(records.glob("**/*.safetensors")) and not list(records.glob("**/*.parquet"))
    assert (records / "provenance.jsonl").read_text() == (out / "provenance.jsonl").read_text()
    spec = ExperimentConfig(preset="smoke").spec()
    assert results_table(records, spec) == results_table(out, spec)
    # Its report draws what the records hold, and says what needs checkpoints and episodes.
    assert main(["report", str(records)]) == 0
    page = (records / "report/index.html").read_text()
    assert "<h3>Targets</h3>" in page and "<img src='habc_gaps.png'" in page
    assert "Not drawn for reach: the runs keep no critic or rollouts" in page
    assert "Not rendered for reach: the runs keep no policy checkpoints" in page

    before = {p: p.stat().st_mtime for p in out.glob("**/rounds/*.json")}
    assert main([*args, "--seeds", "0"]) == 0  # resume: nothing finished is redone
    assert {p: p.stat().st_mtime for p in out.glob("**/rounds/*.json")} == before
    assert "Provenance: 2 invocation(s) on 1 distinct" in (out / "results.md").read_text()

    # A spec with more Step-2 rounds (as benchmark-3k-long is to benchmark-3k) extends only the
    # Step-2 runs of a finished directory, and its table reports the new last round. Step-2
    # dagger (as in benchmark-100-ema-dagger) continues the Step-1 dagger run.
    longer = json.loads((out / "spec.json").read_text()) | {
        "name": "smoke-long", "step2_rounds": 2, "step2_methods": ["habc", "habc_ir", "dagger"]}
    (tmp_path / "long.json").write_text(json.dumps(longer))
    assert main(["experiment", "--config-file", str(tmp_path / "long.json"), "--out", str(out),
                 "--jobs", "1", "--no-report"]) == 0
    assert {p: p.stat().st_mtime for p in before} == before
    for method in ("habc", "habc_ir", "dagger"):
        last = json.loads((cell / f"step2/{method}/rounds/round_003.json").read_text())
        assert last["ir_enabled"] == (method == "habc_ir") and last["eval"]["n_trials"] == 2
        assert last["method"] == method
    assert (cell / "step2/dagger/rounds/round_001.json").read_text() == (
        cell / "step1/dagger/rounds/round_001.json").read_text()
    assert not (cell / "step1/habc/rounds/round_002.json").exists()
    assert not (cell / "step1/dagger/rounds/round_002.json").exists()
    long_table = (out / "results.md").read_text()
    assert "and 3 rounds (Step 2)" in long_table
    assert "| task | expert | SFT | dagger | habc | habc_cont | habc_ir | dagger_cont |" \
        in long_table

    # Rescoring evaluates every finished run's final policy, the SFT checkpoint and the expert
    # on another seed block, and prints the tables on it; a second call redoes nothing.
    rescore = [*args[:5], "--rescore", "100000", "--rescore-trials", "2"]
    assert main(rescore) == 0
    scores = out / "rescore-100000/reach"
    names = {p.stem for p in (scores / "seed_0").glob("*.json")}
    assert names == {"sft", "step1_dagger", "step1_habc", "step2_habc", "step2_habc_ir"}
    final = json.loads((scores / "seed_0/step2_habc_ir.json").read_text())
    assert final["checkpoint"].endswith("step2/habc_ir/policies/v002")
    assert [t["seed"] for t in final["trials"]] == [1_100_000, 1_100_001]
    assert json.loads((scores / "expert.json").read_text())["controller"] == "expert"
    assert "Rescored on evaluation seeds 1100000-1100001" in capsys.readouterr().out
    stamps = {p: p.stat().st_mtime for p in scores.glob("**/*.json")}
    assert main([*rescore, "--table-only"]) == 0 and main(rescore) == 0
    assert {p: p.stat().st_mtime for p in scores.glob("**/*.json")} == stamps
    assert "| reach | " in (out / "rescore-100000/results.md").read_text()
    assert "Provenance: 2 invocation(s)" in (out / "rescore-100000/results.md").read_text()
    # A spec whose Step 2 ends a round later scores that round's policy instead.
    assert main(["experiment", "--config-file", str(tmp_path / "long.json"), "--out", str(out),
                 "--rescore", "100000", "--rescore-trials", "2", "--jobs", "1"]) == 0
    final = json.loads((scores / "seed_0/step2_habc_ir.json").read_text())
    assert final["checkpoint"].endswith("step2/habc_ir/policies/v003")
    assert (scores / "seed_0/step1_habc.json").stat().st_mtime == stamps[
        scores / "seed_0/step1_habc.json"]
    assert main([*args[:5], "--rescore", "0"]) == 2  # the experiment's own seeds
    # The export carries the rescored block, and prints the same tables from it.
    assert main([*args[:5], "--export", str(tmp_path / "records2")]) == 0
    assert main(["experiment", "--config-file", str(tmp_path / "long.json"), "--out",
                 str(tmp_path / "records2"), "--rescore", "100000", "--rescore-trials", "2",
                 "--table-only"]) == 0
    assert (tmp_path / "records2/rescore-100000/results.md").read_text() == (
        out / "rescore-100000/results.md").read_text().replace(str(out), str(tmp_path / "records2"))
    # The report shows the block; Fig. 3's expert line stays the experiment's own block's.
    rescored_expert = scores / "expert.json"
    rescored_expert.write_text(json.dumps(json.loads(rescored_expert.read_text())
                                          | {"success_rate": 0.123}))
    assert main(["report", str(out), "--no-animations"]) == 0
    page = (out / "report/index.html").read_text()
    note = page.split("Dashed lines:")[1].split("</p>")[0]
    assert note.endswith(f"(reach {expert['success_rate']:.0%}).")
    assert "<h3>Rescored: 2 trials per seed from offset 100000</h3>" in page
    assert page.count("<td>reach (2 demos)</td>") == 3  # results, last rounds, rescored

    # Run a seed at a time, the directory's spec (which the tables and the report read) keeps
    # the seeds of earlier invocations: here a seed 7 run before, not finished.
    spec_file = out / "spec.json"
    spec_file.write_text(json.dumps(json.loads(spec_file.read_text()) | {"seeds": [0, 7]}))
    assert main(["experiment", "--config-file", str(tmp_path / "long.json"), "--out", str(out),
                 "--jobs", "1", "--no-report", "--seeds", "0"]) == 0
    assert json.loads(spec_file.read_text())["seeds"] == [0, 7]
    assert "pooled over seeds [0, 7]" in (out / "results.md").read_text()
    assert {p: p.stat().st_mtime for p in before} == before


def test_the_directory_spec_keeps_the_seeds_and_tasks_of_earlier_invocations():
    saved = {"name": "b", "tasks": [["pick-place", 5], ["disassemble", 5]], "seeds": [0, 2],
             "step1_rounds": 3}
    # --seeds 1: the union, sorted
    assert directory_spec(saved, saved | {"seeds": [1]})["seeds"] == [0, 1, 2]
    # --tasks peg-insert-side: the saved tasks, then the new one
    assert directory_spec(saved, saved | {"tasks": [["peg-insert-side", 5]], "seeds": [0]}) == \
        saved | {"tasks": [["pick-place", 5], ["disassemble", 5], ["peg-insert-side", 5]]}
    # another setting, or a saved task with other demos: the invocation's spec replaces it
    other = saved | {"step1_rounds": 4, "seeds": [1]}
    assert directory_spec(saved, other) == other
    fewer = saved | {"tasks": [["pick-place", 10]], "seeds": [1]}
    assert directory_spec(saved, fewer) == fewer
    assert directory_spec(None, other) == other


def test_presets_and_bad_specs(tmp_path):
    assert {"benchmark", "benchmark-3k", "smoke"} <= set(preset_names())
    for name in preset_names():  # every shipped preset parses into a valid spec
        assert ExperimentConfig(preset=name).spec().name == name
    ab_specs = sorted((Path(__file__).parents[1] / "docs" / "ab").glob("*.json"))
    assert ab_specs
    for path in ab_specs:  # and every A/B spec that docs/ab's scripts run
        assert ExperimentConfig(config_file=path).spec().name == f"ab-{path.stem}"
    mc = ExperimentConfig(preset="benchmark-3k-mc").spec()  # a nested critic key reaches runs
    config = _online_config(mc, tmp_path, "habc", tmp_path / "habc", 3, 0)
    assert config.learner.critic.efficiency_target == "mc"
    sharp = ExperimentSpec.from_json({"name": "x", "tasks": [["reach", 2]], "beta": 0.25})
    assert _online_config(sharp, tmp_path, "habc", tmp_path / "habc", 3, 0).habc.beta == 0.25
    noisy = ExperimentSpec.from_json({"name": "x", "tasks": [["reach", 2]],
                                      "operator": {"action_noise": 0.5}})
    for method in ("dagger", "habc"):  # the operator key reaches every online run
        assert _online_config(noisy, tmp_path, method, tmp_path / method, 3, 0) \
            .operator.action_noise == 0.5
    assert _online_config(sharp, tmp_path, "habc", tmp_path / "habc", 3, 0).operator \
        == OperatorConfig()
    robust = ExperimentSpec.from_json({"name": "x", "tasks": [["reach", 2]],
                                       "advantage_scale": "robust"})
    assert _online_config(robust, tmp_path, "habc", tmp_path / "habc", 3, 0) \
        .learner.advantage_scale == "robust"
    assert _online_config(sharp, tmp_path, "habc", tmp_path / "habc", 3, 0) \
        .learner.advantage_scale == "std"
    chunked = ExperimentSpec.from_json({"name": "x", "tasks": [["reach", 2]],
                                        "advantage_horizon": 8})
    assert _online_config(chunked, tmp_path, "habc", tmp_path / "habc", 3, 0) \
        .learner.advantage_horizon == 8
    assert _online_config(sharp, tmp_path, "habc", tmp_path / "habc", 3, 0) \
        .learner.advantage_horizon == 1
    guarded = ExperimentSpec.from_json({"name": "x", "tasks": [["reach", 2]],
                                        "boundary_margin": 16})
    for method in ("dagger", "habc"):  # every method that reads the controller labels
        assert _online_config(guarded, tmp_path, method, tmp_path / method, 3, 0) \
            .learner.boundary_margin == 16
    assert _online_config(sharp, tmp_path, "habc", tmp_path / "habc", 3, 0) \
        .learner.boundary_margin == 0
    base = ExperimentConfig(preset="benchmark-3k").spec()
    assert {k: v for k, v in mc.__dict__.items() if k not in ("name", "description", "critic")} \
        == {k: v for k, v in base.__dict__.items() if k not in ("name", "description", "critic")}
    assert main(["experiment", "--preset", "nope"]) == 2
    one = ExperimentConfig(preset="benchmark-100", tasks=("pick-place",), seeds=(1,)).spec()
    assert one.tasks == (("pick-place", 5),) and one.seeds == (1,)
    assert one.rollouts_per_round == 100
    ema = ExperimentConfig(preset="benchmark-100-ema").spec()  # benchmark-100 plus the average
    hundred = ExperimentConfig(preset="benchmark-100").spec()
    differ = ("name", "description", "actor_ema")
    assert {k: v for k, v in ema.__dict__.items() if k not in differ} \
        == {k: v for k, v in hundred.__dict__.items() if k not in differ}
    assert (ema.actor_ema, hundred.actor_ema) == (0.999, None)
    for method in ("dagger", "habc"):  # the average reaches every online run
        assert _online_config(ema, tmp_path, method, tmp_path / method, 3, 0) \
            .learner.actor_ema == 0.999
    assert main(["experiment", "--preset", "benchmark-100", "--tasks", "reach"]) == 2
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]],
                                "step1_methods": ["ppo"]}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]], "eval_seed_offset": -1}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]], "beta": 0}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]], "actor_batches": "all"}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]], "advantage_scale": "mad"}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]], "advantage_horizon": 0}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]], "boundary_margin": -1}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]],
                                "operator": {"help_prob": 2.0}}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]],
                                "operator": {"telepathy": True}}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text("{broken")
    assert main(["experiment", "--config-file", str(spec)]) == 2


def _write_rounds(run: Path, rates: list[float], trials: int = 10) -> None:
    (run / "rounds").mkdir(parents=True)
    for r, rate in enumerate(rates):
        record: dict[str, Any] = {"round": r, "eval": {
            "success_rate": rate, "n_trials": trials, "mean_success_length": 100.0 + r}}
        if r:  # round 0 is the SFT checkpoint's evaluation, with no job time of its own
            record["wall_s"] = {"collect_s": 600.0, "train_s": 1100.0, "eval_s": 100.0}
        (run / "rounds" / f"round_{r:03d}.json").write_text(json.dumps(record))


def _targets_row(table: str) -> str:
    return next(line for line in table.splitlines() if line.startswith("| reach |"))


def test_results_table_pools_finished_seeds_only(tmp_path, capsys):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2),), seeds=(0, 1),
                          step1_methods=("habc",), step1_rounds=2, step2_methods=())
    _write_rounds(tmp_path / "reach/seed_0/step1/habc", [0.2, 0.5, 0.6])
    _write_rounds(tmp_path / "reach/seed_1/step1/habc", [0.4, 0.9])  # round 2 not done yet
    table = results_table(tmp_path, spec)
    row = next(line for line in table.splitlines() if line.startswith("| reach (2 demos)"))
    sft_low, sft_high = wilson_interval(6, 20)  # SFT: 2 + 4 of 10 + 10 trials
    low, high = wilson_interval(6, 10)  # habc: only seed 0 finished its 2 rounds
    assert row == (f"| reach (2 demos) | - | 30% [{100 * sft_low:.0f}, {100 * sft_high:.0f}] "
                   f"(100); 20/40 | 60% [{100 * low:.0f}, {100 * high:.0f}] (102); 60, "
                   "1 of 2 seeds |")
    # Targets need every seed: habc has one of two, so only the missing marks show.
    assert _targets_row(table) == "| reach | - | - | - | - | - |"
    # A Step-1-only spec names no Step-2 rounds in its captions.
    assert "Final success after 2 rounds (Step 1); 50 evaluation" in table
    assert "(Step 1: rounds 1-2), pooled" in table and "Step 2" not in table
    # Three online rounds (seed 0's two, seed 1's one) of 1800 s each.
    assert "Job time in the round records: 1.5 h over 3 online rounds" in table
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"name": "t", "tasks": [["reach", 2]], "seeds": [0, 1],
                                     "step1_methods": ["habc"], "step1_rounds": 2,
                                     "step2_methods": []}))
    assert main(["experiment", "--config-file", str(spec_file), "--out", str(tmp_path),
                 "--table-only"]) == 0
    assert "60, 1 of 2 seeds" in capsys.readouterr().out
    assert main(["experiment", "--config-file", str(spec_file), "--out",
                 str(tmp_path / "none"), "--table-only"]) == 2


def test_targets_compare_pooled_rates_hand_computed(tmp_path):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2),), seeds=(0, 1), step1_rounds=1,
                          step2_rounds=1)
    cell = [tmp_path / "reach/seed_0", tmp_path / "reach/seed_1"]
    rates = {("step1", "sft"): ([0.2, 0.3], [0.2, 0.5]),
             ("step1", "dagger"): ([0.2, 0.6], [0.2, 0.7]),
             ("step1", "recap"): ([0.2, 0.5], [0.2, 0.4]),
             ("step1", "habc_v"): ([0.2, 0.7], [0.2, 0.7]),
             ("step1", "habc"): ([0.2, 0.6], [0.2, 0.8]),
             ("step2", "habc"): ([0.2, 0.6, 0.8], [0.2, 0.8, 0.8]),
             ("step2", "habc_ir"): ([0.2, 0.6, 0.9], [0.2, 0.8, 1.0])}
    for (step, method), per_seed in rates.items():
        for c, r in zip(cell, per_seed, strict=True):
            _write_rounds(c / step / method, r)
    # habc_v's lengths: 101 in round 1 like everyone's; make habc's shorter and its own longer.
    for c in cell:
        path = c / "step1/habc_v/rounds/round_001.json"
        record = json.loads(path.read_text())
        record["eval"]["mean_success_length"] = 120.0
        path.write_text(json.dumps(record))
    (tmp_path / "reach/expert.json").write_text(json.dumps(
        {"success_rate": 0.8, "n_trials": 10, "mean_success_length": 50.0}))
    table = results_table(tmp_path, spec)
    assert "| reach (2 demos) | 80% [" in table  # the expert column
    # Step 1: 5 methods x 2 seeds x round 1; Step 2: 2 methods x 2 seeds x round 2 only (their
    # round 1 copies Step-1 HABC's) = 14 rounds of 1800 s.
    assert "Job time in the round records: 7.0 h over 14 online rounds" in table
    # HABC+IR pools 9 + 10 of 20 = 95% >= min(90%, 0.95 * 80% = 76%); HABC pools 14 of 20 = 70%
    # against SFT 20% (round 0), DAgger 65%, Recap 45%; lengths 101 vs habc_v's 120. Per seed,
    # HABC's 60 / 80% against SFT 20 / 20, DAgger 60 / 70 and Recap 50 / 40.
    assert _targets_row(table) == ("| reach | 95% vs 76%: **met** | "
                                   "70% vs 20%: **met**; per seed +40/+60 | "
                                   "70% vs 65%: **met**; per seed +0/+10 | "
                                   "70% vs 45%: **met**; per seed +10/+40 | "
                                   "101 vs 120: **met** |")
    (tmp_path / "reach/expert.json").unlink()
    table = results_table(tmp_path, spec)
    assert "| reach | 95% vs 90%: **met** |" in table  # no expert measured: the 90% bar


def test_all_tasks_targets_pool_the_tasks_hand_computed(tmp_path):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2), ("push", 2)), seeds=(0, 1),
                          step1_methods=("dagger", "habc_v", "habc"), step1_rounds=1,
                          step2_methods=("habc_ir",), step2_rounds=1)
    rates = {"reach": {("step1", "dagger"): ([0.2, 0.5], [0.2, 0.6]),
                       ("step1", "habc_v"): ([0.2, 0.7], [0.2, 0.7]),
                       ("step1", "habc"): ([0.2, 0.9], [0.2, 1.0]),
                       ("step2", "habc_ir"): ([0.2, 0.9, 0.9], [0.2, 1.0, 1.0])},
             "push": {("step1", "dagger"): ([0.1, 0.6], [0.1, 0.7]),
                      ("step1", "habc_v"): ([0.1, 0.5], [0.1, 0.5]),
                      ("step1", "habc"): ([0.1, 0.7], [0.1, 0.8]),
                      ("step2", "habc_ir"): ([0.1, 0.7, 0.8], [0.1, 0.8, 0.8])}}
    for task, runs in rates.items():
        for (step, method), per_seed in runs.items():
            for s, r in enumerate(per_seed):
                _write_rounds(tmp_path / task / f"seed_{s}" / step / method, r)
    # push's habc_v is slower than its habc (101): 90 steps on round 1 of both seeds is faster.
    for s in (0, 1):
        path = tmp_path / f"push/seed_{s}/step1/habc_v/rounds/round_001.json"
        record = json.loads(path.read_text())
        record["eval"]["mean_success_length"] = 90.0
        path.write_text(json.dumps(record))
    # The same pooled counts, per task and over both, behind the report's figure of the gaps.
    assert [(g.task, g.other, g.k, g.n, g.k_other, g.n_other)
            for g in result_tables(tmp_path, spec).gaps] == [
        ("reach", "SFT", 19, 20, 4, 20), ("reach", "DAgger", 19, 20, 11, 20),
        ("push", "SFT", 15, 20, 2, 20), ("push", "DAgger", 15, 20, 13, 20),
        ("all tasks", "SFT", 34, 40, 6, 40), ("all tasks", "DAgger", 34, 40, 24, 40)]
    table = results_table(tmp_path, spec)
    assert "the row 'all tasks' pools the trials" in table
    row = next(line for line in table.splitlines() if line.startswith("| all tasks |"))
    # HABC+IR: reach 19 of 20 >= 90%, push 16 of 20 = 80% < 90% (no expert: the 90% bar).
    # HABC 9 + 10 + 7 + 8 = 34 of 40 against SFT (round 0) 2 + 2 + 1 + 1 = 6 of 40 and DAgger
    # 5 + 6 + 6 + 7 = 24 of 40; no recap run. Lengths: reach 101 <= 101, push 101 > 90.
    sft_low, sft_high = difference_interval(34, 40, 6, 40)
    d_low, d_high = difference_interval(34, 40, 24, 40)
    assert sft_low > 0 and d_low > 0
    assert row == ("| all tasks | met on 1 of 2 tasks | "
                   f"85% vs 15%: +70 [{100 * sft_low:+.0f}, {100 * sft_high:+.0f}], **met** | "
                   f"85% vs 60%: +25 [{100 * d_low:+.0f}, {100 * d_high:+.0f}], **met** | - | "
                   "met on 1 of 2 tasks |")
    # One task's DAgger not finished, and reach's DAgger at 90% on both seeds: it pools reach
    # alone, 19 of 20 against 18 of 20, an interval that reaches below 0, so not a win.
    # HABC+IR's check names the task that has not finished.
    (tmp_path / "push/seed_1/step1/dagger/rounds/round_001.json").unlink()
    (tmp_path / "push/seed_1/step2/habc_ir/rounds/round_002.json").unlink()
    for s in (0, 1):
        path = tmp_path / f"reach/seed_{s}/step1/dagger/rounds/round_001.json"
        record = json.loads(path.read_text())
        record["eval"]["success_rate"] = 0.9
        path.write_text(json.dumps(record))
    row = next(line for line in results_table(tmp_path, spec).splitlines()
               if line.startswith("| all tasks |"))
    d_low, d_high = difference_interval(19, 20, 18, 20)
    assert d_low < 0 < d_high
    assert row.split(" | ")[1] == "met on 1 of 1 tasks, 1 not finished"
    assert row.split(" | ")[3] == (f"95% vs 90%: +5 [{100 * d_low:+.0f}, {100 * d_high:+.0f}], "
                                   "missed; 1 of 2 tasks")
    one_task = ExperimentSpec(name="t", tasks=(("reach", 2),), seeds=(0, 1),
                              step1_methods=("habc",), step1_rounds=1, step2_methods=())
    assert "all tasks" not in results_table(tmp_path, one_task)


def test_last_rounds_table_hand_computed(tmp_path):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2),), seeds=(0, 1), step1_methods=("habc",),
                          step1_rounds=3, step2_methods=("habc_ir",), step2_rounds=2)
    _write_rounds(tmp_path / "reach/seed_0/step1/habc", [0.2, 0.4, 0.6, 0.8])
    _write_rounds(tmp_path / "reach/seed_1/step1/habc", [0.2, 0.5, 0.7, 0.9])
    _write_rounds(tmp_path / "reach/seed_0/step2/habc_ir", [0.2, 0.4, 0.6, 0.8, 0.9, 1.0])
    (tmp_path / "reach/seed_1/step2/habc_ir/rounds").mkdir(parents=True)  # started, no round yet
    table = results_table(tmp_path, spec)
    # late_rounds 3: Step 1 rounds 1-3, (4+6+8) + (5+7+9) of 60 = 65%; Step 2 is capped at its
    # own 2 rounds: rounds 4-5 of seed 0, 9 + 10 of 20 = 95%; seed 1 has not finished.
    assert "(Step 1: rounds 1-3; Step 2: rounds 4-5)" in table
    assert table.splitlines()[-3] == "| reach (2 demos) | 65%; 60/70 | 95%; 95, 1 of 2 seeds |"
    with pytest.raises(ConfigError, match=">= 1"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), late_rounds=0)


def test_comparison_of_two_experiments_hand_computed(tmp_path, capsys):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2), ("push", 2)), seeds=(0, 1),
                          step1_methods=("habc",), step1_rounds=2, step2_methods=())
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    _write_rounds(mine / "reach/seed_0/step1/habc", [0.2, 0.5, 0.6])
    _write_rounds(mine / "reach/seed_1/step1/habc", [0.4, 0.7, 0.9])
    _write_rounds(theirs / "reach/seed_0/step1/habc", [0.2, 0.4, 0.5])
    _write_rounds(theirs / "reach/seed_1/step1/habc", [0.2, 0.6, 0.6])
    _write_rounds(mine / "push/seed_0/step1/habc", [0.1, 0.3, 0.4])
    _write_rounds(mine / "push/seed_1/step1/habc", [0.1, 0.2, 0.3])
    _write_rounds(theirs / "push/seed_0/step1/habc", [0.1, 0.2, 0.2])
    _write_rounds(theirs / "push/seed_1/step1/habc", [0.1, 0.3])  # not finished
    rows = comparison_table(mine, theirs, spec).splitlines()
    # reach's SFT (round 0): 2 + 4 = 6 of 20 against 2 + 2 = 4 of 20; per seed +0 / +20.
    low, high = difference_interval(6, 20, 4, 20)
    assert rows[4] == (f"| reach | SFT | 30% | 20% | +10 [{100 * low:+.0f}, {100 * high:+.0f}] "
                       "| +10 | +0/+20 |")
    # reach: 6 + 9 = 15 of 20 against 5 + 6 = 11 of 20; last 2 rounds (5+6+7+9) / 40 against
    # (4+5+6+6) / 40 = 67.5% - 52.5%; per seed +10 / +30.
    low, high = difference_interval(15, 20, 11, 20)
    assert rows[5] == (f"| reach | habc | 75% | 55% | +20 [{100 * low:+.0f}, {100 * high:+.0f}] "
                       "| +15 | +10/+30 |")
    # push's SFT: both seeds have round 0 (seed 1's run is not finished), 2 of 20 each.
    assert rows[6].startswith("| push | SFT | 10% | 10% | +0 [")
    # push: seed 0 only, 4 of 10 against 2 of 10; last rounds (3+4) / 20 - (2+2) / 20.
    low, high = difference_interval(4, 10, 2, 10)
    assert rows[7] == (f"| push | habc | 40% | 20% | +20 [{100 * low:+.0f}, {100 * high:+.0f}] "
                       "| +15 | +20, 1 of 2 seeds |")
    # all tasks: SFT 8 of 40 against 6 of 40 first (round 0: +10 and +0, mean +5); habc 19 of
    # 30 against 13 of 30, with the mean of the two last-rounds differences.
    low, high = difference_interval(8, 40, 6, 40)
    assert rows[8] == (f"| all tasks | SFT | 20% | 15% | +5 [{100 * low:+.0f}, "
                       f"{100 * high:+.0f}] | +5 | 2 of 2 tasks |")
    low, high = difference_interval(19, 30, 13, 30)
    assert rows[9] == (f"| all tasks | habc | 63% | 43% | +20 [{100 * low:+.0f}, "
                       f"{100 * high:+.0f}] | +15 | 2 of 2 tasks |")
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"name": "t", "tasks": [["reach", 2], ["push", 2]],
                                     "seeds": [0, 1], "step1_methods": ["habc"],
                                     "step1_rounds": 2, "step2_methods": []}))
    args = ["experiment", "--config-file", str(spec_file), "--out", str(mine), "--against"]
    assert main([*args, str(theirs)]) == 0
    assert "| all tasks | habc | 63% | 43% |" in capsys.readouterr().out
    assert main([*args, str(tmp_path / "none")]) == 2


def test_rescored_tables_hand_computed(tmp_path):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2),), seeds=(0, 1),
                          step1_methods=("dagger", "habc"), step1_rounds=1,
                          step2_methods=("habc_ir",), step2_rounds=1)
    for s in (0, 1):
        for step, method, rates in ((1, "dagger", [0.2, 0.6]), (1, "habc", [0.2, 0.5]),
                                    (2, "habc_ir", [0.2, 0.5, 0.7])):
            _write_rounds(tmp_path / f"reach/seed_{s}/step{step}/{method}", rates)
    (tmp_path / "reach/seed_1/step2/habc_ir/rounds/round_002.json").unlink()  # not finished
    found = final_checkpoints(spec, tmp_path, "reach", 1)
    assert set(found) == {"step1_dagger", "step1_habc"}  # no SFT trained, habc_ir unfinished
    assert found["step1_habc"] == tmp_path / "reach/seed_1/step1/habc/policies/v001"
    assert final_checkpoints(spec, tmp_path, "reach", 0)["step2_habc_ir"].name == "v002"

    root = tmp_path / "rescore-100000/reach"
    scores = {0: {"sft": 0.1, "step1_dagger": 0.9, "step1_habc": 0.6, "step2_habc_ir": 1.0},
              1: {"sft": 0.3, "step1_dagger": 0.5, "step1_habc": 0.8}}
    for s, rates in scores.items():
        (root / f"seed_{s}").mkdir(parents=True)
        for name, rate in rates.items():
            version = {"sft": "last", "step2_habc_ir": "v002"}.get(name, "v001")
            (root / f"seed_{s}/{name}.json").write_text(json.dumps(
                {"success_rate": rate, "n_trials": 10, "mean_success_length": 90.0,
                 "checkpoint": f"x/{version}"}))
    (root / "expert.json").write_text(json.dumps(
        {"success_rate": 1.0, "n_trials": 10, "mean_success_length": 50.0}))
    table = rescored_table(tmp_path, spec, 100000, 10)
    assert "Rescored on evaluation seeds 1100000-1100009" in table
    assert "10 evaluation trials per seed (seeds 1100000+)" in table
    # SFT 1 + 3 of 20; dagger 9 + 5 of 20; habc 6 + 8 of 20; habc_ir only seed 0, 10 of 10.
    row = next(line for line in table.splitlines() if line.startswith("| reach (2 demos)"))
    low, high = wilson_interval(14, 20)
    assert row.startswith("| reach (2 demos) | 100% [")
    assert f"| 70% [{100 * low:.0f}, {100 * high:.0f}] (90); 90/50 |" in row
    assert "| 100% [" in row and "(90); 100, 1 of 2 seeds |" in row
    # HABC 70% against SFT 20% and DAgger 70% (per seed -30 / +30): not above it; no Recap,
    # no HABC-V, and HABC+IR has one seed of two, so those stay open.
    assert _targets_row(table) == ("| reach | - | 70% vs 20%: **met**; per seed +50/+50 | "
                                   "70% vs 70%: missed; per seed -30/+30 | - | - |")
    # A score of another round's policy (saved under a spec with fewer rounds) is left out.
    (root / "seed_1/step1_habc.json").write_text(json.dumps(
        {"success_rate": 0.0, "n_trials": 10, "mean_success_length": None,
         "checkpoint": "x/v000"}))
    low, high = wilson_interval(6, 10)  # habc: seed 0's 6 of 10 only
    assert (f"(90); 90/50 | 60% [{100 * low:.0f}, {100 * high:.0f}] (90); 60, 1 of 2 seeds |"
            in rescored_table(tmp_path, spec, 100000, 10))
    with pytest.raises(ConfigError, match="shares evaluation seeds"):
        check_block(spec, 40, 20)  # seeds 40-59 overlap the reported 0-49
    check_block(spec, 50, 20)


def _write_scores(out: Path, rates: dict[int, dict[str, float]]) -> None:
    """Rescored block 100000 of ``out``: reach's scores per seed (10 trials each)."""
    root = out / "rescore-100000"
    for s, scores in rates.items():
        (root / f"reach/seed_{s}").mkdir(parents=True)
        for name, rate in scores.items():
            (root / f"reach/seed_{s}/{name}.json").write_text(json.dumps(
                {"success_rate": rate, "n_trials": 10, "mean_success_length": 90.0,
                 "checkpoint": "x/last" if name == "sft" else "x/v001"}))
    (root / "block.json").write_text(json.dumps({"offset": 100000, "trials": 10}))


def test_comparison_on_rescored_blocks_hand_computed(tmp_path, capsys):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"name": "t", "tasks": [["reach", 2]], "seeds": [0, 1],
                                     "step1_methods": ["habc"], "step1_rounds": 1,
                                     "step2_methods": []}))
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    _write_scores(mine, {0: {"sft": 0.3, "step1_habc": 0.9}, 1: {"sft": 0.5, "step1_habc": 0.7}})
    _write_scores(theirs, {0: {"sft": 0.1, "step1_habc": 0.8}, 1: {"sft": 0.2}})
    args = ["experiment", "--config-file", str(spec_file), "--out", str(mine), "--rescore",
            "100000", "--against"]
    assert main([*args, str(theirs)]) == 0
    out = capsys.readouterr().out
    assert "On the rescored block from evaluation seed 1100000" in out
    # SFT: 3 + 5 = 8 of 20 against 1 + 2 = 3 of 20, per seed +20 / +30; habc: seed 0 only
    # (seed 1 has no score on their side), 9 of 10 against 8 of 10. No last-rounds column.
    low, high = difference_interval(8, 20, 3, 20)
    assert (f"| reach | SFT | 40% | 15% | +25 [{100 * low:+.0f}, {100 * high:+.0f}] | "
            "+20/+30 |") in out
    low, high = difference_interval(9, 10, 8, 10)
    assert (f"| reach | habc | 90% | 80% | +10 [{100 * low:+.0f}, {100 * high:+.0f}] | "
            "+10, 1 of 2 seeds |") in out
    (theirs / "rescore-100000/block.json").unlink()
    assert main([*args, str(theirs)]) == 2  # their side was never rescored on the block
    assert "has no scores on the block from 100000" in capsys.readouterr().err


def test_weighted_actor_batches_apply_to_habc_methods_only(tmp_path):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2),), actor_batches="weighted")
    for method, expected in (("dagger", "shared"), ("recap", "shared"), ("habc_v", "weighted"),
                             ("habc", "weighted"), ("habc_ir", "weighted")):
        config = _online_config(spec, tmp_path, method, tmp_path / method, 3, 0)
        assert config.learner.actor_batches == expected, method


def test_critic_steps_per_round_apply_to_the_dual_head_methods_only(tmp_path):
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]],
                                     "critic_steps_per_round": 500})
    for method, expected in (("dagger", None), ("recap", None), ("habc_v", 500),
                             ("habc", 500), ("habc_ir", 500)):
        config = _online_config(spec, tmp_path, method, tmp_path / method, 3, 0)
        assert config.learner.critic_steps_per_round == expected, method
    with pytest.raises(ConfigError, match="critic_steps_per_round"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), critic_steps_per_round=0)


def test_failed_takeovers_are_left_out_for_the_imitating_methods_only(tmp_path):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2),), actor_batches="weighted",
                          imitate_failed_takeovers=False)
    for method, imitated in (("sft", True), ("dagger", False), ("recap", True),
                             ("habc_v", False), ("habc", False), ("habc_ir", False)):
        config = _online_config(spec, tmp_path, method, tmp_path / method, 3, 0)
        assert config.learner.imitate_failed_takeovers == imitated, method
    with pytest.raises(ConfigError, match="weighted"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), imitate_failed_takeovers=False)


def test_failed_rollout_weight_reaches_the_habc_runs(tmp_path):
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]],
                                     "failed_rollout_weight": "habc_positive"})
    for method in ("habc_v", "habc", "habc_ir"):
        rule = _online_config(spec, tmp_path, method, tmp_path / method, 3, 0).rule()
        assert isinstance(rule, HabcRule) and rule.failed_rollout_weight == "habc_positive", method
    dagger = _online_config(spec, tmp_path, "dagger", tmp_path / "d", 3, 0).rule()
    assert not isinstance(dagger, HabcRule)
    with pytest.raises(ConfigError, match="failed_rollout_weight"):
        ExperimentSpec(name="t", tasks=(("reach", 2),),
                       failed_rollout_weight="all")  # type: ignore[arg-type]


def test_gate_reaches_habc_and_habc_ir_and_habc_v_keeps_zero(tmp_path):
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]], "gate": "sigmoid"})
    gates = {m: _online_config(spec, tmp_path, m, tmp_path / m, 3, 0).rule()
             for m in ("habc_v", "habc", "habc_ir")}
    assert {m: getattr(r, "gate", None) for m, r in gates.items()} == {
        "habc_v": "zero", "habc": "sigmoid", "habc_ir": "sigmoid"}
    assert ExperimentSpec(name="t", tasks=(("reach", 2),)).habc_rule().gate == "linear"
    for bad in ("zero", "tanh"):
        with pytest.raises(ConfigError, match="gate"):
            ExperimentSpec(name="t", tasks=(("reach", 2),), gate=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="gate"):
        HabcRule(gate="tanh")  # type: ignore[arg-type]


def test_hiors_reward_reaches_the_hiors_runs(tmp_path):
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]],
                                     "hiors_reward": "progress"})
    assert _online_config(spec, tmp_path, "hiors", tmp_path / "h", 3, 0).rule().critic \
        == "progress"
    plain = ExperimentSpec(name="t", tasks=(("reach", 2),))
    assert _online_config(plain, tmp_path, "hiors", tmp_path / "h", 3, 0).rule().critic == "none"
    with pytest.raises(ConfigError, match="hiors_reward"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), hiors_reward="ppo")  # type: ignore[arg-type]


def test_the_stage_source_reaches_the_online_runs(tmp_path):
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]], "stages": "gripper"})
    assert _online_config(spec, tmp_path, "rabc", tmp_path / "r", 3, 0).stages == "gripper"
    plain = ExperimentSpec(name="t", tasks=(("reach", 2),))
    assert _online_config(plain, tmp_path, "rabc", tmp_path / "r", 3, 0).stages == "expert"
    with pytest.raises(ConfigError, match="stages"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), stages="vlm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="stages"):
        OnlineConfig(sft_checkpoint=tmp_path, run_dir=tmp_path, stages="vlm")  # type: ignore[arg-type]


def test_the_gripper_settings_reach_the_online_runs(tmp_path):
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]], "stages": "gripper",
                                     "gripper": {"opening_dim": 3, "opening_above": 0.35}})
    gripper = _online_config(spec, tmp_path, "rabc", tmp_path / "r", 3, 0).gripper
    assert (gripper.opening_dim, gripper.opening_above, gripper.settle) == (3, 0.35, 15)
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]], "stages": "gripper",
                                     "gripper": {"approach_radius": 0.02, "object_dims": [4, 5]}})
    gripper = _online_config(spec, tmp_path, "rabc", tmp_path / "r", 3, 0).gripper
    assert (gripper.approach_radius, gripper.hand_dims, gripper.object_dims) == \
        (0.02, (0, 1), (4, 5))
    with pytest.raises(ConfigError, match="need stages 'gripper'"):
        ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]],
                                  "gripper": {"min_run": 5}})
    with pytest.raises(ConfigError, match="go together"):
        ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]], "stages": "gripper",
                                  "gripper": {"opening_dim": 3}})


def test_online_mode_reaches_every_rollout_method_and_sft_stays_in_rounds(tmp_path):
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]],
                                     "online_mode": "async"})
    for method, mode in (("sft", "sync"), ("dagger", "async"), ("hiors", "async"),
                         ("habc", "async")):
        assert _online_config(spec, tmp_path, method, tmp_path / method, 3, 0).mode == mode
    with pytest.raises(ConfigError, match="online_mode"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), online_mode="later")  # type: ignore[arg-type]


def test_actor_ema_reaches_every_online_run(tmp_path):
    spec = ExperimentSpec.from_json({"name": "t", "tasks": [["reach", 2]], "actor_ema": 0.999})
    for method in ("sft", "dagger", "recap", "habc", "habc_ir", "hiors", "rabc"):
        assert _online_config(spec, tmp_path, method, tmp_path / method, 3, 0) \
            .learner.actor_ema == 0.999
    with pytest.raises(ConfigError, match="actor_ema"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), actor_ema=0.0)


def test_step2_runs_continue_their_source_run(tmp_path):
    assert [step2_source(m) for m in ("habc", "habc_ir", "dagger")] == ["habc", "habc", "dagger"]
    assert [run_label(2, m) for m in ("habc", "habc_ir", "dagger")] == [
        "habc_cont", "habc_ir", "dagger_cont"]
    assert run_label(1, "dagger") == "dagger"
    spec = ExperimentConfig(preset="benchmark-100-ema-dagger").spec()
    after = {j.name: j.after for j in experiment_jobs(spec, tmp_path)}
    assert after["step2 dagger pick-place 1"] == {"step1 dagger pick-place 1"}
    # The control differs from benchmark-100-ema in its methods only.
    ema = ExperimentConfig(preset="benchmark-100-ema").spec()
    differ = ("name", "description", "step1_methods", "step2_methods")
    assert {k: v for k, v in spec.__dict__.items() if k not in differ} \
        == {k: v for k, v in ema.__dict__.items() if k not in differ}
    assert (spec.step1_methods, spec.step2_methods) == (("dagger",), ("dagger",))
    with pytest.raises(ConfigError, match="continues the Step-1 dagger run"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), step1_methods=("habc",),
                       step2_methods=("dagger",))
    with pytest.raises(ConfigError, match="continues the Step-1 habc run"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), step1_methods=("dagger",),
                       step2_methods=("habc_ir",))


def test_jobs_run_after_their_dependencies_later_stages_first(tmp_path):
    spec = ExperimentSpec(name="t", tasks=(("reach", 2),), seeds=(0, 1),
                          step1_methods=("dagger", "habc"), step2_methods=("habc_ir",))
    pending, done, order = experiment_jobs(spec, tmp_path), set(), []
    while (job := next_job(pending, done)) is not None:
        pending.remove(job)
        done.add(job.name)
        order.append(job.name)
    assert not pending
    # seed 0's Step-1 habc goes first, since Step 2 forks from it; Step 2 starts as soon as it
    # is done, before seed 1's Step 1. Jobs nothing waits on (the expert) go last in a stage.
    assert order == ["sft reach 0", "step1 habc reach 0", "step2 habc_ir reach 0",
                     "step1 dagger reach 0", "sft reach 1", "step1 habc reach 1",
                     "step2 habc_ir reach 1", "step1 dagger reach 1", "expert reach"]
    later = [j for j in experiment_jobs(spec, tmp_path) if j.stage > 0]
    assert next_job(later, {"sft reach 0"}).name == "step1 habc reach 0"
    assert next_job(later, set()) is None  # everything waits on an SFT


def _resumable_job(root: Path, name: str, dies: int) -> str:
    """A job that logs each run and resumes from its record; its process dies on its first
    ``dies`` runs (the out-of-memory killer, say)."""
    with (root / f"{name}.runs").open("a") as log:
        log.write("run\n")
    if len((root / f"{name}.runs").read_text().splitlines()) <= dies:
        os._exit(9)
    return f"{name} done"


def _slow_job(root: Path, name: str) -> str:
    """A job that is still running when job 'd' has died on its last run."""
    runs = root / "d.runs"
    while not runs.exists() or len(runs.read_text().splitlines()) < 3:
        time.sleep(0.1)
    time.sleep(2)
    (root / f"{name}.done").write_text("")
    return f"{name} done"


def test_a_job_whose_process_dies_runs_again_and_one_that_always_dies_fails(tmp_path):
    jobs = [Job("a", 0, _resumable_job, (tmp_path, "a", 1)),
            Job("b", 0, _resumable_job, (tmp_path, "b", 0)),
            Job("c", 1, _resumable_job, (tmp_path, "c", 0), frozenset({"a"}))]
    console = Console(file=io.StringIO())
    with pytest.warns(RuntimeWarning, match="item runs again"):
        run_jobs(jobs, 2, console)
    assert [len((tmp_path / f"{n}.runs").read_text().splitlines()) for n in "abc"] == [2, 1, 1]
    assert "c done" in console.file.getvalue()
    # 'd' always dies; 'e', running beside it, finishes before the failure is raised
    with pytest.warns(RuntimeWarning), pytest.raises(
            HabcError, match=r"job d failed: .* lost on each of its 3 runs.*exit code 9"):
        run_jobs([Job("d", 0, _resumable_job, (tmp_path, "d", 99)),
                  Job("e", 0, _slow_job, (tmp_path, "e"))], 2, console)
    assert (tmp_path / "e.done").exists()


def test_an_experiment_with_cameras_records_them_in_its_demos(tmp_path):
    """A spec whose policy sees a camera gets demos with its frames and a camera SFT."""
    policy = PolicyConfig(hidden_dim=32, num_blocks=1, chunk_horizon=4, exec_horizon=2,
                          num_inference_steps=2, cameras=("corner2",), image_size=16,
                          image_shift=2)
    spec = ExperimentSpec(name="cam", tasks=(("reach", 1),), sft_steps=2, batch_size=8,
                          max_steps=150, policy=policy)
    sft_job(spec, tmp_path, (("reach", 1),), 0)
    cell = tmp_path / "reach/seed_0"
    assert EpisodeStore.open(cell / "demos").image_shapes == {"corner2": (16, 16, 3)}
    assert load_policy(cell / "sft/checkpoints/last").config.cameras == ("corner2",)


def test_a_multi_task_experiment_trains_one_policy_per_seed(tmp_path, capsys):
    """multi_task: one policy per seed on both tasks, with per-task budgets, tables and scores."""
    smoke = ExperimentConfig(preset="smoke").spec()
    payload = json.loads(json.dumps(smoke.__dict__, default=lambda v: v.__dict__)) | {
        "name": "smoke-mt", "tasks": [["reach", 2], ["button-press-topdown", 1]],
        "multi_task": True,
        "step1_methods": ["sft", "dagger", "habc"], "step2_methods": ["habc_ir"],
        "max_steps": 100}
    spec_file = tmp_path / "mt.json"
    spec_file.write_text(json.dumps(payload))
    spec = ExperimentSpec.from_json(payload)
    out = tmp_path / "exp"
    args = ["experiment", "--config-file", str(spec_file), "--out", str(out)]
    assert sorted(j.name for j in experiment_jobs(spec, out)) == [
        "expert button-press-topdown", "expert reach", "sft multi-task 0",
        "step1 dagger multi-task 0", "step1 habc multi-task 0", "step1 sft multi-task 0",
        "step2 habc_ir multi-task 0"]
    assert main([*args, "--jobs", "2", "--no-report"]) == 0
    # Each task's demos sit with the task; the one policy trains on both, for 2 x 10 steps.
    assert EpisodeStore.open(out / "reach/seed_0/demos").num_episodes == 2
    assert EpisodeStore.open(out / "button-press-topdown/seed_0/demos").num_episodes == 1
    cell = out / "multi-task/seed_0"
    assert load_policy(cell / "sft/checkpoints/last").prompts == ("button press topdown",
                                                                     "reach")
    assert int(np.loadtxt(cell / "sft/train_log.csv", delimiter=",", skiprows=1,
                          ndmin=2)[-1, 0]) == 20
    # Online runs get the per-task budgets times the two tasks.
    config = json.loads((cell / "step1/habc/config.json").read_text())
    assert (config["rollouts_per_round"], config["steps_per_round"]) == (4, 8)
    assert config["habc"]["warmup_steps"] == 4
    last = load_rounds(cell / "step2/habc_ir")[-1]
    assert last["round"] == 2 and last["ir_enabled"]
    assert last["tasks"] == ["button-press-topdown", "reach"]  # the checkpoint's order
    assert {t: r["n"] for t, r in last["rollouts_by_task"].items()} == {
        "reach": 2, "button-press-topdown": 2}
    # The table has a row per task, with that task's evaluations of the shared runs.
    table = (out / "results.md").read_text()
    assert "One multi-task policy per seed for every task" in table
    for task, demos in (("reach", 2), ("button-press-topdown", 1)):
        row = next(line for line in table.splitlines()
                   if line.startswith(f"| {task} ({demos} demos) |"))
        dagger = load_rounds(cell / "step1/dagger")[-1]["eval_by_task"][task]["success_rate"]
        sft = load_rounds(cell / "step1/sft")[0]["eval_by_task"][task]["success_rate"]
        assert row.split(" | ")[2].startswith(f"{sft:.0%} [")
        assert row.split(" | ")[4].startswith(f"{dagger:.0%} [")
    # Rescoring scores the shared policy on each task.
    assert main([*args, "--rescore", "100000", "--rescore-trials", "2", "--jobs", "2"]) == 0
    for task in ("reach", "button-press-topdown"):
        score = json.loads((out / f"rescore-100000/{task}/seed_0/step2_habc_ir.json")
                           .read_text())
        assert score["task"] == task
        assert score["checkpoint"].endswith("multi-task/seed_0/step2/habc_ir/policies/v002")
    assert set(final_checkpoints(spec, out, "reach", 0)) == {
        "sft", "step1_sft", "step1_dagger", "step1_habc", "step2_habc_ir"}
    # The report shows the shared runs under each task; a subset of its tasks is refused.
    assert main(["report", str(out), "--no-animations"]) == 0
    page = (out / "report/index.html").read_text()
    assert "<td>button-press-topdown (1 demos)</td>" in page and "<td>habc_ir_mt</td>" in page
    capsys.readouterr()
    assert main([*args, "--tasks", "reach"]) == 2
    assert "cannot pick tasks of a multi-task spec" in capsys.readouterr().err


def test_multi_task_specs_are_checked_and_compare_task_by_task(tmp_path):
    with pytest.raises(ConfigError, match="two or more tasks"):
        ExperimentSpec(name="t", tasks=(("reach", 2),), multi_task=True)
    with pytest.raises(ConfigError, match="task_balance needs multi_task"):
        ExperimentSpec(name="t", tasks=(("reach", 2), ("push", 2)), task_balance=True)
    balanced = ExperimentSpec(name="t", tasks=(("reach", 2), ("push", 2)), multi_task=True,
                              task_balance=True)
    for method in ("sft", "dagger", "habc"):
        assert _online_config(balanced, tmp_path, method, tmp_path / method, 3, 0) \
            .learner.task_balance
    # A multi-task experiment against single-task runs, read each in its own layout: reach
    # 6 of 10 (seed 0's round 2) against 5 of 10; push 3 of 10 against 4 of 10.
    spec = ExperimentSpec(name="t", tasks=(("reach", 2), ("push", 2)), seeds=(0,),
                          step1_methods=("habc",), step1_rounds=2, step2_methods=(),
                          multi_task=True)
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    run = mine / "multi-task/seed_0/step1/habc"
    _write_rounds(run, [0.0, 0.0, 0.0])
    for r, (reach, push) in enumerate([(0.2, 0.1), (0.4, 0.2), (0.6, 0.3)]):
        path = run / f"rounds/round_{r:03d}.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"eval_by_task": {
            t: {"success_rate": x, "n_trials": 10, "mean_success_length": 90.0}
            for t, x in (("reach", reach), ("push", push))}}))
    _write_rounds(theirs / "reach/seed_0/step1/habc", [0.2, 0.5, 0.5])
    _write_rounds(theirs / "push/seed_0/step1/habc", [0.1, 0.3, 0.4])
    (theirs / "spec.json").write_text(json.dumps({"name": "s", "tasks": [["reach", 2]]}))
    rows = comparison_table(mine, theirs, spec).splitlines()
    low, high = difference_interval(6, 10, 5, 10)
    # last 2 rounds: (4 + 6) / 20 - (5 + 5) / 20; the SFT row (round 0) comes first
    assert rows[4].startswith("| reach | SFT | 20% | 20% | +0 [")
    assert rows[5] == (f"| reach | habc | 60% | 50% | +10 [{100 * low:+.0f}, "
                       f"{100 * high:+.0f}] | +0 |  |")
