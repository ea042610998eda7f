"""Pooling a multi-task policy's per-task evaluations into one result."""

import pytest

from habc.evaluation.evaluate import pool_results
from habc.evaluation.stats import wilson_interval


def result(task: str, outcomes: list[tuple[bool, int]]) -> dict:
    return {"task": task, "trials": [{"success": s, "length": n} for s, n in outcomes]}


def test_pooled_rate_interval_and_length_are_over_all_trials():
    pooled = pool_results([result("reach", [(True, 10), (True, 20), (False, 500)]),
                           result("push", [(True, 60), (False, 500)])])
    # 3 successes in 5 trials; the mean success length is (10 + 20 + 60) / 3 = 30
    assert pooled["task"] == "reach+push"
    assert (pooled["n_trials"], pooled["n_successes"]) == (5, 3)
    assert pooled["success_rate"] == pytest.approx(0.6)
    assert (pooled["ci95_low"], pooled["ci95_high"]) == wilson_interval(3, 5)
    assert pooled["mean_success_length"] == pytest.approx(30.0)
    assert pool_results([result("push", [(False, 500)])])["mean_success_length"] is None
