#!/bin/sh
# ResNet-9 against the CNN preset on Fashion-MNIST, 4 simulated peers each
# (configs/fmnist-resnet9.toml, configs/fmnist-cnn.toml): prints final test
# accuracy and wall time for both. A benchmark, not a test: about
# half an hour on 2 idle cores. Extra arguments go to both runs, e.g.
#   scripts/resnet9_fmnist.sh --set train.epochs=2
# Needs build/murmur (cmake --build build --target murmur).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
murmur="$root/build/murmur"
[ -x "$murmur" ] || { echo "resnet9_fmnist.sh: $murmur not built" >&2; exit 1; }
out=${OUT:-"$root/build/resnet9-fmnist"}
mkdir -p "$out"
for cfg in fmnist-resnet9 fmnist-cnn; do
  start=$(date +%s)
  "$murmur" sim "$root/configs/$cfg.toml" --out "$out/$cfg" --quiet "$@" >"$out/$cfg.log" 2>&1 ||
    { echo "$cfg failed, see $out/$cfg.log" >&2; tail -5 "$out/$cfg.log" >&2; exit 1; }
  end=$(date +%s)
  acc=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); \
print('%.4f (mean of the peers), %.4f (the final model: mean of their parameters)' % \
(s['final_test_accuracy'], s['final_model']['test_accuracy']))" "$out/$cfg/summary.json")
  echo "$cfg: final test accuracy $acc, wall time $((end - start)) s, load average $(cut -d' ' -f1-3 /proc/loadavg) (run dir $out/$cfg)"
done
