#include "tensor/flatten.hpp"

#include <stdexcept>

namespace murmur {

const Tensor& Flatten::forward(const Tensor& x) {
  if (x.ndim() < 1) throw std::invalid_argument("flatten: input has no batch dimension");
  const int64_t B = x.dim(0), f = B ? x.numel() / B : 0;
  if (y_.data() != x.data() || x_shape_ != x.shape() || y_.ndim() != 2 || y_.dim(1) != f) {
    x_shape_ = x.shape();
    y_ = x.reshape({B, f});
  }
  return y_;
}

const Tensor& Flatten::backward(const Tensor& dy) {
  if (dy.numel() != shape_numel(x_shape_))
    throw std::invalid_argument("flatten: bad gradient " + shape_str(dy.shape()));
  if (dx_.data() != dy.data() || dx_.shape() != x_shape_) dx_ = dy.reshape(x_shape_);
  return dx_;
}

}  // namespace murmur
