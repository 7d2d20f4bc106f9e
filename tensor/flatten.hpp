// Flatten: [B, d1, d2, ...] -> [B, d1*d2*...] as a view of the input (no
// copy); backward is the reverse view of dy.
#pragma once
#include "tensor/layer.hpp"

namespace murmur {

class Flatten : public Layer {
 public:
  std::string name() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override { return {shape_numel(in)}; }
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;

 private:
  // Views are rebuilt only when the source buffer or shape changes: building
  // one allocates a Shape, which steady-state steps must not do.
  Tensor y_, dx_;
  Shape x_shape_;
};

}  // namespace murmur
