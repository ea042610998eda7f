"""Where and with what an experiment's jobs ran: one JSON line per invocation.

The jobs are bitwise deterministic on one machine and software stack, but not across CPUs: the
math kernels pick their instruction set (AVX2, AVX-512) at run time, and a different one rounds
floats differently. Closed-loop rollouts amplify such differences into different episodes, so a
rerun elsewhere is a replicate, not a copy. ``OUT/provenance.jsonl`` records what a rerun would
have to match: the code's commit, the package versions, the CPU and its kernels' instruction set.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PROVENANCE_FILE = "provenance.jsonl"

FINGERPRINT_KEYS = ("commit", "python", "packages", "cpu", "cpu_capability")
"""The fields two invocations must share for one to reproduce the other bitwise."""

PACKAGES = ("habc", "torch", "numpy", "mujoco", "metaworld", "gymnasium")
"""The packages whose versions change the numbers."""


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what ``platform`` knows)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def source_commit() -> str | None:
    """The git commit of the checkout that holds this code (``+dirty`` with local changes).

    None when the code is not run from a git checkout (an installed copy, say).
    """
    root = Path(__file__).resolve().parents[3]  # src/habc/experiments/ -> the checkout
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def machine_fingerprint() -> dict[str, Any]:
    """What the numbers depend on besides the spec: code, package versions, CPU and kernels."""
    return {
        "commit": source_commit(),
        "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
    }


def record_invocation(out: Path, jobs: int) -> dict[str, Any]:
    """Append this invocation (time, command line, jobs, fingerprint) to ``out``'s record."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv, "jobs": jobs,
             **machine_fingerprint()}
    with (out / PROVENANCE_FILE).open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return entry


def machines_line(out: Path) -> str | None:
    """One line on the invocations recorded in ``out``; None if none is.

    It says how many there were, on how many distinct code and machine fingerprints (a rerun
    reproduces bitwise only on the same one), and names the last.
    """
    path = out / PROVENANCE_FILE
    if not path.exists():
        return None
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    distinct = {json.dumps([e.get(k) for k in FINGERPRINT_KEYS]) for e in entries}
    last = entries[-1]
    return (f"Provenance: {len(entries)} invocation(s) on {len(distinct)} distinct code and "
            f"machine fingerprint(s); the last: commit {last['commit']}, torch "
            f"{last['packages']['torch']}, {last['cpu']} ({last['cpu_capability']} kernels). "
            f"See {PROVENANCE_FILE}.")
