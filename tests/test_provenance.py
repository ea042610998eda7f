"""An experiment records the code and machine its invocations ran on."""

import json

import torch

from habc.experiments.provenance import (
    FINGERPRINT_KEYS,
    PROVENANCE_FILE,
    machine_fingerprint,
    machines_line,
    record_invocation,
)


def test_fingerprint_names_the_versions_and_kernels_of_this_process():
    fingerprint = machine_fingerprint()
    assert set(FINGERPRINT_KEYS) <= set(fingerprint)
    assert fingerprint["packages"]["torch"] == torch.__version__
    assert fingerprint["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_machines_line_counts_invocations_and_distinct_fingerprints(tmp_path):
    assert machines_line(tmp_path) is None  # a directory from before the record existed
    record_invocation(tmp_path, 2)
    record_invocation(tmp_path, 1)  # same process: same fingerprint
    assert machines_line(tmp_path).startswith(
        "Provenance: 2 invocation(s) on 1 distinct code and machine fingerprint(s)")
    path = tmp_path / PROVENANCE_FILE
    other = json.loads(path.read_text().splitlines()[0]) | {
        "cpu_capability": "AVX2", "commit": "abc", "cpu": "Other CPU"}
    with path.open("a") as f:  # a third invocation on another machine, with another commit
        f.write(json.dumps(other) + "\n")
    line = machines_line(tmp_path)
    assert line.startswith("Provenance: 3 invocation(s) on 2 distinct")
    assert "the last: commit abc, torch " in line and "Other CPU (AVX2 kernels)" in line
    assert json.loads(path.read_text().splitlines()[1])["jobs"] == 1
