// MaxPool2d(k): window k, stride k, no padding, floor mode (as
// torch.nn.MaxPool2d(k)). [B, C, H, W] -> [B, C, H/k, W/k]. The first maximum
// of a window wins ties, like PyTorch; backward sends dy to that element only.
#pragma once
#include <vector>

#include "tensor/layer.hpp"
#include "tensor/onednn_pool.hpp"

namespace murmur {

// The loops, shared with compute_backend: x [planes, H, W] -> y
// [planes, H/k, W/k], argmax the offset within its plane of each output's
// input; backward zeroes dx [planes, H, W] and routes dy there.
void maxpool2d_forward(const float* x, int64_t planes, int64_t h, int64_t w, int64_t k, float* y, int32_t* argmax);
void maxpool2d_backward(const float* dy, const int32_t* argmax, int64_t planes, int64_t h, int64_t w, int64_t k,
                        float* dx);

class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(int64_t k);
  std::string name() const override { return "maxpool2d(" + std::to_string(k_) + ")"; }
  Shape output_shape(const Shape& in) const override;
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  int64_t kernel() const { return k_; }
  // Whether oneDNN runs it (the default, where the shape tiles by k) or the
  // loops above, and oneDNN's OpenMP team size (as Conv2d's).
  void set_onednn(bool on) { onednn_ = on; }
  void set_threads(int n) { threads_ = n < 1 ? 1 : n; }
  void share_buffers(Layer& owner) override;  // the output and input gradient (argmax stays own)
  // Channel-blocked sides on the oneDNN path only.
  bool blocked_input_ok(const Shape& in) const override;
  bool blocked_output_ok(const Shape& in) const override { return blocked_input_ok(in); }
  void set_layouts(bool in_blocked, bool out_blocked) override {
    in_blocked_ = in_blocked;
    out_blocked_ = out_blocked;
  }

 private:
  int64_t k_;
  Shape x_shape_;
  std::vector<int32_t> argmax_;  // per output: offset of the max within its (b, c) plane
  Tensor y_, dx_;
  bool onednn_ = true;
  int threads_ = 1;
  bool last_onednn_ = false;
  bool in_blocked_ = false, out_blocked_ = false;
  onednn_pool dnn_;
};

}  // namespace murmur
