"""`habc report RUN_DIR`: one HTML page (plus the PNG/GIF files it shows) for a run directory.

Every online run below RUN_DIR (a directory holding ``rounds/round_000.json``) is found and
grouped by task, method and seed. A run inside a ``step2`` directory that continues its own
method's Step-1 run is labelled ``<method>_cont`` (``habc_cont``, ``dagger_cont``).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from rich.progress import track

from habc.envs.registry import EVAL_SEED_BASE, eval_seeds, get_task
from habc.episodes.episode import EpisodeSource
from habc.errors import ConfigError, HabcError
from habc.evaluation.evaluate import STAGE_KEYS, format_stage_counts
from habc.experiments.tables import load_rounds, run_label, task_rounds
from habc.policy.backend import load_policy
from habc.report import figures
from habc.report.traces import RunCritic, pick_episodes
from habc.rollout.actors import PolicyActor, make_policy_env
from habc.rollout.runner import run_episode


@dataclass(frozen=True)
class ReportConfig:
    """Write an HTML report of every online run found below a directory."""

    run_dir: tyro.conf.Positional[Path]
    """Directory holding online runs (an experiment, a pipeline run, or one online run)."""
    out: Path | None = None
    """Output directory; default RUN_DIR/report."""
    animations: bool = True
    """Render SFT-vs-final rollout animations (MuJoCo offscreen on the CPU)."""
    browser_check: bool = False
    """Load the page in headless Chromium, fail if any image is broken, and save a screenshot
    of its top as OUT/screenshot.png."""

    def __post_init__(self) -> None:
        if not Path(self.run_dir).is_dir():
            raise ConfigError(f"no run directory {self.run_dir}")


@dataclass(frozen=True)
class RunInfo:
    """One online run."""

    path: Path
    task: str
    label: str
    seed: int
    rounds: list[dict[str, Any]]
    planned_rounds: int
    """Rounds the run was configured for; fewer in ``rounds`` while it is still running."""

    @property
    def running(self) -> bool:
        """Whether the run has not written its last planned round yet."""
        return len(self.rounds) - 1 < self.planned_rounds


MULTI_TASK_SUFFIX = "_mt"
"""Label suffix of a multi-task run (one per task in the report: ``habc_mt``)."""


def find_runs(root: Path) -> list[RunInfo]:
    """Every online run below ``root``; a multi-task run once per task."""
    runs = []
    for first in sorted(Path(root).glob("**/rounds/round_000.json")):
        path = first.parent.parent
        rounds = load_rounds(path)
        config = json.loads((path / "config.json").read_text())
        # rounds of a forked run were written by its parent
        label = run_label(2 if path.parent.name == "step2" else 1, str(config["method"]))
        tasks = rounds[0].get("tasks")
        for task, task_recs in ([(rounds[0]["task"], rounds)] if tasks is None else
                                [(t, task_rounds(rounds, t)) for t in tasks]):
            runs.append(RunInfo(path=path, task=task,
                                label=label if tasks is None else label + MULTI_TASK_SUFFIX,
                                seed=int(config.get("seed", 0)), rounds=task_recs,
                                planned_rounds=int(config.get("rounds", len(rounds) - 1))))
    if not runs:
        raise HabcError(f"no online runs (rounds/round_000.json) below {root}")
    return runs


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _experiment_tables(out: Path, spec_json: dict[str, Any], report_dir: Path) -> str:
    from habc.experiments.experiment import ExperimentSpec, result_tables
    from habc.experiments.rescore import rescored_results, saved_blocks

    spec = ExperimentSpec.from_json(spec_json)
    tables = result_tables(out, spec)
    rescored = [(offset, trials, *rescored_results(out, spec, offset, trials))
                for offset, trials in saved_blocks(out)]

    def cells(rows: list[list[str]]) -> list[list[str]]:
        return [[html.escape(c).replace("**met**", "<b>met</b>") for c in row] for row in rows]

    def block_label(offset: int, trials: int) -> str:
        return f"seeds {EVAL_SEED_BASE + offset:,}+ ({trials} per seed)"

    gaps = {block_label(spec.eval_seed_offset, spec.eval_trials): tables.gaps} | {
        block_label(offset, trials): block.gaps for offset, trials, _, block in rescored}
    gap_figure = ""
    if any(gaps.values()):
        png = figures.habc_gaps({k: v for k, v in gaps.items() if v},
                                report_dir / "habc_gaps.png")
        gap_figure = (f"<img src='{png.name}' alt='HABC gaps'><p>Step-1 HABC's final success "
                      "minus each compared run's, pooled over seeds (and, in the row 'all "
                      "tasks', over the tasks), in points with Newcombe's 95% interval, on each "
                      "block of evaluation seeds. An interval wholly right of 0 is a win.</p>")
    return (f"<h2>Results</h2><p>{html.escape(tables.caption)}</p>"
            + _table(tables.header, cells(tables.rows))
            + f"<h3>Targets</h3><p>{html.escape(tables.target_caption)}</p>"
            + _table(tables.target_header, cells(tables.target_rows)) + gap_figure
            + f"<h3>Last rounds</h3><p>{html.escape(tables.late_caption)}</p>"
            + _table(tables.late_header, cells(tables.late_rows))
            + f"<p>{html.escape(tables.job_time)}</p>"
            + "".join(f"<h3>Rescored: {trials} trials per seed from offset {offset}</h3>"
                      f"<p>{html.escape(header)}</p>"
                      + _table(block.header, cells(block.rows))
                      + _table(block.target_header, cells(block.target_rows))
                      for offset, trials, header, block in rescored))


def _pct(ev: dict[str, Any]) -> str:
    return f"{ev['success_rate']:.0%} [{ev['ci95_low']:.0%}, {ev['ci95_high']:.0%}]"


def failure_rows(final: dict[str, dict[str, list[dict[str, Any]]]]) -> list[list[str]]:
    """Failures by expert stage per task and method, pooled over the runs that record them."""
    rows = []
    for task, methods in final.items():
        for label, evals in methods.items():
            staged = [ev for ev in evals if "failures_by_stage" in ev and ev["num_stages"] > 1]
            if not staged:
                continue
            counts = {key: np.sum([ev["failures_by_stage"][key] for ev in staged], axis=0)
                      for key in STAGE_KEYS}
            rows.append([task, label, str(len(staged)), str(int(counts["last"].sum())),
                         *(format_stage_counts(counts[key].tolist()) for key in STAGE_KEYS)])
    return rows


def _rollout_gif(policy_dir: Path, task_name: str, out: Path) -> Path:
    from habc.report.render import render_replay, write_gif

    torch.set_num_threads(1)
    policy = load_policy(policy_dir)
    task = get_task(task_name)
    env = make_policy_env(task, policy)
    seed = eval_seeds(1)[0]
    actor = PolicyActor(policy, prompt=task.prompt, version=0,
                        generator=torch.Generator().manual_seed(seed))
    ep = run_episode(env, actor, seed=seed, source=EpisodeSource.EVAL)
    write_gif(render_replay(task, seed, ep.action, ep.controller), out)
    return out


def build_report(config: ReportConfig) -> Path:
    """Write the report; return the path of index.html."""
    runs = find_runs(config.run_dir)
    out = Path(config.out or Path(config.run_dir) / "report")
    out.mkdir(parents=True, exist_ok=True)
    tasks = sorted({r.task for r in runs})
    sections: list[str] = []

    final: dict[str, dict[str, list[dict[str, Any]]]] = {t: {} for t in tasks}
    curves: dict[str, dict[str, list[list[float]]]] = {t: {} for t in tasks}
    effort: dict[str, dict[str, tuple[float, float]]] = {t: {} for t in tasks}
    rows, weight_rows, progress_rows = [], [], []
    for run in runs:
        online = run.rounds[1:]
        last = run.rounds[-1]
        final[run.task].setdefault(run.label, []).append(last["eval"])
        curves[run.task].setdefault(run.label, []).append(
            [r["eval"]["success_rate"] for r in run.rounds])
        steps = sum(r["rollouts"]["operator_steps"] for r in online)
        prev = effort[run.task].get(run.label, (0.0, 0.0))
        effort[run.task][run.label] = (prev[0] + steps, max(prev[1],
                                                            last["eval"]["success_rate"]))
        msl = last["eval"]["mean_success_length"]
        done = f"{len(online)} of {run.planned_rounds}" if run.running else str(len(online))
        rows.append([run.task, run.label, str(run.seed), done,
                     _pct(run.rounds[0]["eval"]), _pct(last["eval"]),
                     f"{msl:.1f}" if msl else "-", str(steps),
                     str(sum(r["rollouts"]["n"] for r in online))])
        train = last.get("train", {})
        fmt = {k: (f"{train[k]:.{3 if 'brier' in k else 2}f}" if k in train else "-") for k in (
            "actor/demo_fraction", "actor/operator_fraction",
            "w_tilde_success_autonomous", "w_tilde_human_windows", "zero_weight_fraction",
            "w_ess_fraction", "recap_pass_per_100", "critic/brier", "critic/ece",
            "critic/heldout_brier", "critic/heldout_brier_skill", "critic/e_abs_error")}
        held = (f"{train['critic/heldout_episodes']:.0f} "
                f"({train['critic/heldout_successes']:.0f})"
                if "critic/heldout_episodes" in train else "-")
        weight_rows.append([run.task, run.label, str(run.seed), *fmt.values(), held])
        mse = [r.get("train", {}).get("progress/heldout_mse") for r in online]
        if any(m is not None for m in mse):
            progress_rows.append([run.task, run.label, str(run.seed),
                                  ", ".join("-" if m is None else f"{m:.3f}" for m in mse),
                                  f"{train.get('progress/train_mse', float('nan')):.4f}",
                                  f"{train.get('progress/heldout_frames', 0):.0f}"])

    from habc.experiments.rescore import RESCORE_PREFIX

    expert = {}
    for path in sorted(Path(config.run_dir).glob("**/expert.json")):
        if any(part.startswith(RESCORE_PREFIX) for part in
               path.relative_to(config.run_dir).parts):
            continue  # another block's expert: the bars are on the runs' own seeds
        result = json.loads(path.read_text())
        if result.get("controller") == "expert" and result.get("task") in final:
            expert[result["task"]] = float(result["success_rate"])
    bars = figures.success_bars(final, out / "success_bars.png", expert)
    curve_png = figures.success_curves(curves, out / "success_curves.png")
    effort_png = figures.operator_effort(effort, out / "operator_effort.png")
    expert_note = ("<p>Dashed lines: the scripted expert on the same evaluation seeds ("
                   + ", ".join(f"{t} {r:.0%}" for t, r in expert.items()) + ").</p>"
                   if expert else "")
    running = sum(r.running for r in runs)
    running_note = (f"<p>{running} of {len(runs)} runs are still running (rounds column: done "
                    "of planned); their bars, rows and effort use their latest round.</p>"
                    if running else "")
    spec_path = Path(config.run_dir) / "spec.json"
    if spec_path.exists():  # an experiment directory: its results and target tables first
        sections.append(_experiment_tables(Path(config.run_dir),
                                           json.loads(spec_path.read_text()), out))
    sections.append("<h2>Success rate and mean success length (Fig. 3)</h2>"
                    f"<img src='{bars.name}' alt='success bars'>{expert_note}{running_note}"
                    + _table(
                        ["task", "method", "seed", "rounds", "SFT (round 0)", "final",
                         "mean success length", "operator steps", "rollouts"], rows))
    sections.append(f"<h2>Success vs round</h2><img src='{curve_png.name}' alt='curves'>")
    if failures := failure_rows(final):
        sections.append(
            "<h2>Where the failures stop</h2><p>Failed evaluation trials of each method's last "
            "round, pooled over its seeds, counted by the stage of the scripted expert's plan "
            "(stage k is the k-th branch of its target chain, e.g. on pick-place 0 above the "
            "puck, 1 down onto it, 2 closing the gripper, 3 carrying it to the goal): the "
            "furthest stage each trial reached, and the stage it was in when time ran out. A "
            "trial that reached the last stage and ended in stage 0 lost the object.</p>"
            + _table(["task", "method", "seeds", "failed trials", "furthest stage reached",
                      "stage at the end"], failures))

    sft_logs = {}
    for log in sorted(Path(config.run_dir).glob("**/sft/train_log.csv")):
        data = np.loadtxt(log, delimiter=",", skiprows=1, ndmin=2)
        sft_logs[str(log.parent.parent.relative_to(config.run_dir)) or "sft"] = data[:, :2]
    if sft_logs:
        png = figures.sft_curves(sft_logs, out / "sft_curves.png")
        sections.append("<h2>SFT convergence</h2><p>Training loss of each SFT run (log scale)."
                        f"</p><img src='{png.name}' alt='sft curves'>")

    trace_parts: list[str] = []
    records_only: list[str] = []  # tasks whose runs keep no critic, rollouts or checkpoints
    for task in tasks:
        candidates = [r for r in runs if r.task == task and r.label.removesuffix(
            MULTI_TASK_SUFFIX) in ("habc", "habc_ir", "habc_cont")]
        if not candidates:
            continue
        run = candidates[0]
        if not RunCritic.kept(run.path):
            records_only.append(task)
            continue
        critic = RunCritic(run.path)
        arrays = critic.read_rollouts()
        arrays = arrays.select(arrays.task == task)
        picks = pick_episodes(arrays)
        traces = {name: critic.trace(arrays, e) for name, e in picks.items()}
        slug = task.replace("-", "_")
        fig4 = figures.viability_traces(traces, out / f"viability_{slug}.png")
        name = next(iter(picks))
        fig5 = figures.transition_signals(traces[name], f"{task}, {run.label}: {name}",
                                          out / f"signals_{slug}.png")
        trace_parts.append(f"<h3>{html.escape(task)} ({run.label}, critic after the last "
                           f"round)</h3><img src='{fig4.name}' alt='viability'>"
                           f"<img src='{fig5.name}' alt='signals'>")
    if records_only:
        trace_parts.append(f"<p>Not drawn for {html.escape(', '.join(records_only))}: the runs "
                           "keep no critic or rollouts (records exported with <code>habc "
                           "experiment --export</code> leave out checkpoints and episodes).</p>")
    if trace_parts:
        sections.append("<h2>Viability along episodes (Fig. 4) and per-transition A_v, A_e, "
                        "gate, weight (Fig. 5)</h2>" + "".join(trace_parts))

    sections.append("<h2>Weight statistics (App. G)</h2><p>Last round's means over the "
                    "learner's batches: the actor batch's shares of demo and operator "
                    "frames, pre-normalisation weight on successful autonomous "
                    "transitions and on human windows, fraction of zero weights, the effective "
                    "sample size of the normalised weights as a fraction of the batch's valid "
                    "samples (1: every sample counts the same, as in plain BC), recap's pass "
                    "rate per 100 rollout samples, viability calibration (Brier, ECE) on the "
                    "training batches and, after the round, Brier and Brier skill on held-out "
                    "episodes the critic never trained on (skill 0: no better than predicting "
                    "the training success rate everywhere; a training Brier far below the "
                    "held-out one means the critic memorised its episodes), and the "
                    "efficiency head's mean error |e(o) - true steps to success| on successful "
                    "frames, in steps. The last column counts the held-out episodes behind the "
                    "held-out scores (successes in parentheses): with a few episodes of one "
                    "outcome they are noisy.</p>" + _table(
                        ["task", "method", "seed", "demo share", "operator share",
                         "w~ success autonomous", "w~ human windows",
                         "zero-weight fraction", "ESS / n", "recap pass / 100", "Brier", "ECE",
                         "held-out Brier", "held-out skill", "|e - steps to success|",
                         "held-out episodes (successes)"],
                        weight_rows))
    if progress_rows:
        sections.append("<h2>Progress model (SPEC §8)</h2><p>The stage-aware progress model of "
                        "the runs that weight by it: mean squared error of its progress "
                        "estimate against ground-truth progress on the held-out successful "
                        "rollouts after each round, and on its own training frames after the "
                        "last round.</p>" + _table(
                            ["task", "method", "seed", "held-out MSE by round",
                             "training MSE", "held-out frames"], progress_rows))
    sections.append("<h2>Operator effort</h2><p>Operator (human) steps used over all rounds vs "
                    f"the final success rate.</p><img src='{effort_png.name}' alt='effort'>")

    if config.animations:
        gifs, no_policies = [], []
        for task in track(tasks, description="animations"):
            task_runs = [r for r in runs if r.task == task]
            best = max(task_runs, key=lambda r: (
                r.label.removesuffix(MULTI_TASK_SUFFIX) in ("habc_ir", "habc_cont", "habc"),
                len(r.rounds)))
            if not (best.path / "policies" / "v000").is_dir():
                no_policies.append(task)
                continue
            slug = task.replace("-", "_")
            sft_gif = _rollout_gif(best.path / "policies" / "v000", task,
                                   out / f"sft_{slug}.gif")
            last_v = len(best.rounds) - 1
            final_gif = _rollout_gif(best.path / "policies" / f"v{last_v:03d}", task,
                                     out / f"final_{slug}.gif")
            gifs.append(f"<h3>{html.escape(task)}</h3><figure><img src='{sft_gif.name}' "
                        f"alt='sft'><figcaption>SFT</figcaption></figure><figure><img "
                        f"src='{final_gif.name}' alt='final'><figcaption>{best.label} after "
                        f"round {last_v}</figcaption></figure>")
        if no_policies:
            gifs.append(f"<p>Not rendered for {html.escape(', '.join(no_policies))}: the runs "
                        "keep no policy checkpoints (exported records leave them out).</p>")
        sections.append("<h2>Rollouts: SFT vs final (first evaluation seed)</h2>" + "".join(gifs))

    trials = " or ".join(str(n) for n in sorted({r["eval"]["n_trials"] for run in runs
                                                 for r in run.rounds}))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>habc report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 7px}}th{{background:#f3f3f3}}
img{{max-width:100%}}figure{{display:inline-block;margin:0 1em}}</style>
<script>window.addEventListener("load", () => {{
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0);
  document.body.dataset.imagesLoaded = document.images.length - broken.length;
  document.body.dataset.imagesBroken = broken.length;
}});</script></head>
<body><h1>habc report</h1><p>Run directory: <code>{html.escape(str(config.run_dir))}</code>;
{len(runs)} online runs over {len(tasks)} task(s). Success rates are over {trials} evaluation seeds
(disjoint from training seeds) with 95% Wilson intervals.</p>
{"".join(sections)}</body></html>
"""
    index = out / "index.html"
    index.write_text(page)
    if config.browser_check:
        from habc.report.browser import check_in_chromium, screenshot_in_chromium

        loaded, broken = check_in_chromium(index)
        if broken or not loaded:
            raise HabcError(f"{index}: {broken} of {loaded + broken} images broken in Chromium")
        screenshot_in_chromium(index, out / "screenshot.png")
    return index
