// The coordinate-wise gossip rules on the device (actors/robust_mix.hpp's
// median and trimmed_mean): one thread per coordinate sorts its members'
// values with robust_mix's odd-even transposition network, sums the kept
// middle in order and mixes x toward it; the same float operations as the
// host, so the same bits (--fmad=false).
#include "gpu/cuda_kernels.hpp"
#include "gpu/cuda_launch.cuh"

namespace murmur::gpu_kernels {

namespace {

// The pointer table is padded to 16 bytes, then the sort columns follow.
int64_t pointer_bytes(int members) {
  return (static_cast<int64_t>(members) * static_cast<int64_t>(sizeof(float*)) + 15) / 16 * 16;
}

// members[0] is x_hat_self. spill null: sort in a local array (members <=
// kLocalSortMembers); else coordinate i's column is spill[j * n + i].
__global__ void coordinatewise_mix_kernel(float* x, const float* const* members, int m, int drop, float gamma,
                                          int64_t n, float* spill) {
  float local[kLocalSortMembers];
  const float inv = 1.f / static_cast<float>(m - 2 * drop);
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    float* col = spill ? spill + i : local;
    const int64_t st = spill ? n : 1;
    for (int j = 0; j < m; ++j) col[j * st] = members[j][i];
    for (int pass = 0; pass < m; ++pass)
      for (int r = pass % 2; r + 1 < m; r += 2) {
        const float a = col[r * st], b = col[(r + 1) * st];
        col[r * st] = b < a ? b : a;        // std::min(a, b)
        col[(r + 1) * st] = a < b ? b : a;  // std::max(a, b)
      }
    float sum = 0.f;
    for (int r = drop; r < m - drop; ++r) sum += col[r * st];
    x[i] += gamma * (sum * inv - members[0][i]);
  }
}

}  // namespace

int64_t coordinatewise_mix_scratch_bytes(int members, int64_t n) {
  const int64_t columns =
      members > kLocalSortMembers ? static_cast<int64_t>(members) * n * static_cast<int64_t>(sizeof(float)) : 0;
  return pointer_bytes(members) + columns;
}

const float** coordinatewise_mix_pointers(void* scratch) { return static_cast<const float**>(scratch); }

void coordinatewise_mix(cudaStream_t s, float* x, int members, int drop, float gamma, int64_t n, void* scratch) {
  auto* table = static_cast<const float* const*>(scratch);
  float* spill = members > kLocalSortMembers
                     ? reinterpret_cast<float*>(static_cast<char*>(scratch) + pointer_bytes(members))
                     : nullptr;
  coordinatewise_mix_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, table, members, drop, gamma, n, spill);
}

}  // namespace murmur::gpu_kernels
