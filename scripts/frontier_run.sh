#!/usr/bin/env bash
# One measured run for docs/gossip_schedule.md's frontier tables: runs
# `murmur sim CONFIG --set ...` into /tmp/frontier/NAME and prints one line:
# NAME, final accuracy, compression_vs_allreduce, final consensus distance,
# the largest consensus distance of curve.tsv, the final train loss.
# Usage: scripts/frontier_run.sh NAME CONFIG [--set KEY=VALUE ...]
set -euo pipefail
name=$1; config=$2; shift 2
out=${FRONTIER_OUT:-/tmp/frontier}/$name
bin=${MURMUR_BIN:-build/murmur}  # a copy of the binary, so a rebuild cannot change a run under way
mkdir -p "$(dirname "$out")"
"$bin" sim "$config" --quiet --set verify.rate=0 "$@" --out "$out" > "$out.log" 2>&1
python3 - "$out" "$name" <<'PY'
import json, sys
out, name = sys.argv[1], sys.argv[2]
s = json.load(open(out + "/summary.json"))
rows = [l.split() for l in open(out + "/curve.tsv") if not l.startswith("#")]
peak = max(float(r[5]) for r in rows)
print(f"{name}\tacc {100*s['final_test_accuracy']:.2f}\tratio {s['compression_vs_allreduce']:.1f}x"
      f"\tconsensus {s['consensus_distance']:.3g}\tpeak_consensus {peak:.3g}\ttrain_loss {float(rows[-1][4]):.4f}")
PY
