#!/usr/bin/env bash
# CTest: a briefly trained murmur model, exported, read back by PyTorch
# (safetensors) or checked and run as ONNX; logits of 100 Fashion-MNIST test
# images must match murmur's within 1e-4 (scripts/check_model_export.py).
#   export_roundtrip.sh torch|onnx MURMUR MODEL_LOGITS SOURCE_DIR WORK_DIR
# Exit 77 (CTest: skipped) when python3-torch / python3-onnx is missing, said on stdout.
set -euo pipefail
mode=$1 murmur=$2 logits=$3 src=$4 work=$5
data=/usr/share/datasets/fashion-mnist
rm -rf "$work" && mkdir -p "$work"
# Every layer kind murmur has, briefly trained (2 peers, 1024 samples).
arch="conv2d:8:3:1:1,groupnorm:2,relu,maxpool2d:2,res[conv2d:8:3:1:1,groupnorm:4,relu,dropout:0.2]"
arch+=",conv2d:16:3:2:1,tanh,gap,flatten,dropout:0.1,linear:32,sigmoid,linear:10"
"$murmur" sim "$src/configs/synthetic-smoke.toml" --quiet --out "$work/run" \
  --set data.dataset=fashion-mnist --set data.dir="$data" --set data.train_samples=1024 \
  --set data.test_samples=200 --set sim.peers=2 --set sim.loss=0 --set train.epochs=1 \
  --set model.arch="$arch" \
  > "$work/sim.log"
"$logits" "$work/run" "$data" 100 "$work"
if [[ $mode == torch ]]; then
  exec /usr/bin/python3 "$src/scripts/check_model_export.py" torch "$work/run/model.safetensors" "$work"
fi
"$murmur" export "$work/run" --format onnx --out "$work/model.onnx"
exec /usr/bin/python3 "$src/scripts/check_model_export.py" onnx "$work/model.onnx" "$work"
