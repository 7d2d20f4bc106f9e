// Gossip on the device: the mix, the threshold/grid compressor (an
// order-preserving stream compaction) and a received frame's scatter.
#include "gpu/cuda_kernels.hpp"
#include "gpu/cuda_launch.cuh"

namespace murmur::gpu_kernels {

namespace {

struct mix_batch {
  const float* hats[kMixBatch];
  float weights[kMixBatch];
};

// acc = sum_j w_j (h_j - s) in j order, then x += gamma * acc.
__global__ void gossip_mix_kernel(float* x, const float* self_hat, mix_batch batch, int count, float gamma,
                                  int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    const float s = self_hat[i];
    float acc = 0.f;
    for (int j = 0; j < count; ++j) acc += batch.weights[j] * (batch.hats[j][i] - s);
    x[i] += gamma * acc;
  }
}

// compute_backend::gossip_select's rule for one coordinate, as the CPU
// backend (and actors/gossip_state.cpp): whether it is published, and the
// value. A grid value equal to hat is skipped; without a grid every
// coordinate past the threshold is (threshold 0: all, dense gossip).
// std::clamp's comparisons, so a NaN quotient stays NaN as on the CPU.
__device__ inline bool select_value(float x, float h, float threshold, float grid, float* v) {
  if (!(fabsf(x - h) >= threshold)) return false;
  float value = x;
  if (grid > 0.f) {
    const float limit = 1e9f;
    float t = x / grid;
    t = t < -limit ? -limit : (limit < t ? limit : t);
    value = nearbyintf(t) * grid;
    if (value == h) return false;
  }
  *v = value;
  return true;
}

// The compaction: tiles of kTile coordinates, one block each, every thread
// owning kItems consecutive ones. Pass 1 counts per tile, pass 2 scans the
// tile counts (one block, in order), pass 3 re-evaluates the rule (a pure
// function of x and hat, which pass 3 is the first to write), scans within
// the tile and writes. Output order = increasing k; no atomics.
constexpr int kItems = 8;
constexpr int kTile = kThreads * kItems;

// Exclusive scan over the block of one int per thread (blockDim.x ==
// kThreads); *total gets the block's sum. `shared` holds 32 ints.
__device__ inline int block_exclusive_scan(int v, int* shared, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int inc = v;
  for (int o = 1; o < 32; o <<= 1) {
    const int up = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += up;
  }
  __syncthreads();
  if (lane == 31) shared[warp] = inc;
  __syncthreads();
  int before = 0, sum = 0;
  for (int i = 0; i < warps; ++i) {
    if (i < warp) before += shared[i];
    sum += shared[i];
  }
  *total = sum;
  return before + inc - v;
}

__global__ void select_count_kernel(const float* x, const float* hat, int64_t n, float threshold, float grid,
                                    int* tile_counts) {
  __shared__ int shared[32];
  const int64_t tiles = (n + kTile - 1) / kTile;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t base = t * kTile + static_cast<int64_t>(threadIdx.x) * kItems;
    int c = 0;
    float v;
    for (int q = 0; q < kItems; ++q) {
      const int64_t k = base + q;
      if (k < n && select_value(x[k], hat[k], threshold, grid, &v)) ++c;
    }
    int total;
    block_exclusive_scan(c, shared, &total);
    if (threadIdx.x == 0) tile_counts[t] = total;
  }
}

// One block: tile_offsets[t] = sum of tile_counts[< t]; *count = the total.
__global__ void __launch_bounds__(1024)
    select_scan_kernel(const int* tile_counts, int64_t* tile_offsets, int64_t tiles, int64_t* count) {
  __shared__ int shared[32];
  int64_t carry = 0;
  for (int64_t t0 = 0; t0 < tiles; t0 += blockDim.x) {
    const int64_t t = t0 + threadIdx.x;
    const int c = t < tiles ? tile_counts[t] : 0;
    int total;
    const int before = block_exclusive_scan(c, shared, &total);
    if (t < tiles) tile_offsets[t] = carry + before;
    carry += total;
  }
  if (threadIdx.x == 0) *count = carry;
}

__global__ void select_write_kernel(const float* x, float* hat, int64_t n, float threshold, float grid,
                                    const int64_t* tile_offsets, int32_t* idx, float* val) {
  __shared__ int shared[32];
  const int64_t tiles = (n + kTile - 1) / kTile;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t base = t * kTile + static_cast<int64_t>(threadIdx.x) * kItems;
    float vals[kItems];
    unsigned picked = 0;
    int c = 0;
    for (int q = 0; q < kItems; ++q) {
      const int64_t k = base + q;
      if (k < n && select_value(x[k], hat[k], threshold, grid, &vals[q])) {
        picked |= 1u << q;
        ++c;
      }
    }
    int total;
    int64_t out = tile_offsets[t] + block_exclusive_scan(c, shared, &total);
    for (int q = 0; q < kItems; ++q) {
      if (!(picked & (1u << q))) continue;
      const int64_t k = base + q;
      hat[k] = vals[q];
      idx[out] = static_cast<int32_t>(k);
      val[out] = vals[q];
      ++out;
    }
  }
}

__global__ void scatter_kernel(float* dst, const int32_t* idx, const float* val, int64_t count) {
  for (int64_t i = global_index(); i < count; i += global_stride()) dst[idx[i]] = val[i];
}

int64_t tiles_for(int64_t n) { return (n + kTile - 1) / kTile; }

}  // namespace

void gossip_mix(cudaStream_t s, float* x, const float* self_hat, const float* const* hats, const float* weights,
                int count, float gamma, int64_t n) {
  mix_batch batch{};
  for (int j = 0; j < count; ++j) {
    batch.hats[j] = hats[j];
    batch.weights[j] = weights[j];
  }
  gossip_mix_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, self_hat, batch, count, gamma, n);
}

int64_t gossip_select_scratch_bytes(int64_t n) {
  const int64_t tiles = tiles_for(n);
  return tiles * static_cast<int64_t>(sizeof(int64_t)) + tiles * static_cast<int64_t>(sizeof(int));
}

void gossip_select(cudaStream_t s, const float* x, float* hat, int64_t n, float threshold, float grid,
                   int32_t* idx, float* val, void* scratch, int64_t* count) {
  const int64_t tiles = tiles_for(n);
  auto* tile_offsets = static_cast<int64_t*>(scratch);  // 8-byte aligned first
  auto* tile_counts = reinterpret_cast<int*>(tile_offsets + tiles);
  select_count_kernel<<<grid_cap(tiles), kThreads, 0, s>>>(x, hat, n, threshold, grid, tile_counts);
  select_scan_kernel<<<1, 1024, 0, s>>>(tile_counts, tile_offsets, tiles, count);
  select_write_kernel<<<grid_cap(tiles), kThreads, 0, s>>>(x, hat, n, threshold, grid, tile_offsets, idx, val);
}

void scatter(cudaStream_t s, float* dst, const int32_t* idx, const float* val, int64_t count) {
  scatter_kernel<<<blocks_for(count), kThreads, 0, s>>>(dst, idx, val, count);
}

}  // namespace murmur::gpu_kernels
