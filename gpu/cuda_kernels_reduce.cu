// Reductions on the device: bias gradients, global average pooling,
// GroupNorm and softmax cross-entropy. All deterministic: each sum runs in
// double in a fixed order (per-thread strides, then block_sum's tree), no
// atomics, so a run repeats bit for bit; against the CPU's float or double
// loops they differ only by summation order.
#include <cmath>

#include "gpu/cuda_kernels.hpp"
#include "gpu/cuda_launch.cuh"

namespace murmur::gpu_kernels {

namespace {

constexpr int kWarps = kThreads / 32;

// ---- bias gradients
// Blocks of 32 columns x 8 row lanes: a warp reads 32 adjacent floats of a
// row; the 8 lanes' sums meet in shared memory in lane order.
__global__ void sum_rows_kernel(float* out, const float* x, int64_t rows, int64_t cols, float beta) {
  __shared__ double part[8][32];
  const int64_t tiles = (cols + 31) / 32;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t col = t * 32 + threadIdx.x;
    double acc = 0;
    if (col < cols)
      for (int64_t r = threadIdx.y; r < rows; r += 8) acc += x[r * cols + col];
    __syncthreads();  // the previous tile's reader is done with part
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
      double s = 0;
      for (int l = 0; l < 8; ++l) s += part[l][threadIdx.x];
      const float sum = static_cast<float>(s);
      out[col] = beta == 0.f ? sum : beta * out[col] + sum;
    }
  }
}

// Chunk g of channel c's batch * spatial values -> partial[c * chunks + g].
__global__ void sum_channels_partial_kernel(const float* x, int64_t batch, int64_t channels, int64_t spatial,
                                            int64_t chunk, double* partial) {
  __shared__ double shared[32];
  const int64_t c = blockIdx.x, g = blockIdx.y, per_channel = batch * spatial;
  const int64_t lo = g * chunk, hi = lo + chunk < per_channel ? lo + chunk : per_channel;
  double acc = 0;
  for (int64_t e = lo + threadIdx.x; e < hi; e += blockDim.x) {
    const int64_t b = e / spatial, s = e % spatial;
    acc += x[(b * channels + c) * spatial + s];
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[c * gridDim.y + g] = acc;
}

__global__ void sum_channels_finish_kernel(const double* partial, int64_t channels, int chunks, float* out) {
  for (int64_t c = global_index(); c < channels; c += global_stride()) {
    double s = 0;
    for (int g = 0; g < chunks; ++g) s += partial[c * chunks + g];
    out[c] = static_cast<float>(s);
  }
}

int sum_channel_chunks(int64_t batch, int64_t spatial) {
  const int64_t want = (batch * spatial + 4095) / 4096;  // ~16 values per thread and chunk
  return static_cast<int>(want < 1 ? 1 : (want > 64 ? 64 : want));
}

// ---- global average pooling: a warp per plane.
__global__ void gap_forward_kernel(const float* x, int64_t planes, int64_t spatial, float* y) {
  const int lane = threadIdx.x & 31;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  for (int64_t p = first; p < planes; p += static_cast<int64_t>(gridDim.x) * kWarps) {
    double acc = 0;
    for (int64_t i = lane; i < spatial; i += 32) acc += x[p * spatial + i];
    acc = warp_sum(acc);
    if (lane == 0) y[p] = static_cast<float>(acc / static_cast<double>(spatial));
  }
}

__global__ void gap_backward_kernel(const float* dy, int64_t n, int64_t spatial, float inv, float* dx) {
  for (int64_t e = global_index(); e < n; e += global_stride()) dx[e] = dy[e / spatial] * inv;
}

// ---- GroupNorm: tensor/groupnorm.cpp, a block per (sample, group).
__global__ void groupnorm_forward_kernel(const float* x, int64_t batch_groups, int64_t groups, int64_t cg,
                                         int64_t spatial, const float* w, const float* b, float* y, float* xhat,
                                         float* rstd_out) {
  __shared__ double shared[32];
  const int64_t n = cg * spatial;
  const double eps = 1e-5f;  // GroupNorm::eps, a float, promoted as on the CPU
  for (int64_t bg = blockIdx.x; bg < batch_groups; bg += gridDim.x) {
    const float* xp = x + bg * n;
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xp[i];
    const double mean = block_sum(s, shared) / static_cast<double>(n);
    double v = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) v += (xp[i] - mean) * (xp[i] - mean);
    v = block_sum(v, shared);
    const float rstd = static_cast<float>(1.0 / sqrt(v / static_cast<double>(n) + eps));
    if (threadIdx.x == 0) rstd_out[bg] = rstd;
    const float m = static_cast<float>(mean);
    const int64_t c0 = (bg % groups) * cg;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const int64_t c = c0 + i / spatial;
      const float h = (xp[i] - m) * rstd;
      xhat[bg * n + i] = h;
      y[bg * n + i] = h * w[c] + b[c];
    }
  }
}

// Per (sample, channel) plane, a warp: sum g * xhat (float products, as the
// CPU) and sum g, in double.
__global__ void groupnorm_plane_sums_kernel(const float* dy, const float* xhat, int64_t planes, int64_t spatial,
                                            double* sw, double* sb) {
  const int lane = threadIdx.x & 31;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  for (int64_t p = first; p < planes; p += static_cast<int64_t>(gridDim.x) * kWarps) {
    double a = 0, c = 0;
    for (int64_t i = lane; i < spatial; i += 32) {
      const float g = dy[p * spatial + i];
      a += g * xhat[p * spatial + i];
      c += g;
    }
    a = warp_sum(a);
    c = warp_sum(c);
    if (lane == 0) {
      sw[p] = a;
      sb[p] = c;
    }
  }
}

// dw[c], db[c]: the planes' sums rounded to float and added over the batch
// in sample order, as the CPU does.
__global__ void groupnorm_param_grads_kernel(const double* sw, const double* sb, int64_t batch, int64_t channels,
                                             float* dw, float* db) {
  for (int64_t c = global_index(); c < channels; c += global_stride()) {
    float w = 0.f, b = 0.f;
    for (int64_t s = 0; s < batch; ++s) {
      w += static_cast<float>(sw[s * channels + c]);
      b += static_cast<float>(sb[s * channels + c]);
    }
    dw[c] = w;
    db[c] = b;
  }
}

// dx = rstd * (g w - mean(g w) - xhat mean(g w xhat)) over one (sample, group).
__global__ void groupnorm_input_grad_kernel(const float* dy, const float* xhat, const float* rstd, const float* w,
                                            int64_t batch_groups, int64_t groups, int64_t cg, int64_t spatial,
                                            float* dx) {
  __shared__ double shared[32];
  const int64_t n = cg * spatial;
  for (int64_t bg = blockIdx.x; bg < batch_groups; bg += gridDim.x) {
    const int64_t c0 = (bg % groups) * cg;
    const float* gp = dy + bg * n;
    const float* hp = xhat + bg * n;
    double sg = 0, sgh = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double gi = gp[i] * static_cast<double>(w[c0 + i / spatial]);
      sg += gi;
      sgh += gi * hp[i];
    }
    sg = block_sum(sg, shared);
    sgh = block_sum(sgh, shared);
    const float mg = static_cast<float>(sg / static_cast<double>(n));
    const float mgh = static_cast<float>(sgh / static_cast<double>(n));
    const float r = rstd[bg];
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float wc = w[c0 + i / spatial];
      dx[bg * n + i] = r * (gp[i] * wc - mg - hp[i] * mgh);
    }
  }
}

// ---- softmax cross-entropy (tensor/loss.cpp): a warp per row.
struct arg_best {
  float value;
  int64_t index;
};

// The CPU's scan (arg = 0; arg = j when z[j] > z[arg]) as a reduction:
// the greater value, the lower index on ties; NaN never wins, except at
// index 0, where nothing replaces it. Commutative and associative, so every
// lane of the butterfly ends with the same answer.
__device__ inline arg_best better(arg_best a, arg_best b) {
  if (a.index == 0 && a.value != a.value) return a;
  if (b.index == 0 && b.value != b.value) return b;
  return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
}

__device__ inline float warp_sum_float(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// row_flags: bit 0 = the argmax is the label, bit 1 = the label is out of range.
__global__ void softmax_rows_kernel(const float* logits, const int32_t* labels, int64_t batch, int64_t classes,
                                    float* dlogits, double* row_loss, int* row_flags) {
  const int lane = threadIdx.x & 31;
  const float inv_b = 1.f / static_cast<float>(batch);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  for (int64_t r = first; r < batch; r += static_cast<int64_t>(gridDim.x) * kWarps) {
    const float* z = logits + r * classes;
    const int32_t label = labels[r];
    if (label < 0 || label >= classes) {
      if (lane == 0) {
        row_loss[r] = 0;
        row_flags[r] = 2;
      }
      continue;
    }
    arg_best best{-INFINITY, INT64_MAX};  // no candidate yet
    for (int64_t j = lane; j < classes; j += 32)
      best = better(best, arg_best{z[j], (z[j] == z[j] || j == 0) ? j : INT64_MAX});
    for (int o = 16; o > 0; o >>= 1) {
      arg_best other;
      other.value = __shfl_xor_sync(0xffffffffu, best.value, o);
      other.index = __shfl_xor_sync(0xffffffffu, best.index, o);
      best = better(best, other);
    }
    const float m = best.value;
    float s = 0.f;
    for (int64_t j = lane; j < classes; j += 32) s += expf(z[j] - m);
    s = warp_sum_float(s);
    if (lane == 0) {
      row_loss[r] = static_cast<double>(logf(s)) - static_cast<double>(z[label] - m);
      row_flags[r] = best.index == label ? 1 : 0;
    }
    if (dlogits) {
      float* d = dlogits + r * classes;
      const float scale = inv_b / s;
      for (int64_t j = lane; j < classes; j += 32) {
        const float e = expf(z[j] - m) * scale;
        d[j] = j == label ? e - inv_b : e;
      }
    }
  }
}

__global__ void __launch_bounds__(1024)
    softmax_totals_kernel(const double* row_loss, const int* row_flags, int64_t batch, loss_totals* totals) {
  __shared__ double shared[32];
  double loss = 0, hits = 0, bad = 0;
  for (int64_t r = threadIdx.x; r < batch; r += blockDim.x) {
    loss += row_loss[r];
    hits += row_flags[r] & 1;
    bad += row_flags[r] >> 1;
  }
  loss = block_sum(loss, shared);
  hits = block_sum(hits, shared);
  bad = block_sum(bad, shared);
  if (threadIdx.x == 0) {
    totals->loss_sum = loss;
    totals->correct = static_cast<long long>(hits);
    totals->bad_labels = static_cast<long long>(bad);
  }
}

unsigned warp_blocks(int64_t items) { return grid_cap((items + kWarps - 1) / kWarps); }

}  // namespace

void sum_rows(cudaStream_t s, float* out, const float* x, int64_t rows, int64_t cols, float beta) {
  sum_rows_kernel<<<grid_cap((cols + 31) / 32), dim3(32, 8), 0, s>>>(out, x, rows, cols, beta);
}

int64_t sum_channels_scratch_bytes(int64_t batch, int64_t channels, int64_t spatial) {
  return channels * sum_channel_chunks(batch, spatial) * static_cast<int64_t>(sizeof(double));
}

void sum_channels(cudaStream_t s, float* out, const float* x, int64_t batch, int64_t channels, int64_t spatial,
                  void* scratch) {
  auto* partial = static_cast<double*>(scratch);
  const int chunks = sum_channel_chunks(batch, spatial);
  const int64_t chunk = (batch * spatial + chunks - 1) / chunks;
  // gridDim.x = channels: a channel count is far below 2^31 - 1.
  sum_channels_partial_kernel<<<dim3(static_cast<unsigned>(channels), static_cast<unsigned>(chunks)), kThreads, 0,
                                s>>>(x, batch, channels, spatial, chunk, partial);
  sum_channels_finish_kernel<<<blocks_for(channels), kThreads, 0, s>>>(partial, channels, chunks, out);
}

void gap_forward(cudaStream_t s, const float* x, int64_t planes, int64_t spatial, float* y) {
  gap_forward_kernel<<<warp_blocks(planes), kThreads, 0, s>>>(x, planes, spatial, y);
}

void gap_backward(cudaStream_t s, const float* dy, int64_t planes, int64_t spatial, float* dx) {
  const float inv = 1.f / static_cast<float>(spatial);
  gap_backward_kernel<<<blocks_for(planes * spatial), kThreads, 0, s>>>(dy, planes * spatial, spatial, inv, dx);
}

void groupnorm_forward(cudaStream_t s, const float* x, int64_t batch, int64_t channels, int64_t spatial,
                       int64_t groups, const float* w, const float* b, float* y, float* xhat, float* rstd) {
  groupnorm_forward_kernel<<<grid_cap(batch * groups), kThreads, 0, s>>>(x, batch * groups, groups,
                                                                         channels / groups, spatial, w, b, y, xhat,
                                                                         rstd);
}

int64_t groupnorm_backward_scratch_bytes(int64_t batch, int64_t channels) {
  return 2 * batch * channels * static_cast<int64_t>(sizeof(double));
}

void groupnorm_backward(cudaStream_t s, const float* dy, const float* xhat, const float* rstd, const float* w,
                        int64_t batch, int64_t channels, int64_t spatial, int64_t groups, float* dx, float* dw,
                        float* db, void* scratch) {
  auto* sw = static_cast<double*>(scratch);
  double* sb = sw + batch * channels;
  groupnorm_plane_sums_kernel<<<warp_blocks(batch * channels), kThreads, 0, s>>>(dy, xhat, batch * channels,
                                                                                 spatial, sw, sb);
  groupnorm_param_grads_kernel<<<blocks_for(channels), kThreads, 0, s>>>(sw, sb, batch, channels, dw, db);
  if (dx)
    groupnorm_input_grad_kernel<<<grid_cap(batch * groups), kThreads, 0, s>>>(
        dy, xhat, rstd, w, batch * groups, groups, channels / groups, spatial, dx);
}

int64_t softmax_cross_entropy_scratch_bytes(int64_t batch) {
  return batch * static_cast<int64_t>(sizeof(double) + sizeof(int));
}

void softmax_cross_entropy(cudaStream_t s, const float* logits, const int32_t* labels, int64_t batch,
                           int64_t classes, float* dlogits, void* scratch, loss_totals* totals) {
  auto* row_loss = static_cast<double*>(scratch);
  auto* row_flags = reinterpret_cast<int*>(row_loss + batch);
  softmax_rows_kernel<<<warp_blocks(batch), kThreads, 0, s>>>(logits, labels, batch, classes, dlogits, row_loss,
                                                              row_flags);
  softmax_totals_kernel<<<1, 1024, 0, s>>>(row_loss, row_flags, batch, totals);
}

}  // namespace murmur::gpu_kernels
