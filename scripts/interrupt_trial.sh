#!/usr/bin/env bash
# What a Ctrl-C at a random moment leaves behind (issue 11's goal), for
# `murmur sim` on the default config: one run left alone, then TRIALS runs
# each sent SIGINT at a random time in (1 s, wall time of the full run - 1 s)
# and resumed with --resume. Prints, per trial, when the signal came, the exit
# code, metrics.jsonl lines at the interrupt and after the resume, against the
# uninterrupted run, and the final accuracy and bytes of both.
#   scripts/interrupt_trial.sh [TRIALS] [CONFIG]     (build/murmur must exist)
set -euo pipefail
set -m  # job control: a background job of a script ignores SIGINT otherwise (as murmur then does too)
cd "$(dirname "$0")/.."
trials=${1:-5}
config=${2:-configs/fmnist-gossip.toml}
out=$(mktemp -d /tmp/murmur-interrupt.XXXXXX)
field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
start=$(date +%s.%N)
build/murmur sim "$config" --quiet --out "$out/whole" >/dev/null
whole=$(echo "$(date +%s.%N) - $start" | bc)
lines=$(wc -l <"$out/whole/metrics.jsonl")
echo "uninterrupted: $lines metrics lines, accuracy $(field "$out/whole/summary.json" final_test_accuracy), bytes $(field "$out/whole/summary.json" bytes_sent_total), ${whole} s"
for t in $(seq 1 "$trials"); do
  at=$(/usr/bin/python3 -c "import random; print(round(random.uniform(1, $whole - 1), 2))")
  dir="$out/trial$t"
  build/murmur sim "$config" --quiet --out "$dir" >/dev/null 2>&1 &
  pid=$!
  sleep "$at"
  kill -INT "$pid" 2>/dev/null || true
  rc=0; wait "$pid" || rc=$?
  cut=$(wc -l <"$dir/metrics.jsonl" 2>/dev/null || echo 0)
  interrupted=$(field "$dir/summary.json" interrupted 2>/dev/null || echo "no summary")
  build/murmur sim --resume "$dir" --quiet >/dev/null
  echo "trial $t: SIGINT at ${at} s -> rc $rc, interrupted=$interrupted, $cut lines; resumed: $(wc -l <"$dir/metrics.jsonl") lines (whole run $lines), accuracy $(field "$dir/summary.json" final_test_accuracy), bytes $(field "$dir/summary.json" bytes_sent_total)"
done
rm -rf "$out"
