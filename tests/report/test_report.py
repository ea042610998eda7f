"""The HTML report: figures, tables and animations from online runs; it renders in Chromium."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from habc.cli import main
from habc.report.browser import check_in_chromium, find_chromium
from habc.report.html import failure_rows, find_runs
from tests.test_online_cli import TINY_ONLINE


@pytest.fixture(scope="module")
def online_run(sft_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir",
                 str(root / "step1" / "habc"), "--rounds", "1", *TINY_ONLINE]) == 0
    return root


def test_report_writes_page_figures_and_animations(online_run):
    assert main(["eval", "--expert", "--task", "reach", "--num-trials", "2", "--workers", "1",
                 "--out", str(online_run / "expert.json")]) == 0
    assert main(["report", str(online_run)]) == 0
    out = online_run / "report"
    page = (out / "index.html").read_text()
    for name in ("success_bars.png", "success_curves.png", "operator_effort.png",
                 "viability_reach.png", "signals_reach.png", "sft_reach.gif",
                 "final_reach.gif"):
        assert (out / name).stat().st_size > 1000, name
        assert f"src='{name}'" in page, name
    assert "Weight statistics (App. G)" in page and "Operator effort" in page
    assert "held-out episodes (successes)" in page and "operator share" in page
    assert "over 2 evaluation seeds" in page
    assert "Where the failures stop" not in page  # reach's expert has a single stage
    assert "the scripted expert on the same evaluation seeds (reach 100%)" in page
    runs = find_runs(online_run)
    assert len(runs) == 1 and runs[0].label == "habc" and runs[0].task == "reach"


@pytest.mark.skipif(find_chromium() is None, reason="needs Debian's chromium")
def test_report_renders_in_chromium_and_broken_page_fails(online_run, tmp_path):
    assert main(["report", str(online_run), "--no-animations", "--browser-check"]) == 0
    shot = np.asarray(Image.open(online_run / "report" / "screenshot.png").convert("L"))
    assert shot.shape == (2400, 1280) and shot.std() > 5  # rendered content, not a blank page
    broken = tmp_path / "broken"
    shutil.copytree(online_run / "report", broken)
    (broken / "success_bars.png").unlink()
    loaded, missing = check_in_chromium(broken / "index.html")
    assert missing >= 1 and loaded >= 1


def test_report_marks_runs_that_are_still_running(online_run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(online_run / "step1", partial / "step1")
    (partial / "step1/habc/rounds/round_001.json").unlink()  # planned 1 round, none written yet
    (run,) = find_runs(partial)
    assert run.running and run.planned_rounds == 1 and not find_runs(online_run)[0].running
    assert main(["report", str(partial), "--no-animations"]) == 0
    page = (partial / "report/index.html").read_text()
    assert "1 of 1 runs are still running" in page and "<td>0 of 1</td>" in page


def test_report_of_nothing_is_a_clear_error(tmp_path):
    assert main(["report", str(tmp_path)]) == 2


def test_report_shows_the_progress_models_held_out_error_by_round(online_run, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(online_run / "step1", runs / "step1")
    shutil.move(runs / "step1/habc", runs / "step1/rabc")
    record_path = runs / "step1/rabc/rounds/round_001.json"
    record = json.loads(record_path.read_text())
    record["method"] = "rabc"
    record["train"] |= {"progress/heldout_mse": 0.0312, "progress/train_mse": 0.00281,
                        "progress/heldout_frames": 746.0}
    record_path.write_text(json.dumps(record))
    assert main(["report", str(runs), "--no-animations"]) == 0
    page = (runs / "report/index.html").read_text()
    assert "Progress model (SPEC §8)" in page
    assert "<td>0.031</td><td>0.0028</td><td>746</td>" in page
    assert main(["report", str(online_run), "--no-animations"]) == 0  # no progress model: none
    assert "Progress model" not in (online_run / "report/index.html").read_text()


def test_failure_table_pools_the_seeds_that_record_stages():
    def ev(furthest, last):
        return {"num_stages": 4, "failures_by_stage": {"furthest": furthest, "last": last}}

    final = {"pick-place": {"habc": [ev([0, 1, 0, 2], [1, 1, 0, 1]), ev([1, 0, 0, 3],
                                                                     [2, 0, 0, 2]),
                                     {"success_rate": 0.9}],  # recorded before stages were
             "dagger": [{"success_rate": 0.8}]},
             "reach": {"habc": [{"num_stages": 1, "failures_by_stage": {"furthest": [3],
                                                                        "last": [3]}}]}}
    assert failure_rows(final) == [
        ["pick-place", "habc", "2", "7", "0: 1 1: 1 2: 0 3: 5", "0: 3 1: 1 2: 0 3: 3"]]


def test_report_shows_a_multi_task_run_under_each_of_its_tasks(multi_task_checkpoint, tmp_path):
    assert main(["online", "--sft-checkpoint", str(multi_task_checkpoint), "--run-dir",
                 str(tmp_path / "habc"), "--rounds", "1", *TINY_ONLINE,
                 "--rollouts-per-round", "4"]) == 0
    runs = find_runs(tmp_path)
    assert [(r.task, r.label) for r in runs] == [("drawer-close", "habc_mt"),
                                                 ("reach", "habc_mt")]
    record = json.loads((tmp_path / "habc/rounds/round_001.json").read_text())
    for run in runs:  # each task's own evaluation and rollouts
        assert run.rounds[-1]["eval"] == record["eval_by_task"][run.task]
        assert run.rounds[-1]["rollouts"] == record["rollouts_by_task"][run.task]
    assert main(["report", str(tmp_path), "--no-animations"]) == 0
    page = (tmp_path / "report/index.html").read_text()
    for name in ("viability_reach.png", "viability_drawer_close.png"):
        assert f"src='{name}'" in page and (tmp_path / "report" / name).stat().st_size > 1000
