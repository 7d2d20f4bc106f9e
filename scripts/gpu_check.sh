#!/usr/bin/env bash
# The whole GPU story on a bare GPU machine (one H100/H200 with CUDA 13 and
# PyTorch, none of murmur's Debian packages, nothing downloadable), in under
# 8 minutes, from the bundle scripts/gpu_bundle.sh built on a machine that
# has them (build-gpu/gpu-bundle.tar.xz, carried with the working tree):
#   1. unpacks the bundle, finds the machine's CUDA 13 cuBLAS and sets
#      LD_LIBRARY_PATH for the bundle's binaries only (its lib/ first, then
#      cuBLAS's folder; PyTorch keeps its own libraries); uses its glibc and
#      loader only when the machine's glibc is older than the binaries need;
#   2. test_gpu: the cross-backend op test (when the bundle has it);
#   3. gpu_train: training steps, Linear products against bare cuBLAS, the
#      Freivalds check against its product (bench/gpu_train.cpp);
#   4. bench/torch_cuda_train.py: PyTorch CUDA eager on the same models and
#      batches, in the same run;
#   5. murmur sim: 8 peers on the one GPU (scripts/gpu_sim_args.sh), compared
#      with the CPU run the bundle carries (gpu_bundle.sh --cpu-reference);
#   6. scripts/gpu_report.py: OUTDIR/report.txt and OUTDIR/report.json
#      (every figure with the device it ran on, ratios against the goals).
# Every step's output goes to OUTDIR/<step>.log; a step that fails or skips
# is reported and the next one still runs. Exit code: 0 when every step ran
# (goals met or not: see the report), 1 when a step failed, 77 when there is
# no CUDA device (every GPU step then says "skipped: no CUDA device").
# Usage: scripts/gpu_check.sh OUTDIR [--dry-run]
#   --dry-run: unpack, resolve the libraries and the loader, check that every
#   binary finds its libraries, print the commands; run nothing else.
# Environment: GPU_BUNDLE (default build-gpu/gpu-bundle.tar.xz), GPU_WORK
# (where to unpack, default /tmp/murmur-gpu-check), GPU_SECONDS (timed window
# per benchmark case, default 3), GPU_BUNDLED_GLIBC=1 (use the bundle's
# glibc and loader even where the machine's would do: to try that path).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
(($# >= 1)) || { echo "usage: scripts/gpu_check.sh OUTDIR [--dry-run]" >&2; exit 2; }
out=$1
dry=0
[[ ${2:-} == --dry-run ]] && dry=1
[[ $# -le 2 && ( $# -eq 1 || $dry -eq 1 ) ]] || { echo "usage: scripts/gpu_check.sh OUTDIR [--dry-run]" >&2; exit 2; }
bundle=${GPU_BUNDLE:-$root/build-gpu/gpu-bundle.tar.xz}
work=${GPU_WORK:-/tmp/murmur-gpu-check}
seconds=${GPU_SECONDS:-3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
t_start=$(date +%s)
log() { echo "gpu_check: $*" | tee -a "$out/gpu_check.log"; }
: >"$out/gpu_check.log"
: >"$out/steps.tsv"

[[ -f $bundle ]] || { log "no bundle at $bundle (build it with scripts/gpu_bundle.sh on a machine with CUDA 13 and murmur's packages)"; exit 1; }
rm -rf "$work"
mkdir -p "$work"
tar -xJf "$bundle" -C "$work" || { log "cannot unpack $bundle"; exit 1; }
B="$work/gpu-bundle"
cp "$B/MANIFEST" "$out/MANIFEST"
log "bundle $(basename "$bundle") ($(($(stat -c %s "$bundle") / 1024)) KiB), unpacked in $B; $(head -1 "$B/MANIFEST")"

# ---- 1. libraries: the machine's CUDA 13 cuBLAS, then the bundle's own.
cuda_dirs=()
add_dir_of() {  # the folder holding library $1, searched where CUDA 13 and PyTorch's wheels put it
  local lib=$1 d
  for d in $(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF}' | xargs -r -n1 dirname) \
    /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
    /usr/local/cuda-13*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu \
    $(python3 - 2>/dev/null <<'EOF'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for d in glob.glob(os.path.join(r, "nvidia", "*", "lib")) + glob.glob(os.path.join(r, "nvidia", "*", "*", "lib")):
        print(d)
EOF
); do
    if [[ -e $d/$lib ]]; then
      [[ " ${cuda_dirs[*]} " == *" $d "* ]] || cuda_dirs+=("$d")
      return 0
    fi
  done
  return 1
}
for lib in libcublas.so.13 libcublasLt.so.13; do
  add_dir_of "$lib" || log "$lib not found on this machine (CUDA 13's cuBLAS): the binaries will not load"
done
cuda_path=$(IFS=:; echo "${cuda_dirs[*]}")
# Only for the bundle's binaries: PyTorch must not load this machine's
# Debian libraries (an older libstdc++ than its own, say).
lib_path="$B/lib${cuda_path:+:$cuda_path}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bundle_env=(env "LD_LIBRARY_PATH=$lib_path")
log "LD_LIBRARY_PATH for the bundle's binaries: $lib_path"

# glibc: the machine's own unless older than what the bundle was linked for.
needed=$(awk -F': ' '/^glibc needed/ {split($2, a, " "); print a[1]}' "$B/MANIFEST")
have=$(ldd --version 2>/dev/null | head -1 | awk '{print $NF}')
runner=()
if [[ ${GPU_BUNDLED_GLIBC:-0} == 1 ]] ||
  { [[ -n $needed && -n $have ]] && [[ $(printf '%s\n%s\n' "$needed" "$have" | sort -V | head -1) != "$needed" ]]; }; then
  runner=("$B/glibc/ld-linux-x86-64.so.2" --library-path "$B/lib:$B/glibc${cuda_path:+:$cuda_path}:/usr/lib/x86_64-linux-gnu:/usr/lib64:/usr/local/nvidia/lib64")
  log "running the binaries with the bundle's loader and glibc (this machine's: $have, needed: $needed)"
else
  log "glibc: this machine's $have (the binaries need $needed)"
fi

# Every binary must find its libraries (libcuda is loaded later, by cudart, when present).
missing=0
for f in "$B"/bin/*; do
  if ((${#runner[@]} == 0)); then
    nf=$(LD_LIBRARY_PATH=$lib_path ldd "$f" 2>&1 | grep "not found" || true)
  else
    nf=$("${runner[0]}" --list --library-path "${runner[2]}" "$f" 2>&1 | grep "not found" || true)
  fi
  if [[ -n $nf ]]; then
    log "$(basename "$f"): missing libraries: $(echo "$nf" | awk '{print $1}' | tr '\n' ' ')"
    missing=1
  fi
done
((missing)) || log "every binary in the bundle finds its libraries"

# ---- steps
failed=0
nodevice=0
# step NAME TIMEOUT_S COMMAND...: runs it, output to OUTDIR/NAME.log, one line to steps.tsv.
step() {
  local name=$1 limit=$2
  shift 2
  if ((dry)); then
    log "would run ($name, up to ${limit}s): $*"
    return 0
  fi
  log "$name: $*"
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  local verdict=ok
  if ((rc == 77)); then
    verdict=skipped
    grep -q "no CUDA device" "$out/$name.log" && nodevice=1
  elif ((rc == 124 || rc == 137)); then
    verdict="timed out after ${limit}s"
    failed=1
  elif ((rc != 0)); then
    verdict="failed (exit $rc)"
    failed=1
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$verdict" >>"$out/steps.tsv"
  log "$name: $verdict in ${secs}s; last line: $(tail -1 "$out/$name.log")"
  return 0
}

# 0. the machine
step machine 30 bash -c 'for c in "nvidia-smi -L" "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv" \
    "nvcc --version" "ldd --version" "nproc" "free -g"; do echo "\$ $c"; $c 2>&1 | tail -4 || true; done
  python3 -c "import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"no CUDA device for torch\")" 2>&1 || true'

# 2. the cross-backend op test
if [[ -x $B/bin/test_gpu ]]; then
  step test_gpu 100 "${bundle_env[@]}" "${runner[@]}" "$B/bin/test_gpu"
else
  log "test_gpu: not in the bundle (the target did not exist when it was built)"
  printf 'test_gpu\t-\t0\tnot in the bundle\n' >>"$out/steps.tsv"
fi

# 3. murmur's benchmark, 4. PyTorch's on the same cases
step gpu_train 120 "${bundle_env[@]}" "${runner[@]}" "$B/bin/gpu_train" --seconds "$seconds" --json "$out/gpu_train.json"
if [[ -f $out/gpu_train.json ]] || ((dry)); then
  step torch_cuda 100 env PYTHONUNBUFFERED=1 python3 "$root/bench/torch_cuda_train.py" --murmur-json "$out/gpu_train.json" \
    --out "$out/torch_cuda.json" --seconds "$seconds"
fi

# 5. 8 simulated peers on the one GPU
# shellcheck source=scripts/gpu_sim_args.sh
source "$root/scripts/gpu_sim_args.sh"
if ((nodevice)); then
  log "sim_gpu: skipped: no CUDA device"
  printf 'sim_gpu\t77\t0\tskipped\n' >>"$out/steps.tsv"
else
  step sim_gpu 100 "${bundle_env[@]}" "${runner[@]}" "$B/bin/murmur" sim "${gpu_sim_args[@]}" --set train.device=cuda --out "$work/sim-gpu" --quiet
  [[ -f $work/sim-gpu/summary.json ]] && cp "$work/sim-gpu/summary.json" "$out/sim_gpu_summary.json"
fi
[[ -f $B/cpu_reference/summary.json ]] && cp "$B/cpu_reference/summary.json" "$out/sim_cpu_summary.json"
[[ -f $B/cpu_reference/machine.txt ]] && cp "$B/cpu_reference/machine.txt" "$out/sim_cpu_machine.txt"

# 6. the report
((dry)) && { log "dry run: nothing run"; exit 0; }
log "total $(($(date +%s) - t_start)) s"
GPU_SIM_BATCH=$gpu_sim_batch python3 "$root/scripts/gpu_report.py" "$out" || { log "gpu_report.py failed"; failed=1; }
((failed)) && exit 1
((nodevice)) && exit 77
exit 0
