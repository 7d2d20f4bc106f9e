// Conv2d: as torch.nn.Conv2d (square kernel, zero padding, no dilation or
// groups). Input [B, C, H, W] -> [B, O, OH, OW], OH = (H + 2p - k) / s + 1.
// Parameters: weight [O, C, k, k] then bias [O].
// Done as one im2col over the whole batch (columns [C*k*k, B*OH*OW]) and one
// large gemm, which keeps OpenBLAS efficient at small per-sample sizes; the
// columns are kept for the weight gradient, so nothing is recomputed, and
// backward then reuses their buffer for dL/dcolumns: one backward per forward.
#pragma once
#include "tensor/layer.hpp"

namespace murmur {

class Conv2d : public Layer {
 public:
  Conv2d(int64_t in_ch, int64_t out_ch, int64_t k, int64_t stride = 1, int64_t pad = 0);
  std::string name() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t param_count() const override { return out_ * in_ * k_ * k_ + out_; }
  void bind(float* params, float* grads) override;
  void init(Rng& rng) override;  // U(-1/sqrt(C*k*k), +) for weight and bias
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  int64_t forward_flops(const Shape& in) const override;

 private:
  int64_t in_, out_, k_, stride_, pad_;
  float *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  int64_t B_ = 0, H_ = 0, W_ = 0, OH_ = 0, OW_ = 0;
  Tensor cols_;  // [C*k*k, B*OH*OW], reused across calls
  Tensor ym_;    // gemm result / permuted dy, [O, B*OH*OW]
  Tensor y_, dx_;
  void im2col(const float* x);
  void col2im(const float* cols, float* dx) const;
};

}  // namespace murmur
