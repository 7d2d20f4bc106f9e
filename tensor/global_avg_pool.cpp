#include "tensor/global_avg_pool.hpp"

#include <stdexcept>

namespace murmur {

Shape GlobalAvgPool2d::output_shape(const Shape& in) const {
  if (in.size() != 3) throw std::invalid_argument("gap expects input [C,H,W], got " + shape_str(in));
  return {in[0], 1, 1};
}

const Tensor& GlobalAvgPool2d::forward(const Tensor& x) {
  if (x.ndim() != 4) throw std::invalid_argument("gap: bad input " + shape_str(x.shape()));
  if (x_shape_ != x.shape()) x_shape_ = x.shape();
  const int64_t planes = x.dim(0) * x.dim(1), S = x.dim(2) * x.dim(3);
  ensure_shape(y_, {x.dim(0), x.dim(1), 1, 1});
  const float* xs = x.data();
  float* y = y_.data();
  for (int64_t p = 0; p < planes; ++p) {
    double s = 0;
    for (int64_t i = 0; i < S; ++i) s += xs[p * S + i];
    y[p] = static_cast<float>(s / static_cast<double>(S));
  }
  return y_;
}

const Tensor& GlobalAvgPool2d::backward(const Tensor& dy) {
  if (dy.numel() != y_.numel()) throw std::invalid_argument("gap: bad gradient " + shape_str(dy.shape()));
  if (!need_input_grad_) return dx_;
  ensure_shape(dx_, x_shape_);
  const int64_t planes = x_shape_[0] * x_shape_[1], S = x_shape_[2] * x_shape_[3];
  const float inv = 1.f / static_cast<float>(S);
  const float* g = dy.data();
  float* dx = dx_.data();
  for (int64_t p = 0; p < planes; ++p) {
    const float v = g[p] * inv;
    for (int64_t i = 0; i < S; ++i) dx[p * S + i] = v;
  }
  return dx_;
}

}  // namespace murmur
