// Element-wise kernels of the CUDA backend: bias, activations, add/axpy/mul,
// fill, dropout and the optimizer updates. Each mirrors the CPU loop it
// replaces operation for operation (see gpu/cuda_kernels.hpp on rounding).
#include <cfloat>

#include "gpu/cuda_kernels.hpp"
#include "gpu/cuda_launch.cuh"

namespace murmur::gpu_kernels {

namespace {

__global__ void fill_kernel(float* dst, float value, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) dst[i] = value;
}

__global__ void add_row_bias_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = global_index(); i < n; i += global_stride()) y[i] += bias[i % cols];
}

__global__ void add_channel_bias_kernel(float* y, const float* bias, int64_t n, int64_t channels, int64_t spatial) {
  for (int64_t i = global_index(); i < n; i += global_stride()) y[i] += bias[(i / spatial) % channels];
}

__global__ void relu_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
__global__ void sigmoid_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = 1.f / (1.f + expf(-x[i]));
}
__global__ void tanh_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = tanhf(x[i]);
}
__global__ void relu_backward_kernel(const float* y, const float* dy, float* dx, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}
__global__ void sigmoid_backward_kernel(const float* y, const float* dy, float* dx, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) dx[i] = dy[i] * y[i] * (1.f - y[i]);
}
__global__ void tanh_backward_kernel(const float* y, const float* dy, float* dx, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) dx[i] = dy[i] * (1.f - y[i] * y[i]);
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) out[i] = a[i] + b[i];
}
__global__ void axpy_kernel(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) y[i] += alpha * x[i];
}
__global__ void mul_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) out[i] = a[i] * b[i];
}

// tensor/dropout.cpp's stream: the mask is a pure function of (key, i).
__device__ inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

__global__ void dropout_kernel(const float* x, float* y, float* mask, int64_t n, double p, float scale,
                               uint64_t key) {
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    const double u = static_cast<double>(splitmix64(key + static_cast<uint64_t>(i)) >> 11) * 0x1.0p-53;
    const float m = u >= p ? scale : 0.f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

// tensor/optimizer.cpp's state flush: a subnormal state becomes +0 (FLT_MIN
// is the smallest normal float).
__device__ inline float flush_subnormal(float v) { return fabsf(v) < FLT_MIN ? 0.f : v; }

// tensor/optimizer.cpp's Sgd::step, one branch per kernel.
__global__ void sgd_plain_kernel(float* p, const float* g, int64_t n, float lr, float wd) {
  for (int64_t i = global_index(); i < n; i += global_stride()) p[i] -= lr * (g[i] + wd * p[i]);
}
__global__ void sgd_momentum_kernel(float* p, const float* g, float* buf, int64_t n, float lr, float m, float wd,
                                    bool first) {
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    const float b = flush_subnormal(first ? g[i] + wd * p[i] : m * buf[i] + (g[i] + wd * p[i]));
    buf[i] = b;
    p[i] -= lr * b;
  }
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, int64_t n, float step_size,
                            float bc2_sqrt, float b1, float b2, float c1, float c2, float eps, float wd) {
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    const float d = g[i] + wd * p[i];
    const float mi = flush_subnormal(b1 * m[i] + c1 * d);
    const float vi = flush_subnormal(b2 * v[i] + c2 * d * d);
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));  // torch's rounding order
  }
}

}  // namespace

void fill(cudaStream_t s, float* dst, float value, int64_t n) {
  fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(dst, value, n);
}

void add_row_bias(cudaStream_t s, float* y, const float* bias, int64_t rows, int64_t cols) {
  add_row_bias_kernel<<<blocks_for(rows * cols), kThreads, 0, s>>>(y, bias, rows, cols);
}

void add_channel_bias(cudaStream_t s, float* y, const float* bias, int64_t batch, int64_t channels,
                      int64_t spatial) {
  const int64_t n = batch * channels * spatial;
  add_channel_bias_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, bias, n, channels, spatial);
}

void activation_forward(cudaStream_t s, activation_kind f, const float* x, float* y, int64_t n) {
  switch (f) {
    case activation_kind::relu:
      relu_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);
      break;
    case activation_kind::sigmoid:
      sigmoid_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);
      break;
    case activation_kind::tanh:
      tanh_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);
      break;
  }
}

void activation_backward(cudaStream_t s, activation_kind f, const float* y, const float* dy, float* dx, int64_t n) {
  switch (f) {
    case activation_kind::relu:
      relu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, dy, dx, n);
      break;
    case activation_kind::sigmoid:
      sigmoid_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, dy, dx, n);
      break;
    case activation_kind::tanh:
      tanh_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, dy, dx, n);
      break;
  }
}

void add(cudaStream_t s, const float* a, const float* b, float* out, int64_t n) {
  add_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, out, n);
}

void axpy(cudaStream_t s, float alpha, const float* x, float* y, int64_t n) {
  axpy_kernel<<<blocks_for(n), kThreads, 0, s>>>(alpha, x, y, n);
}

void mul(cudaStream_t s, const float* a, const float* b, float* out, int64_t n) {
  mul_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, out, n);
}

void dropout_forward(cudaStream_t s, const float* x, float* y, float* mask, int64_t n, double p, float scale,
                     uint64_t key) {
  dropout_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, mask, n, p, scale, key);
}

void sgd_step(cudaStream_t s, float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
              float weight_decay, bool first) {
  if (momentum == 0.f)
    sgd_plain_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, g, n, lr, weight_decay);
  else
    sgd_momentum_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, g, buf, n, lr, momentum, weight_decay, first);
}

void adam_step(cudaStream_t s, float* p, const float* g, float* m, float* v, int64_t n, float step_size,
               float bc2_sqrt, float beta1, float beta2, float c1, float c2, float eps, float weight_decay) {
  adam_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, g, m, v, n, step_size, bc2_sqrt, beta1, beta2, c1, c2, eps,
                                                 weight_decay);
}

}  // namespace murmur::gpu_kernels
