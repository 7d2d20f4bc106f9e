// onednn_pool: MaxPool2d(k) (window k, stride k, no padding, floor mode) on
// oneDNN's max-pooling primitives over the layer's plain buffers: x and dx
// [B, C, H, W] (nchw), y and dy [B, C, H/k, W/k]. oneDNN keeps the index of
// each window's maximum in its own workspace (kept here) for backward.
// Contract:
//  - prepare(shape, k, threads) creates the forward and backward primitives
//    and the workspace once per shape and thread count; the same arguments
//    again cost a comparison (no allocation or primitive creation per step).
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
  void prepare(int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t k, int threads);
  void forward(const float* x, float* y);
  void backward(const float* dy, float* dx);

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace murmur
