// Linear: y = x W^T + b, as torch.nn.Linear. Parameters in the bound buffer:
// weight [out, in] (row-major, PyTorch's layout) then bias [out].
// Input [B, in] (any [B, ...] with in features per sample is accepted).
#pragma once
#include "tensor/layer.hpp"
#include "tensor/product_route.hpp"

namespace murmur {

class Linear : public Layer {
 public:
  Linear(int64_t in, int64_t out);
  std::string name() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t param_count() const override { return out_ * in_ + out_; }
  void bind(float* params, float* grads) override;
  void init(Rng& rng) override;  // U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  int64_t forward_flops(const Shape&) const override { return in_ * out_; }

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  // What the last forward/backward saw and produced (for step transcripts):
  // valid until the next forward; the gradients until the next backward.
  const float* weight() const { return w_; }
  const float* bias() const { return b_; }
  float* weight_grad() { return dw_; }
  float* bias_grad() { return db_; }
  const float* last_input() const { return x_; }
  Tensor& last_output() { return y_; }
  const float* last_output_grad() const { return dy_; }
  int64_t last_batch() const { return batch_; }
  // Products (forward, weight gradient, input gradient) go to `r` instead
  // of gemm() while it is set (null: gemm()); r must outlive its use.
  void set_product_route(product_route* r) { route_ = r; }
  void share_buffers(Layer& owner) override;

 private:
  int64_t in_, out_;
  float *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  // The input is the previous layer's buffer (or the caller's batch), which
  // must stay untouched until backward: keeping a pointer avoids a copy.
  const float* x_ = nullptr;
  const float* dy_ = nullptr;
  Shape x_shape_;
  int64_t batch_ = 0;
  Tensor y_, dx_;
  product_route* route_ = nullptr;
  void product(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float beta,
               float* c);
};

}  // namespace murmur
