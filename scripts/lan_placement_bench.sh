#!/bin/bash
# Time per batch of a 2-process LAN pipeline on loopback, pipeline.placement
# = index against auto, with peer.index 0 declared 4x slower
# (configs/fmnist-pipeline-lan-slow.toml) and made that slow for real: a
# duty cycle of SIGCONT for ON ms, SIGSTOP for (FACTOR - 1) x ON ms, on its
# whole process, from start to exit (the script reports the fraction of wall
# time it was stopped). Runs alternate index, auto, index, auto, ...
# Prints per run: placement, split, peer.index of stages 0..1, predicted
# ms/batch (auto and index layouts), measured ms/batch (summary.json
# batch_s of the last stage: its steps 1..N), wall s, stopped fraction,
# load average.
# Usage: scripts/lan_placement_bench.sh [build/murmur] [out dir] [repeats] [factor] [on_ms] [--set KEY=VALUE ...]
set -euo pipefail
murmur=${1:-build/murmur}
out=${2:-runs/lan-placement}
reps=${3:-2}
factor=${4:-4}
on_ms=${5:-2}
shift $(( $# < 5 ? $# : 5 ))
extra=("$@")  # more --set overrides for both placements
config=configs/fmnist-pipeline-lan-slow.toml
rm -rf "$out"
mkdir -p "$out"
base=$((21000 + RANDOM % 9000))
: > "$out/authorized_peers"
for i in 0 1; do
  "$murmur" keygen --out "$out/keys$i" > /dev/null
  echo "$(head -c 40 "$out/keys$i/peer.pub") tcp://127.0.0.1:$((base + i)) host-$i" >> "$out/authorized_peers"
done

# Duty cycle of a process: CONT on_ms, STOP (factor-1) x on_ms, until it exits.
slow_down() {
  python3 - "$1" "$factor" "$on_ms" "$2" <<'PY'
import os, signal, sys, time
pid, factor, on = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]) / 1e3
off, stopped, t0 = on * (factor - 1), 0.0, time.monotonic()
try:
    while True:
        os.kill(pid, signal.SIGCONT); time.sleep(on)
        s = time.monotonic(); os.kill(pid, signal.SIGSTOP); time.sleep(off)
        os.kill(pid, signal.SIGCONT); stopped += time.monotonic() - s
except ProcessLookupError:
    pass
open(sys.argv[4], "w").write(f"{stopped / max(1e-9, time.monotonic() - t0):.3f}\n")
PY
}

printf '| run | placement | split | stages on peer.index | predicted ms (index layout) | measured ms/batch | wall s | stopped | load |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for rep in $(seq 1 "$reps"); do
  for placement in index auto; do
    run="$out/$placement-$rep"
    pids=()
    for i in 0 1; do
      "$murmur" peer --config "$config" --listen "tcp://127.0.0.1:$((base + i))" --out "$run/peer$i" --quiet \
        --set peer.index=$i --set "peer.keys=$out/keys$i" --set "peer.authorized_peers=$out/authorized_peers" \
        --set "pipeline.placement=$placement" "${extra[@]}" > "$run.peer$i.log" 2>&1 &
      pids+=($!)
    done
    slow_down "${pids[0]}" "$run.stopped" &
    slower=$!
    t0=$(date +%s.%N)
    for p in "${pids[@]}"; do wait "$p"; done
    wait "$slower"
    wall=$(echo "$(date +%s.%N) - $t0" | bc)
    python3 - "$run" "$rep" "$wall" "$(cat "$run.stopped")" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
run, rep, wall, stopped, load = sys.argv[1:]
s = [json.load(open(f"{run}/peer{i}/summary.json")) for i in (0, 1)]
last = next(x for x in s if x["stage"] == 1)
m = ",".join(str(v) for v in s[0]["stage_machines"][0])
print(f"| {rep} | {s[0]['placement']} | {s[0]['split']} | {m} | {1e3 * s[0]['predicted_batch_s']:.2f} "
      f"({1e3 * s[0]['predicted_index_batch_s']:.2f}) | {1e3 * last['batch_s']:.1f} | {float(wall):.1f} | {stopped} | {load} |")
PY
  done
done
