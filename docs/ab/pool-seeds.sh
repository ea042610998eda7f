#!/bin/bash
# Build a directory that pools two experiment record directories' seeds (symlinks), as if one
# directory had been run with --seeds for each: the tables then pool every task-seed pair.
# The two specs must agree on everything but their names, descriptions and seeds.
# Usage (docs/benchmarks.md, benchmark-100-ema-noisy-rep):
#   bash docs/ab/pool-seeds.sh docs/results/benchmark-100-ema-noisy \
#       docs/results/benchmark-100-ema-noisy-rep /tmp/noisy-pooled
#   .venv/bin/habc experiment --config-file /tmp/noisy-pooled/spec.json --out /tmp/noisy-pooled --table-only
#   .venv/bin/habc experiment --config-file /tmp/noisy-pooled/spec.json --out /tmp/noisy-pooled \
#       --rescore 100000 --rescore-trials 100 --table-only
set -e
A=$1; B=$2; OUT=$3
rm -rf "$OUT"; mkdir -p "$OUT"
python3 - "$A" "$B" "$OUT" <<'PY'
import json, sys
a, b, out = sys.argv[1:]
sa, sb = json.load(open(f"{a}/spec.json")), json.load(open(f"{b}/spec.json"))
rest = lambda s: {k: v for k, v in s.items() if k not in ("seeds", "name", "description")}
assert rest(sa) == rest(sb), "the two specs differ beyond seeds"
json.dump(sa | {"name": "pooled", "seeds": sorted(sa["seeds"] + sb["seeds"])},
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
