#!/bin/bash
# The table of docs/pipeline.md (Placement): murmur sim on
# configs/fmnist-pipeline-wan.toml with pipeline.placement = index and auto,
# both schedules, and the same with node 3 on a home link; predicted and
# simulated makespan of one batch (virtual time: the same on any machine).
# Usage: scripts/pipeline_placement.sh [build/murmur] [out dir]
set -euo pipefail
murmur=${1:-build/murmur}
out=${2:-runs/pipeline-placement}
config=configs/fmnist-pipeline-wan.toml
mkdir -p "$out"
printf '| links | schedule | placement | cut | nodes | predicted ms | simulated ms | pred/sim | test acc |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for links in "datacenter:1,office:2,datacenter:1" "office:1,datacenter:1,office:1,home:1"; do
  for schedule in 1f1b gpipe; do
    for placement in index auto; do
      dir="$out/${links//[:,]/-}-$schedule-$placement"
      "$murmur" sim "$config" --quiet --out "$dir" --set "sim.link_classes=$links" \
        --set "pipeline.schedule=$schedule" --set "pipeline.placement=$placement" > "$dir.log" 2>&1
      python3 - "$dir/summary.json" "$links" "$schedule" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); p = s["pipeline"]
cut = ",".join(str(q["layers"][0]) for q in p["per_stage"][1:])
nodes = ",".join(str(q["machine"]) for q in p["per_stage"])
print(f"| {sys.argv[2]} | {sys.argv[3]} | {p['placement']} | {cut} | {nodes} | {1e3 * p['predicted_batch_s']:.2f} | "
      f"{1e3 * p['simulated_batch_s']:.2f} | {p['predicted_batch_s'] / p['simulated_batch_s']:.3f} | "
      f"{s['final_test_accuracy']:.4f} |")
PY
    done
  done
done
