"""The evaluation's one-line account of where its failed trials stopped."""

from habc.evaluation.evaluate import format_failures


def result(n_unstable: int | None) -> dict:
    counts = {"furthest": [1, 0, 2], "last": [2, 0, 1]}
    r = {"n_trials": 5, "n_successes": 2, "num_stages": 3, "failures_by_stage": counts}
    return r if n_unstable is None else r | {"n_unstable": n_unstable}


def test_failures_line_counts_stages_and_names_unstable_trials():
    line = ("3 failed trials by the scripted expert's stage (0-2): furthest reached 0: 1 1: 0 "
            "2: 2; at the end 0: 2 1: 0 2: 1")
    assert format_failures(result(0)) == line
    assert format_failures(result(None)) == line  # a result written before the count existed
    assert format_failures(result(1)) == line + "; 1 ended when the physics went unstable"
    assert format_failures(result(0) | {"n_successes": 5}) is None
