// onednn_pool: MaxPool2d(k) (window k, stride k, no padding, floor mode) on
// oneDNN's max-pooling primitives over the layer's buffers: x and dx
// [B, C, H, W], y and dy [B, C, H/k, W/k], each side nchw or nChw16c
// (tensor/channel_blocked.hpp) as the caller says. oneDNN keeps the index
// of each window's maximum in its own workspace (kept here) for backward.
// Contract:
//  - prepare(shape, k, threads, src_blocked, dst_blocked) creates the
//    forward and backward primitives, the workspace and any reorder once per
//    shape, thread count and layouts; the same arguments again cost a
//    comparison (no allocation or primitive creation per step).
//  - The primitives run on the input's layout (nChw16c is oneDNN's fast
//    one: its nchw kernel costs about 4x); an output side in the other
//    layout goes through an internal buffer and one reorder.
//  - forward / backward run on the calling thread with an OpenMP team of
//    `threads` (set on every call, as onednn_conv does); backward needs the
//    workspace of the last forward and overwrites all of dx.
//  - Errors throw std::runtime_error.
#pragma once
#include <cstdint>
#include <memory>

namespace murmur {

class onednn_pool {
 public:
  onednn_pool();
  ~onednn_pool();
  onednn_pool(const onednn_pool&) = delete;
  onednn_pool& operator=(const onednn_pool&) = delete;

  // Whether the shape tiles exactly (h and w multiples of k): floor mode's
  // dropped edge would be a negative right padding, which oneDNN rejects.
  static bool supports(int64_t h, int64_t w, int64_t k) { return h >= k && w >= k && h % k == 0 && w % k == 0; }
  void prepare(int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t k, int threads, bool src_blocked = false,
               bool dst_blocked = false);
  void forward(const float* x, float* y);
  void backward(const float* dy, float* dx);

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace murmur
