#!/bin/bash
# Build a directory that pools two experiment record directories' seeds (symlinks), as if one
# directory had been run with --seeds for each: the tables then pool every task-seed pair.
# The two specs must agree on everything but their names, descriptions, seeds and methods, and
# the second one's methods must be among the first one's: the pooled spec has the second one's
# methods, so the tables pool the methods both ran.
# Usage (docs/benchmarks.md, benchmark-100-ema-noisy-rep and benchmark-100-ema-rep):
#   bash docs/ab/pool-seeds.sh docs/results/benchmark-100-ema-noisy \
#       docs/results/benchmark-100-ema-noisy-rep /tmp/noisy-pooled
#   .venv/bin/habc experiment --config-file /tmp/noisy-pooled/spec.json --out /tmp/noisy-pooled --table-only
#   .venv/bin/habc experiment --config-file /tmp/noisy-pooled/spec.json --out /tmp/noisy-pooled \
#       --rescore 100000 --rescore-trials 100 --table-only
set -e
A=$1; B=$2; OUT=$3
rm -rf "$OUT"; mkdir -p "$OUT"
"$(dirname "$0")/../../.venv/bin/python" - "$A" "$B" "$OUT" <<'PY'
import json, sys
from habc.experiments.experiment import ExperimentSpec
a, b, out = sys.argv[1:]
def spec(directory):  # with the defaults of keys added after the directory was written
    return ExperimentSpec.from_json(json.load(open(f"{directory}/spec.json"))).to_json()
sa, sb = spec(a), spec(b)
own = ("seeds", "name", "description", "step1_methods", "step2_methods", "step2_rounds")
rest = lambda s: {k: v for k, v in s.items() if k not in own}
assert rest(sa) == rest(sb), "the two specs differ beyond seeds and methods"
for step in ("step1_methods", "step2_methods"):
    assert set(sb[step]) <= set(sa[step]), f"{b} has {step} that {a} did not run"
assert not sb["step2_methods"] or sb["step2_rounds"] == sa["step2_rounds"]
json.dump(sb | {"name": "pooled", "seeds": sorted(sa["seeds"] + sb["seeds"])},
          open(f"{out}/spec.json", "w"), indent=2)
PY
for dir in "$A" "$B"; do
  for cell in "$dir"/*/seed_* "$dir"/rescore-100000/*/seed_*; do
    rel=${cell#$dir/}; mkdir -p "$OUT/$(dirname "$rel")"; ln -sT "$(realpath "$cell")" "$OUT/$rel"
  done
done
for f in "$A"/*/expert.json "$A"/rescore-100000/*/expert.json "$A"/rescore-100000/block.json; do
  rel=${f#$A/}; mkdir -p "$OUT/$(dirname "$rel")"; cp "$f" "$OUT/$rel"
done
