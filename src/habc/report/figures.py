"""Matplotlib figures of the report (written as PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt

from habc.episodes.episode import Controller
from habc.report.traces import EpisodeTrace

if TYPE_CHECKING:
    from habc.experiments.experiment import Gap

METHOD_ORDER = ("sft", "dagger", "dagger_cont", "recap", "hiors", "rabc", "habc_v", "habc",
                "habc_cont", "habc_ir")


def _order(methods: list[str]) -> list[str]:
    known = [m for m in METHOD_ORDER if m in methods]
    return known + sorted(m for m in methods if m not in known)


def _save(fig: Any, path: Path, bottom: float = 0.0) -> Path:
    """Lay out (leaving ``bottom`` of the height free for a figure legend), write, close."""
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def success_bars(final: dict[str, dict[str, list[dict[str, Any]]]], path: Path,
                 expert: dict[str, float] | None = None) -> Path:
    """Fig. 3: final success (mean over seeds, 95% CI of the pooled trials) and success length.

    ``final[task][method]`` is a list (one per seed) of evaluation dicts; ``expert[task]``, when
    given, is the scripted expert's rate, drawn as a dashed line over the task's bars.
    """
    tasks = sorted(final)
    methods = _order(sorted({m for t in final.values() for m in t}))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        xs, ys, lo, hi, lengths = [], [], [], [], []
        for j, task in enumerate(tasks):
            evals = final[task].get(method)
            if not evals:
                continue
            xs.append(j + (i - (len(methods) - 1) / 2) * width)
            rate = float(np.mean([e["success_rate"] for e in evals]))
            ys.append(rate)
            lo.append(rate - float(np.mean([e["ci95_low"] for e in evals])))
            hi.append(float(np.mean([e["ci95_high"] for e in evals])) - rate)
            msl = [e["mean_success_length"] for e in evals if e["mean_success_length"]]
            lengths.append(float(np.mean(msl)) if msl else np.nan)
        axes[0].bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=method)
        axes[1].bar(xs, lengths, width, label=method)
    for ax, title in zip(axes, ("success rate (95% CI)", "mean success length (steps)"),
                         strict=True):
        ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
        ax.set_title(title)
    drawn = [(j, expert[task]) for j, task in enumerate(tasks) if expert and task in expert]
    for i, (j, rate) in enumerate(drawn):
        axes[0].hlines(rate, j - 0.42, j + 0.42, colors="k", linestyles="--",
                       label="scripted expert" if i == 0 else None)
    axes[0].set_ylim(0, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()  # below the axes: no bar hidden
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    return _save(fig, path, bottom=0.08)


def success_curves(curves: dict[str, dict[str, list[list[float]]]], path: Path) -> Path:
    """Success vs round per method; ``curves[task][method]`` is a list of per-seed curves."""
    tasks = sorted(curves)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for method in _order(list(curves[task])):
            runs = curves[task][method]
            n = max(len(c) for c in runs)
            grid = np.full((len(runs), n), np.nan)
            for i, c in enumerate(runs):
                grid[i, : len(c)] = c
            mean = np.nanmean(grid, axis=0)
            ax.plot(range(n), mean, marker="o", label=method)
            if len(runs) > 1:
                ax.fill_between(range(n), np.nanmin(grid, 0), np.nanmax(grid, 0), alpha=0.15)
        ax.set_title(task)
        ax.set_xlabel("round (0 = SFT)")
        ax.set_ylabel("success rate")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _shade_human(ax: Any, controller: npt.NDArray[np.int8]) -> None:
    human = (controller == Controller.HUMAN).astype(np.int8)
    edges = np.diff(np.concatenate([[0], human, [0]]))
    for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        ax.axvspan(s, e, color="tab:orange", alpha=0.2, lw=0)


def viability_traces(traces: dict[str, EpisodeTrace], path: Path) -> Path:
    """Fig. 4: P(success) = sigmoid(v(o_t)) along episodes, human spans shaded."""
    fig, axes = plt.subplots(len(traces), 1, figsize=(9, 2.1 * len(traces)), squeeze=False)
    for ax, (name, tr) in zip(axes[:, 0], traces.items(), strict=True):
        _shade_human(ax, tr.controller)
        ax.plot(tr.viability, color="tab:blue")
        ax.set_ylim(-0.02, 1.02)
        outcome = "success" if tr.success else "failure"
        ax.set_title(f"{name} (seed {tr.seed}, {outcome}); shaded = human control", fontsize=9)
        ax.set_ylabel("viability p")
    axes[-1, 0].set_xlabel("step")
    return _save(fig, path)


def transition_signals(trace: EpisodeTrace, title: str, path: Path) -> Path:
    """Fig. 5: A_v, A_e, gate g and weight w~ along one rollout, human spans shaded."""
    fig, axes = plt.subplots(4, 1, figsize=(9, 6.4), sharex=True)
    series = (("A_v (logit)", trace.a_v), ("A_e (steps)", trace.a_e), ("gate g", trace.gate),
              ("weight w~", trace.weight))
    for ax, (label, values) in zip(axes, series, strict=True):
        _shade_human(ax, trace.controller)
        ax.plot(values, lw=0.9)
        ax.axhline(0 if label != "weight w~" else 1, color="grey", lw=0.5)
        ax.set_ylabel(label, fontsize=8)
    axes[0].set_title(title, fontsize=9)
    axes[-1].set_xlabel("step")
    return _save(fig, path)


def sft_curves(logs: dict[str, npt.NDArray[np.float64]], path: Path) -> Path:
    """SFT training loss vs step (convergence check); ``logs[label]`` is (n, 2) step, loss."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, log in sorted(logs.items()):
        ax.plot(log[:, 0], log[:, 1], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("SFT step")
    ax.set_ylabel("flow-matching loss")
    ax.legend(fontsize=7)
    return _save(fig, path)


def operator_effort(effort: dict[str, dict[str, tuple[float, float]]], path: Path) -> Path:
    """Operator steps used vs final success, per method; ``effort[task][method]``."""
    tasks = sorted(effort)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for method in _order(list(effort[task])):
            steps, success = effort[task][method]
            ax.scatter(steps, success, label=method)
        ax.set_title(task)
        ax.set_xlabel("operator steps (all rounds)")
        ax.set_ylabel("final success")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
    return _save(fig, path)


def habc_gaps(blocks: dict[str, list[Gap]], path: Path) -> Path:
    """HABC's final success minus each compared run's, in points, with 95% intervals.

    ``blocks[label]`` holds one block's gaps (``ResultTables.gaps``: per task, then 'all
    tasks'); each compared run gets a panel, each task a row, each block a marker. An interval
    wholly right of 0 is a win.
    """
    others = list(dict.fromkeys(g.other for gaps in blocks.values() for g in gaps))
    tasks = list(dict.fromkeys(g.task for gaps in blocks.values() for g in gaps))
    fig, axes = plt.subplots(1, len(others), figsize=(max(4.2 * len(others), 8.0),
                                                      0.9 + 0.5 * len(tasks)),
                             squeeze=False, sharey=True)
    step = 0.5 / max(len(blocks), 1)
    for ax, other in zip(axes[0], others, strict=True):
        for b, (label, gaps) in enumerate(blocks.items()):
            mine = [g for g in gaps if g.other == other]
            y = [tasks.index(g.task) + (b - (len(blocks) - 1) / 2) * step for g in mine]
            x = 100 * np.array([g.difference for g in mine])
            bounds = 100 * np.array([g.interval for g in mine]).reshape(-1, 2)  # (gaps, 2)
            err = [x - bounds[:, 0], bounds[:, 1] - x]
            ax.errorbar(x, y, xerr=err, fmt="o", ms=4, capsize=2, label=label,
                        color=f"C{b}")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"HABC - {other}", fontsize=9)
        ax.set_xlabel("points (95% CI)")
        ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
    axes[0, 0].invert_yaxis()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    return _save(fig, path, bottom=0.35 / (0.9 + 0.5 * len(tasks)))
