"""`habc experiment --rescore OFFSET`: an experiment's final policies on a second seed block.

A benchmark's verdicts rest on one block of evaluation seeds (50 trials per seed by default),
and a few points either way can be that block's luck. Rescoring evaluates, on the evaluation
seeds from ``OFFSET`` on (100000: the validation block the A/Bs use), the final policy of every
finished run, each seed's SFT checkpoint and the scripted expert, and prints the same results
and targets tables on those trials. No training runs; the scores are saved as ``habc eval``
result files (with failure stages) under ``OUT/rescore-<OFFSET>/<task>/``:
``expert.json`` and ``seed_<s>/{sft, step1_<method>, step2_<method>}.json``. Resumable: a
score already saved for the same checkpoint and seeds is not evaluated again. With
``--against DIR``, the two experiments' scores on the block are compared instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from habc.envs.registry import EVAL_SEED_BASE, eval_seeds, get_task
from habc.errors import ConfigError
from habc.evaluation.evaluate import EvalConfig, evaluate
from habc.experiments.experiment import (
    EXPERT_FILE,
    ExperimentSpec,
    Job,
    ResultTables,
    comparison_table,
    final_round,
    markdown_table,
    policy_cell,
    quiet_job,
    result_tables,
    run_jobs,
)
from habc.experiments.provenance import machines_line, record_invocation
from habc.experiments.tables import load_rounds

RESCORE_PREFIX = "rescore-"
"""Folders of an experiment directory that hold rescored blocks start with this."""


def rescore_dir(out: Path, offset: int) -> Path:
    """Where the scores of ``out`` on the seed block from ``offset`` are saved."""
    return out / f"{RESCORE_PREFIX}{offset}"


def check_block(spec: ExperimentSpec, offset: int, trials: int) -> None:
    """Refuse a block that is empty or shares seeds with the spec's reported block."""
    if offset < 0 or trials < 1:
        raise ConfigError("--rescore needs an offset >= 0 and --rescore-trials >= 1")
    if offset < spec.eval_seed_offset + spec.eval_trials and \
            spec.eval_seed_offset < offset + trials:
        raise ConfigError(
            f"--rescore {offset} with {trials} trials shares evaluation seeds with the "
            f"experiment's own block ({spec.eval_trials} trials from offset "
            f"{spec.eval_seed_offset}); pick a disjoint block, such as 100000")


def final_checkpoints(spec: ExperimentSpec, out: Path, task: str,
                      seed: int) -> dict[str, Path]:
    """Score name -> checkpoint of one task and seed (a multi-task spec's: the shared policy's).

    ``sft`` when the SFT checkpoint is trained, and ``step<k>_<method>`` (its last round's
    policy) for every run that has finished its rounds.
    """
    cell = policy_cell(out, task, seed, spec.multi_task)
    found = {}
    if (cell / "sft/checkpoints/last/model.safetensors").exists():
        found["sft"] = cell / "sft/checkpoints/last"
    for step, methods in ((1, spec.step1_methods), (2, spec.step2_methods)):
        rounds = final_round(spec, step)
        for method in methods:
            run = cell / f"step{step}" / method
            if (run / "rounds").is_dir() and len(load_rounds(run)) > rounds:
                found[f"step{step}_{method}"] = run / "policies" / f"v{rounds:03d}"
    return found


def _saved(path: Path, seeds: list[int], checkpoint: Path | None) -> bool:
    """Whether ``path`` holds a score of ``checkpoint`` (None: the expert) on exactly ``seeds``.

    Checkpoints compare by their last five path parts (``seed_<s>/step<k>/<method>/policies/
    v<NNN>``), so the scores stay valid in a copy of the experiment directory, and a run's
    score is redone when its final round changes (a spec with more Step-2 rounds).
    """
    if not path.exists():
        return False
    saved = json.loads(path.read_text())
    tail = None if checkpoint is None else Path(checkpoint).parts[-5:]
    return ([t["seed"] for t in saved["trials"]] == seeds and
            (None if saved["checkpoint"] is None else Path(saved["checkpoint"]).parts[-5:])
            == tail)


def score_job(path: Path, task: str, checkpoint: Path | None, seeds: tuple[int, ...],
              max_steps: int | None) -> str:
    """Evaluate one checkpoint (None: the scripted expert) on ``seeds`` into ``path``."""
    quiet_job()
    if not _saved(path, list(seeds), checkpoint):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")  # a crash never leaves a half-written score
        evaluate(EvalConfig(checkpoint=checkpoint, expert=checkpoint is None, task=task,
                            seeds=seeds, workers=1, max_steps=max_steps, out=partial),
                 show_progress=False)
        partial.replace(path)
    rate = json.loads(path.read_text())["success_rate"]
    what = "expert" if checkpoint is None else f"{path.parent.name} {path.stem}"
    return f"{task} {what}: {rate:.0%} on {len(seeds)} seeds"


def score_jobs(spec: ExperimentSpec, out: Path, offset: int, trials: int) -> list[Job]:
    """One job per score: each task's expert, each seed's SFT and finished runs."""
    seeds = tuple(eval_seeds(trials, offset))
    root = rescore_dir(out, offset)
    jobs = []
    for task, _ in spec.tasks:
        name = get_task(task).name
        jobs.append(Job(f"rescore {name} expert", 0, score_job,
                        (root / name / EXPERT_FILE, task, None, seeds, spec.max_steps)))
        for s in spec.seeds:
            for score, checkpoint in final_checkpoints(spec, out, task, s).items():
                path = root / name / f"seed_{s}" / f"{score}.json"
                jobs.append(Job(f"rescore {name} {s} {score}", 0, score_job,
                                (path, task, checkpoint, seeds, spec.max_steps)))
    return jobs


@dataclass(frozen=True)
class RescoredScores:
    """The ``Scores`` of a rescore directory: one eval per seed, the final policy's."""

    root: Path
    spec: ExperimentSpec

    def run(self, task: str, step: int, method: str,
            sft: dict[int, dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        """See ``Scores.run``.

        A score of another round's policy than the spec's last one (saved under a spec with
        other rounds) does not count.
        """
        found = {}
        version = f"v{final_round(self.spec, step):03d}"
        for s in self.spec.seeds:
            cell = self.root / get_task(task).name / f"seed_{s}"
            if s not in sft and (cell / "sft.json").exists():
                sft[s] = json.loads((cell / "sft.json").read_text())
            path = cell / f"step{step}_{method}.json"
            if path.exists() and Path((saved := json.loads(path.read_text()))
                                      ["checkpoint"]).name == version:
                found[s] = [saved]
        return found

    def expert(self, task: str) -> list[dict[str, Any]]:
        """See ``Scores.expert``."""
        path = self.root / get_task(task).name / EXPERT_FILE
        return [json.loads(path.read_text())] if path.exists() else []


BLOCK_FILE = "block.json"
"""In a rescore directory: the block it scores, ``{"offset": .., "trials": ..}``."""


def saved_blocks(out: Path) -> list[tuple[int, int]]:
    """(offset, trials) of every block ``out`` has been rescored on, by offset."""
    blocks = []
    for path in out.glob(f"rescore-*/{BLOCK_FILE}"):
        block = json.loads(path.read_text())
        blocks.append((int(block["offset"]), int(block["trials"])))
    return sorted(blocks)


def rescored_results(out: Path, spec: ExperimentSpec, offset: int,
                     trials: int) -> tuple[str, ResultTables]:
    """What the rescored block is (a sentence), and the results and targets tables on it."""
    block = replace(spec, eval_seed_offset=offset, eval_trials=trials)
    tables = result_tables(out, block, RescoredScores(rescore_dir(out, offset), block))
    header = (f"Rescored on evaluation seeds {EVAL_SEED_BASE + offset}-"
              f"{EVAL_SEED_BASE + offset + trials - 1}: the final policy of every finished "
              "run, each seed's SFT checkpoint and the scripted expert, evaluated again on a "
              "block disjoint from the experiment's own. Scores: "
              f"{rescore_dir(out, offset)}.")
    return header, tables


def rescored_table(out: Path, spec: ExperimentSpec, offset: int, trials: int) -> str:
    """Markdown of the results and targets on the rescored block."""
    header, tables = rescored_results(out, spec, offset, trials)
    lines = [header, "", tables.caption, "", *markdown_table(tables.header, tables.rows), "",
             f"On the rescored block: {tables.target_caption}", "",
             *markdown_table(tables.target_header, tables.target_rows)]
    return "\n".join(lines) + "\n"


def rescored_comparison(out: Path, against: Path, spec: ExperimentSpec, offset: int) -> str:
    """``comparison_table`` of two experiment directories' scores on the block from ``offset``.

    Both must have been rescored on that block (``--rescore OFFSET``); each side's scores are
    read by task, so a multi-task experiment compares with single-task runs as it is.
    """
    for directory in (out, against):
        if not (rescore_dir(directory, offset) / BLOCK_FILE).exists():
            raise ConfigError(f"{directory} has no scores on the block from {offset}: run "
                              f"habc experiment --rescore {offset} --out {directory} first")
    block = replace(spec, eval_seed_offset=offset)
    table = comparison_table(out, against, spec,
                             (RescoredScores(rescore_dir(out, offset), block),
                              RescoredScores(rescore_dir(against, offset), block)))
    return f"On the rescored block from evaluation seed {EVAL_SEED_BASE + offset}:\n\n{table}"


def rescore(spec: ExperimentSpec, out: Path, offset: int, trials: int, jobs: int,
            console: Console, *, table_only: bool = False) -> Path:
    """Score (unless ``table_only``), print and save the tables; return the scores' folder."""
    check_block(spec, offset, trials)
    if not out.is_dir():
        raise ConfigError(f"no experiment directory {out}")
    root = rescore_dir(out, offset)
    root.mkdir(parents=True, exist_ok=True)
    if not table_only:
        record_invocation(root, jobs)
        run_jobs(score_jobs(spec, out, offset, trials), jobs, console)
    table = rescored_table(out, spec, offset, trials)
    (root / BLOCK_FILE).write_text(json.dumps({"offset": offset, "trials": trials}))
    provenance = machines_line(root)
    (root / "results.md").write_text(table + (f"\n{provenance}\n" if provenance else ""))
    console.print(table, soft_wrap=True)
    return root
