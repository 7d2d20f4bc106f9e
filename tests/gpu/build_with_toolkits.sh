#!/usr/bin/env bash
# gpu/ must build with every CUDA toolkit murmur supports (issue 13: CUDA 13
# on the development, CI and GPU machines; Debian 12's nvidia-cuda-toolkit
# 11.8 for users, `scripts/setup.sh --cuda`). The build itself compiles gpu/
# with one toolkit (CMAKE_CUDA_COMPILER); this compiles every gpu/*.cu with
# each OTHER toolkit found, for sm_90 plus PTX, warnings as errors (and the
# host files that include CUDA headers, gpu/cuda_*.cpp).
# Toolkits looked for: nvcc on the PATH, /usr/bin/nvcc (Debian's),
# /usr/local/cuda*/bin/nvcc, and the paths in $MURMUR_EXTRA_NVCC (colon-separated).
# CUDA < 12 takes clang++-14 as host compiler (its nvcc rejects g++-12).
# Usage: build_with_toolkits.sh SOURCE_DIR BUILD_NVCC ; exit 77 = skipped (no other toolkit).
set -uo pipefail
src=$1
build_nvcc=$(readlink -f "$2" 2>/dev/null || echo "$2")
candidates=()
command -v nvcc > /dev/null && candidates+=("$(command -v nvcc)")
[ -x /usr/bin/nvcc ] && candidates+=(/usr/bin/nvcc)
for n in /usr/local/cuda*/bin/nvcc; do [ -x "$n" ] && candidates+=("$n"); done
IFS=: read -r -a extra <<< "${MURMUR_EXTRA_NVCC:-}"
for n in "${extra[@]}"; do [ -n "$n" ] && [ -x "$n" ] && candidates+=("$n"); done

version_of() { "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -1; }
build_version=$(version_of "$build_nvcc")
seen=" "
others=()
for n in "${candidates[@]}"; do
  v=$(version_of "$n")
  [ -z "$v" ] && { echo "note: $n does not run (skipped)"; continue; }
  [ "$v" = "$build_version" ] && continue          # the build's own toolkit compiles gpu/ already
  case "$seen" in *" $v "*) continue ;; esac       # one compiler per version
  seen="$seen$v "
  others+=("$n")
done
if [ ${#others[@]} -eq 0 ]; then
  echo "skipped: only the build's CUDA toolkit ($build_version, $build_nvcc) is present; gpu/ is compiled with it in every build"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for n in "${others[@]}"; do
  v=$(version_of "$n")
  host=()
  if [ "${v%%.*}" -lt 12 ]; then
    command -v clang++-14 > /dev/null || { echo "FAIL: CUDA $v ($n) needs clang++-14 as host compiler (apt install clang-14)"; status=1; continue; }
    host=(-ccbin clang++-14)
  fi
  # .cu files as device code, gpu/cuda_*.cpp (host code against the
  # toolkit's headers, e.g. the cuBLAS loader) through nvcc to the host compiler.
  for cu in "$src"/gpu/*.cu "$src"/gpu/cuda_*.cpp; do
    [ "${cu##*/}" = cuda_unavailable.cpp ] && continue
    if ! "$n" "${host[@]}" -std=c++17 -O2 --fmad=false -gencode arch=compute_90,code=sm_90 \
         -gencode arch=compute_90,code=compute_90 -Werror all-warnings -I"$src" -c "$cu" -o "$tmp/obj.o" \
         > "$tmp/log" 2>&1; then
      echo "FAIL: CUDA $v ($n) cannot compile ${cu#$src/}:"
      cat "$tmp/log"
      status=1
    fi
  done
  [ $status -eq 0 ] && echo "CUDA $v ($n${host:+, host ${host[1]}}): gpu/*.cu and gpu/cuda_*.cpp all compile (sm_90 + PTX)"
done
exit $status
