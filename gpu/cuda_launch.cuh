// Launch geometry and deterministic block reductions shared by the
// kernels of gpu/cuda_kernels_*.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace murmur::gpu_kernels {

constexpr int kThreads = 256;
// Grid-stride loops run at most this many blocks (16.7M threads: more than
// any GPU holds at once), so gridDim.x stays far below its 2^31-1 limit
// whatever n is.
constexpr int64_t kMaxBlocks = int64_t{1} << 16;

inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}
inline unsigned grid_cap(int64_t items) { return static_cast<unsigned>(items < kMaxBlocks ? items : kMaxBlocks); }

__device__ inline int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t global_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Butterfly sum over the 32 lanes: every lane ends with the same bits (each
// step adds the same two partial sums in either order).
__device__ inline double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32); every thread gets the
// same total. `shared` holds 32 doubles; every thread must call.
__device__ inline double block_sum(double v, double* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // a previous call's readers are done with `shared`
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double t = 0;
  for (int i = 0; i < warps; ++i) t += shared[i];
  return t;
}

}  // namespace murmur::gpu_kernels
