// Residual: y = x + body(x), body a chain of layers whose output shape equals
// its input shape (spec "res[conv2d:64:3:1:1,groupnorm:8,relu,...]").
// It is ONE layer of the enclosing Sequential (so a pipeline cut never falls
// inside a block). Parameters: the body's layers' parameters, consecutive, in
// body order, each in its own layout (as the parameters of a PyTorch module
// holding the body as an nn.Sequential: body.0.weight, body.0.bias, ...).
// Training mode, noise seeds and the input-gradient flag pass to the body.
#pragma once
#include <memory>
#include <vector>

#include "tensor/layer.hpp"

namespace murmur {

class Residual : public Layer {
 public:
  // in: the per-sample input shape; std::invalid_argument if the body maps
  // it to another shape (or is empty).
  Residual(std::vector<std::unique_ptr<Layer>> body, const Shape& in);
  std::string name() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t param_count() const override { return params_; }
  void bind(float* params, float* grads) override;
  void init(Rng& rng) override;
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  int64_t forward_flops(const Shape& in) const override;
  void set_training(bool on) override;
  void set_noise_seed(uint64_t seed) override;
  void set_need_input_grad(bool on) override;

  size_t body_size() const { return body_.size(); }
  const Layer& body(size_t i) const { return *body_[i]; }
  Layer& body(size_t i) { return *body_[i]; }  // to set a body layer's kernels or threads
  int64_t body_param_offset(size_t i) const { return offsets_[i]; }

 private:
  std::vector<std::unique_ptr<Layer>> body_;
  std::vector<Shape> shapes_;     // body layer i's per-sample input
  std::vector<int64_t> offsets_;  // body layer i's slice of the block's parameters
  int64_t params_ = 0;
  Tensor y_, dx_;
};

}  // namespace murmur
