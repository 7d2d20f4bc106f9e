// Element-wise activations. Each keeps its output (all three derivatives are
// cheap functions of y), so backward needs no copy of the input.
#pragma once
#include "tensor/layer.hpp"

namespace murmur {

class Activation : public Layer {
 public:
  Shape output_shape(const Shape& in) const override { return in; }
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  void share_buffers(Layer& owner) override;
  // Element-wise: any layout, the output in the input's.
  bool blocked_input_ok(const Shape& in) const override;
  bool blocked_output_ok(const Shape& in) const override { return blocked_input_ok(in); }
  bool layouts_tied() const override { return true; }

 protected:
  virtual void apply(const float* x, float* y, int64_t n) const = 0;
  // dx = dy * f'(x), with f'(x) written in terms of y = f(x).
  virtual void derive(const float* y, const float* dy, float* dx, int64_t n) const = 0;

 private:
  Tensor y_, dx_;
};

// max(x, 0); the gradient at exactly 0 is 0, as in PyTorch.
class ReLU : public Activation {
 public:
  std::string name() const override { return "relu"; }

 protected:
  void apply(const float* x, float* y, int64_t n) const override;
  void derive(const float* y, const float* dy, float* dx, int64_t n) const override;
};

class Sigmoid : public Activation {
 public:
  std::string name() const override { return "sigmoid"; }

 protected:
  void apply(const float* x, float* y, int64_t n) const override;
  void derive(const float* y, const float* dy, float* dx, int64_t n) const override;
};

class Tanh : public Activation {
 public:
  std::string name() const override { return "tanh"; }

 protected:
  void apply(const float* x, float* y, int64_t n) const override;
  void derive(const float* y, const float* dy, float* dx, int64_t n) const override;
};

}  // namespace murmur
