// The clipping gossip rules on the device (actors/robust_mix.hpp's
// centered_clip and clipped_gossip): each neighbour's squared distance to
// our public estimate, reduced in a fixed order, and the clipped mix. The
// radius between the two is chosen on the host.
#include "gpu/cuda_kernels.hpp"
#include "gpu/cuda_launch.cuh"

namespace murmur::gpu_kernels {

namespace {

struct pointer_batch {
  const float* p[kMixBatch];
};
struct clip_batch {
  const float* hats[kMixBatch];
  float scales[kMixBatch];
};

unsigned distance_blocks(int64_t n) {
  const unsigned b = blocks_for(n);
  return b < static_cast<unsigned>(kDistanceBlocks) ? b : static_cast<unsigned>(kDistanceBlocks);
}

// Pass 1: block (b, j) sums coordinates b, b + B, ... of neighbour j0 + j
// (B = gridDim.x, fixed by n) into partials[(j0 + j) * B + b].
__global__ void distance_partials_kernel(const float* self, pointer_batch others, int j0, int64_t n,
                                         double* partials) {
  __shared__ double shared[32];
  const float* o = others.p[blockIdx.y];
  double acc = 0;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double d = static_cast<double>(o[k]) - static_cast<double>(self[k]);
    acc += d * d;
  }
  const double total = block_sum(acc, shared);
  if (threadIdx.x == 0) partials[(static_cast<int64_t>(j0) + blockIdx.y) * gridDim.x + blockIdx.x] = total;
}

// Pass 2: block j sums neighbour j's `parts` partials.
__global__ void distance_finish_kernel(const double* partials, int parts, double* out) {
  __shared__ double shared[32];
  double acc = 0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x) acc += partials[static_cast<int64_t>(blockIdx.x) * parts + i];
  const double total = block_sum(acc, shared);
  if (threadIdx.x == 0) out[blockIdx.x] = total;
}

// One pass over `count` neighbours: v starts at self_hat (v_in null) or at
// v_in; the last pass (v_out null) mixes into x, the others keep v.
__global__ void clip_mix_kernel(float* x, const float* self_hat, clip_batch batch, int count, float gamma, int64_t n,
                                const float* v_in, float* v_out) {
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    const float s = self_hat[i];
    float v = v_in ? v_in[i] : s;
    for (int j = 0; j < count; ++j) v += batch.scales[j] * (batch.hats[j][i] - s);
    if (v_out)
      v_out[i] = v;
    else
      x[i] += gamma * (v - s);
  }
}

}  // namespace

int64_t squared_distances_scratch_bytes(int count, int64_t n) {
  return static_cast<int64_t>(count) * distance_blocks(n) * static_cast<int64_t>(sizeof(double));
}

void squared_distances(cudaStream_t s, const float* self, const float* const* others, int count, int64_t n,
                       double* out, void* scratch) {
  const unsigned parts = distance_blocks(n);
  auto* partials = static_cast<double*>(scratch);
  for (int j0 = 0; j0 < count; j0 += kMixBatch) {
    const int c = count - j0 < kMixBatch ? count - j0 : kMixBatch;
    pointer_batch batch{};
    for (int j = 0; j < c; ++j) batch.p[j] = others[j0 + j];
    distance_partials_kernel<<<dim3(parts, static_cast<unsigned>(c)), kThreads, 0, s>>>(self, batch, j0, n,
                                                                                          partials);
  }
  distance_finish_kernel<<<static_cast<unsigned>(count), kThreads, 0, s>>>(partials, static_cast<int>(parts), out);
}

int64_t clip_mix_scratch_bytes(int count, int64_t n) {
  return count > kMixBatch ? n * static_cast<int64_t>(sizeof(float)) : 0;
}

void clip_mix(cudaStream_t s, float* x, const float* self_hat, const float* const* hats, const float* scales,
              int count, float gamma, int64_t n, void* scratch) {
  auto* v = static_cast<float*>(scratch);
  for (int j0 = 0; j0 < count; j0 += kMixBatch) {
    const int c = count - j0 < kMixBatch ? count - j0 : kMixBatch;
    clip_batch batch{};
    for (int j = 0; j < c; ++j) {
      batch.hats[j] = hats[j0 + j];
      batch.scales[j] = scales[j0 + j];
    }
    const bool first = j0 == 0, last = j0 + c >= count;
    clip_mix_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, self_hat, batch, c, gamma, n, first ? nullptr : v,
                                                       last ? nullptr : v);
  }
}

}  // namespace murmur::gpu_kernels
