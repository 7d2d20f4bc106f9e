#!/usr/bin/env bash
# The seeds' comparison of data, model, pipeline and hybrid parallelism on
# the CNN (configs/fmnist-cnn.toml), all on the same simulated cluster: peers
# of 50 GFLOP/s joined by 1 Gbit/s links with 0.2 ms latency, batch 64 per
# replica, EPOCHS epochs (default 1) over Fashion-MNIST.
#   data parallel: 1, 2, 4, 8 peers (threshold gossip, grid, ring)
#   model parallel: the CNN cut into 2 and 4 stages, one micro-batch
#   pipeline: 2 and 4 stages, 8 micro-batches, 1F1B
#   hybrid: 2 x 2, 4 x 2 and 2 x 4 (replicas x stages)
# Speed-up is training samples per virtual second against the 1-peer run.
# Writes OUT/table.md, OUT/table.tsv and OUT/speedup.png (gnuplot).
# About 10 minutes per epoch on one core. Usage: scripts/parallelism_table.sh [OUT_DIR] [EPOCHS]
set -euo pipefail
out=${1:-runs/parallelism}
epochs=${2:-1}
mkdir -p "$out"
cluster=(--set sim.gflops=50 --set sim.bandwidth_mbps=1000 --set sim.latency_ms=0.2 --set train.batch=64
         --set train.epochs="$epochs" --set sim.speed_spread=0)

run() {  # name method peers overrides...
  local name=$1 method=$2 peers=$3
  shift 3
  build/murmur sim configs/fmnist-cnn.toml --quiet --out "$out/$name" "${cluster[@]}" "$@" > "$out/$name.log"
  local s="$out/$name/summary.json"
  field() { grep -o "\"$1\": [-0-9.e+]*" "$s" | head -1 | awk '{print $2}'; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$method" "$peers" "$name" "$(field samples_per_s)" \
    "$(field final_test_accuracy)" "$(field virtual_time_s)" "$(field bytes_sent_total)" >> "$out/table.tsv"
  echo "$name: $(tail -n +1 "$out/$name.log" | grep -m1 'final test accuracy')"
}

printf 'method\tpeers\trun\tsamples_per_s\taccuracy\tvirtual_s\tbytes_sent\n' > "$out/table.tsv"
for n in 1 2 4 8; do run "dp-$n" data-parallel "$n" --set sim.peers="$n"; done
for s in 2 4; do run "mp-$s" model-parallel "$s" --set pipeline.stages="$s" --set pipeline.microbatches=1; done
for s in 2 4; do run "pp-$s" pipeline "$s" --set pipeline.stages="$s" --set pipeline.microbatches=8; done
run hybrid-2x2 hybrid 4 --set pipeline.replicas=2 --set pipeline.stages=2 --set pipeline.microbatches=8
run hybrid-4x2 hybrid 8 --set pipeline.replicas=4 --set pipeline.stages=2 --set pipeline.microbatches=8
run hybrid-2x4 hybrid 8 --set pipeline.replicas=2 --set pipeline.stages=4 --set pipeline.microbatches=8

base=$(awk -F'\t' '$3 == "dp-1" {print $4}' "$out/table.tsv")
{
  echo "| method | peers | run | samples/s (virtual) | speed-up vs 1 peer | test accuracy | virtual time (s) | bytes sent (MB) |"
  echo "|---|---|---|---|---|---|---|---|"
  awk -F'\t' -v base="$base" 'NR > 1 {printf "| %s | %s | %s | %.0f | %.2fx | %.2f %% | %.1f | %.1f |\n",
    $1, $2, $3, $4, $4 / base, 100 * $5, $6, $7 / 1e6}' "$out/table.tsv"
} > "$out/table.md"
awk -F'\t' -v base="$base" 'NR > 1 {print $1 "\t" $2 "\t" $4 / base}' "$out/table.tsv" > "$out/speedup.tsv"
if command -v gnuplot > /dev/null; then
  gnuplot <<GP
set terminal png size 800,500 noenhanced
set output '$out/speedup.png'
set title 'CNN on Fashion-MNIST, simulated cluster: speed-up against peers'
set xlabel 'peers'; set ylabel 'training throughput / one peer'; set grid; set key top left
set logscale x 2; set xrange [0.8:10]; set yrange [0:*]
plot '$out/speedup.tsv' using 2:(strcol(1) eq 'data-parallel' ? \$3 : 1/0) with linespoints title 'data parallel', \
     '' using 2:(strcol(1) eq 'model-parallel' ? \$3 : 1/0) with linespoints title 'model parallel (M = 1)', \
     '' using 2:(strcol(1) eq 'pipeline' ? \$3 : 1/0) with linespoints title 'pipeline (M = 8, 1F1B)', \
     '' using 2:(strcol(1) eq 'hybrid' ? \$3 : 1/0) with points pointsize 2 title 'hybrid (replicas x stages)', \
     x with lines dashtype 2 title 'linear'
GP
fi
cat "$out/table.md"
