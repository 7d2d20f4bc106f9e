// GlobalAvgPool2d ("gap"): the mean of each channel over H and W, as
// torch.nn.AdaptiveAvgPool2d(1). [B, C, H, W] -> [B, C, 1, 1] (follow it
// with flatten before a linear layer). No parameters.
#pragma once
#include "tensor/layer.hpp"

namespace murmur {

class GlobalAvgPool2d : public Layer {
 public:
  std::string name() const override { return "gap"; }
  Shape output_shape(const Shape& in) const override;
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  int64_t forward_flops(const Shape& in) const override { return shape_numel(in); }

 private:
  Shape x_shape_;
  Tensor y_, dx_;
};

}  // namespace murmur
