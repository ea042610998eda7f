"""`habc experiment` on the tiny smoke preset: every stage, resume, and bad specs."""

import json

from habc.cli import main
from habc.experiments.experiment import preset_names


def test_smoke_experiment_runs_every_stage_and_resumes(tmp_path):
    out = tmp_path / "exp"
    args = ["experiment", "--preset", "smoke", "--out", str(out), "--jobs", "2", "--no-report"]
    assert main(args) == 0
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

    before = {p: p.stat().st_mtime for p in out.glob("**/rounds/*.json")}
    assert main([*args, "--seeds", "0"]) == 0  # resume: nothing finished is redone
    assert {p: p.stat().st_mtime for p in out.glob("**/rounds/*.json")} == before


def test_presets_and_bad_specs(tmp_path):
    assert {"benchmark", "smoke"} <= set(preset_names())
    assert main(["experiment", "--preset", "nope"]) == 2
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]],
                                "step1_methods": ["ppo"]}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text(json.dumps({"name": "x", "tasks": [["reach", 2]], "eval_seed_offset": -1}))
    assert main(["experiment", "--config-file", str(spec)]) == 2
    spec.write_text("{broken")
    assert main(["experiment", "--config-file", str(spec)]) == 2
