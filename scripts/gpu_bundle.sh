#!/usr/bin/env bash
# Builds, on a machine with CUDA 13 and the Debian packages (this one), what
# scripts/gpu_check.sh runs on a bare GPU machine, and packs it into one
# archive that travels with the working tree:
#   build-gpu/gpu-bundle.tar.xz   (ignored by git: name build-gpu in the
#                                  device tool's `carry`)
# holding gpu-bundle/
#   bin/       gpu_train, murmur, test_gpu (when the target exists), stripped
#   lib/       every shared library they load from this machine except the
#              CUDA driver, runtime and cuBLAS (libcuda, libcudart, libcublas,
#              libcublasLt: the GPU machine's own CUDA 13 ones are used) and
#              glibc (libc, libm, libpthread, libdl, librt, the loader)
#   glibc/     this machine's glibc and loader: gpu_check.sh uses them only
#              when the GPU machine's glibc is older than the binaries need
#   cpu_reference/   with --cpu-reference: the 8-peer simulation run here on
#              the CPU (summary.json, timing.json), what the GPU run is
#              compared with
#   MANIFEST   what was built, from which commit, the glibc version needed
# Usage: scripts/gpu_bundle.sh [--cpu-reference] [--build-dir DIR]
#   (default build dir: build-gpu/cmake; reuses it, so a second run only
#   relinks what changed). Fails when the archive is over 60 MiB (the device
#   tool carries 64 MiB per call, the working tree included).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out_dir="$root/build-gpu"
build="$out_dir/cmake"
cpu_reference=0
while (($#)); do
  case "$1" in
    --cpu-reference) cpu_reference=1 ;;
    --build-dir) build=$2; shift ;;
    *) echo "gpu_bundle.sh: unknown argument '$1' (expected --cpu-reference or --build-dir DIR)" >&2; exit 2 ;;
  esac
  shift
done
command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]] ||
  { echo "gpu_bundle.sh: no nvcc (the bundle is built with CUDA 13)" >&2; exit 1; }

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
gen=()
[[ -f $build/CMakeCache.txt ]] || { command -v ninja >/dev/null && gen=(-G Ninja); }
cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DMURMUR_CUDA=ON "${launcher[@]}" >/dev/null
targets=(gpu_train murmur)
# The cross-backend test, where this checkout has it (tests/CMakeLists.txt).
if grep -qs 'add_executable(test_gpu\b' "$root/tests/CMakeLists.txt"; then targets+=(test_gpu); fi
cmake --build "$build" -j"${JOBS:-2}" --target "${targets[@]}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b="$stage/gpu-bundle"
mkdir -p "$b/bin" "$b/lib" "$b/glibc"
for t in "${targets[@]}"; do
  cp "$build/$t" "$b/bin/"
  strip --strip-unneeded "$b/bin/$t"
done

# glibc and the loader stay the GPU machine's (they must match each other
# and its libcuda); CUDA's driver, runtime and cuBLAS too.
is_glibc() { [[ $1 =~ ^(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux-x86-64)\.so ]]; }
is_cuda() { [[ $1 =~ ^(libcuda|libcudart|libcublas|libcublasLt|libnvidia-)[.-] ]] || [[ $1 =~ ^libcublasLt\.so ]]; }
declare -A seen=()
for t in "${targets[@]}"; do
  while read -r name path; do
    [[ -n $path && -f $path ]] || continue
    [[ -n ${seen[$name]:-} ]] && continue
    seen[$name]=1
    if is_cuda "$name"; then continue; fi
    if is_glibc "$name"; then cp -L "$path" "$b/glibc/$name"; continue; fi
    cp -L "$path" "$b/lib/$name"
  done < <(ldd "$build/$t" | awk '/=>/ {print $1, $3} /ld-linux/ && !/=>/ {n=$1; sub(".*/", "", n); print n, $1}')
done
[[ -f $b/glibc/ld-linux-x86-64.so.2 ]] || cp -L /lib64/ld-linux-x86-64.so.2 "$b/glibc/"
strip --strip-unneeded "$b"/lib/* 2>/dev/null || true

# The newest GLIBC_x.y symbol version anything in bin/ or lib/ asks for.
glibc_needed=$(for f in "$b"/bin/* "$b"/lib/*; do objdump -T "$f" 2>/dev/null; done |
  grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -u | tail -1)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)

if ((cpu_reference)); then
  # The same simulation gpu_check.sh runs on the GPU, on this machine's CPU.
  ref="$b/cpu_reference"
  mkdir -p "$ref"
  # shellcheck source=scripts/gpu_sim_args.sh
  source "$root/scripts/gpu_sim_args.sh"
  # train.device=cpu where the build knows the key (on a machine with a GPU
  # `auto` would take it).
  on_cpu=()
  grep -q 'train\.device' "$root/docs/config.md" && on_cpu=(--set train.device=cpu)
  echo "gpu_bundle.sh: the 8-peer CPU reference run (murmur sim ${gpu_sim_args[*]} ${on_cpu[*]})"
  start=$(date +%s)
  "$build/murmur" sim "${gpu_sim_args[@]}" "${on_cpu[@]}" --out "$stage/sim-cpu" --quiet \
    >"$ref/log.txt" 2>&1 || { tail -5 "$ref/log.txt" >&2; echo "gpu_bundle.sh: CPU reference run failed" >&2; exit 1; }
  end=$(date +%s)
  cp "$stage/sim-cpu/summary.json" "$ref/"
  [[ -f $stage/sim-cpu/timing.json ]] && cp "$stage/sim-cpu/timing.json" "$ref/"
  {
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wall seconds (whole command): $((end - start))"
  } >"$ref/machine.txt"
fi

{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), commit $commit$dirty"
  echo "nvcc: $( (nvcc --version 2>/dev/null || /usr/local/cuda/bin/nvcc --version) | tail -2 | head -1)"
  echo "targets: ${targets[*]}"
  echo "glibc needed: $glibc_needed (this machine: $(ldd --version | head -1 | awk '{print $NF}'))"
  echo "cuda libraries expected on the GPU machine:"
  for t in "${targets[@]}"; do ldd "$build/$t" | awk '{print $1}' | grep -E '^lib(cuda|cudart|cublas|cublasLt)[.]' || true; done | sort -u | sed 's/^/  /'
  echo "cpu reference: $([[ $cpu_reference == 1 ]] && echo yes || echo no)"
  echo "files:"
  (cd "$b" && find . -type f -printf '  %p %s\n' | sort)
} >"$b/MANIFEST"

mkdir -p "$out_dir"
tar -C "$stage" -cf - gpu-bundle | xz -T"${JOBS:-2}" -6 >"$out_dir/gpu-bundle.tar.xz.tmp"
mv "$out_dir/gpu-bundle.tar.xz.tmp" "$out_dir/gpu-bundle.tar.xz"
size=$(stat -c %s "$out_dir/gpu-bundle.tar.xz")
unpacked=$(du -sb "$b" | cut -f1)
echo "gpu_bundle.sh: $out_dir/gpu-bundle.tar.xz: $((size / 1024)) KiB ($((unpacked / 1024 / 1024)) MiB unpacked), glibc needed $glibc_needed"
if ((size > 60 * 1024 * 1024)); then
  echo "gpu_bundle.sh: the archive is over 60 MiB: it would not travel with the working tree (64 MiB per call)" >&2
  exit 1
fi
