// onednn_conv: Conv2d's three products (forward with bias, backward-data,
// backward-weights with bias) on oneDNN primitives, over the layer's own
// plain buffers: x and dx [B, C, H, W] (nchw), w and dw [O, C, k, k] (oihw,
// i.e. Conv2d's [O, C*k*k]), b and db [O], y and dy [B, O, OH, OW].
// Layouts: `plain` runs the primitives on those buffers as they are (oneDNN
// then picks its gemm-based kernels); `blocked` lets oneDNN choose its own
// layouts (e.g. nChw16c, its direct JIT kernels) and reorders into and out
// of internal buffers on every call, except on a side whose buffer the
// caller already holds in the primitive's layout (src_blocked/dst_blocked
// below; docs/cpu_kernels.md measures all three).
// Contract:
//  - supports(g) says whether oneDNN expresses the geometry as Conv2d means
//    it (floor mode can ask for a negative right padding; then it is false
//    and the caller keeps im2col + gemm).
//  - prepare(g, out, threads, layout, src_blocked, dst_blocked) creates the
//    primitives, reorders, internal buffers and scratchpads for one
//    geometry, thread count and layout; the same arguments again cost a
//    comparison, so steady-state steps never allocate or create primitives.
//    src_blocked / dst_blocked (blocked layout only) say that the caller's
//    x and dx / y and dy are nChw16c (tensor/channel_blocked.hpp), not
//    nchw: where the primitive runs on that layout (it does on AVX-512)
//    nothing is reordered on that side.
//  - forward, then at most one backward per forward, with x unchanged in
//    between (the blocked layout reuses the forward's copy of x).
//  - Calls run on the calling thread with an OpenMP team of `threads`
//    (oneDNN's OpenMP runtime reads the caller's omp_get_max_threads, and a
//    primitive must run with the thread count it was created for, so every
//    call sets it). Results equal im2col + gemm's up to float summation
//    order. Errors throw std::runtime_error.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "tensor/im2col.hpp"

namespace murmur {

enum class onednn_layout { plain, blocked };

class onednn_conv {
 public:
  onednn_conv();
  ~onednn_conv();
  onednn_conv(const onednn_conv&) = delete;
  onednn_conv& operator=(const onednn_conv&) = delete;

  static bool supports(const conv_geometry& g);
  void prepare(const conv_geometry& g, int64_t out_channels, int threads, onednn_layout layout,
               bool src_blocked = false, bool dst_blocked = false);
  void forward(const float* x, const float* w, const float* b, float* y);
  // dW, db from x and dy; dx = W^T dy unless dx is null.
  void backward(const float* x, const float* dy, const float* w, float* dw, float* db, float* dx);
  // The implementations oneDNN chose (e.g. "jit:avx512_core"), for the docs.
  std::string kernels() const;

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace murmur
