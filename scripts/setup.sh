#!/usr/bin/env bash
# Installs, from Debian's packages only, everything murmur needs to build,
# test and run its default demo. Idempotent: safe to run again.
#   scripts/setup.sh           tool chain, libraries, data
#   scripts/setup.sh --bench   the same (python3-torch is in the base list now: the
#                              model-export round-trip test loads murmur's weights in PyTorch)
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config
  libcaf-dev libcereal-dev libzmq3-dev cppzmq-dev catch2
  libopenblas-dev zlib1g-dev libssl-dev libtomlplusplus-dev libcli11-dev
  gnuplot-nox dataset-fashion-mnist
  clang-14 libclang-rt-14-dev
  nlohmann-json3-dev
  libonnx-dev libprotobuf-dev python3-onnx python3-numpy python3-torch
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
