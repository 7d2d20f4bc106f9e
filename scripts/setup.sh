#!/usr/bin/env bash
# Installs, from Debian's packages only, everything murmur needs to build,
# test and run its default demo. Idempotent: safe to run again.
#   scripts/setup.sh           tool chain, libraries, data
#   scripts/setup.sh --bench   the same (python3-torch is in the base list now: the
#                              model-export round-trip test loads murmur's weights in PyTorch)
#   scripts/setup.sh --cuda    also Debian 12's CUDA toolkit 11.8 (nvidia-cuda-toolkit,
#                              about 1.6 GB) from the non-free component, which this
#                              enables with /etc/apt/sources.list.d/murmur-non-free.list
#                              (contrib too: the toolkit needs libcuda1, which needs
#                              contrib's nvidia-support; on a machine without an NVIDIA
#                              driver, libcuda1 is the driver's user-space half only).
#                              Its nvcc needs clang-14 as host compiler (it rejects g++-12):
#                              cmake ... -DCMAKE_CUDA_HOST_COMPILER=clang++-14 (docs/gpu.md)
set -euo pipefail
cuda=0
for arg in "$@"; do
  [[ $arg == --cuda ]] && cuda=1
done
pkgs=(
  build-essential cmake pkg-config
  libcaf-dev libcereal-dev libzmq3-dev cppzmq-dev catch2
  # ocl-icd-opencl-dev: dnnl-config.cmake calls find_package(OpenCL) even for the CPU
  # runtime; libdnnl-dev only recommends it, and this script installs no recommends
  libopenblas-dev libdnnl-dev ocl-icd-opencl-dev zlib1g-dev libssl-dev libtomlplusplus-dev libcli11-dev
  gnuplot-nox dataset-fashion-mnist
  clang-14 libclang-rt-14-dev
  nlohmann-json3-dev
  librust-blake3-dev b3sum  # BLAKE3 C sources built by CMakeLists.txt; b3sum: a cross-check in test_tensor
  libonnx-dev libprotobuf-dev python3-onnx python3-numpy python3-torch
)
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
update_needed=0
if ((cuda)); then
  pkgs+=(nvidia-cuda-toolkit)
  list=/etc/apt/sources.list.d/murmur-non-free.list
  if [[ ! -f $list ]]; then
    # apt refuses two entries for the same archive and suite with different
    # Signed-By values, so use the one Debian's own entry has (the deb822
    # debian.sources of images and cloud installs names the keyring; a
    # classic sources.list line usually names none).
    keyring=$(awk '/^URIs:.*deb\.debian\.org\/debian\/?$/ {d=1} /^$/ {d=0} d && /^Signed-By:/ {print $2; exit}' \
      /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [[ -z $keyring ]] && keyring=$(grep -hoE '^deb \[[^]]*signed-by=[^] ]+[^]]*\] https?://deb\.debian\.org/debian ' \
      /etc/apt/sources.list 2>/dev/null | head -1 | sed -E 's/.*signed-by=([^] ]+).*/\1/' || true)
    opts=""; [[ -n $keyring ]] && opts="[signed-by=$keyring] "
    echo "deb ${opts}http://deb.debian.org/debian bookworm contrib non-free non-free-firmware" | $SUDO tee "$list" >/dev/null
    update_needed=1
  fi
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} || update_needed)); then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
fi
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
