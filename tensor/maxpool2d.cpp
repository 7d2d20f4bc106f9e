#include "tensor/maxpool2d.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace murmur {

MaxPool2d::MaxPool2d(int64_t k) : k_(k) {
  if (k <= 0) throw std::invalid_argument("maxpool2d: kernel must be positive");
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  if (in.size() != 3 || in[1] < k_ || in[2] < k_)
    throw std::invalid_argument(name() + " expects input [C,H,W] with H,W >= " +
                                std::to_string(k_) + ", got " + shape_str(in));
  return {in[0], in[1] / k_, in[2] / k_};
}

const Tensor& MaxPool2d::forward(const Tensor& x) {
  if (x.ndim() != 4 || x.dim(2) < k_ || x.dim(3) < k_)
    throw std::invalid_argument(name() + ": bad input " + shape_str(x.shape()));
  if (x_shape_ != x.shape()) x_shape_ = x.shape();
  const int64_t planes = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = H / k_, OW = W / k_;
  ensure_shape(y_, {x.dim(0), x.dim(1), OH, OW});
  argmax_.resize(static_cast<size_t>(planes * OH * OW));  // keeps capacity
  const float* xs = x.data();
  float* y = y_.data();
  int32_t* am = argmax_.data();
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = xs + pl * H * W;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t best = oh * k_ * W + ow * k_;
        float m = xp[best];
        for (int64_t i = 0; i < k_; ++i)
          for (int64_t j = 0; j < k_; ++j) {
            const int64_t at = (oh * k_ + i) * W + ow * k_ + j;
            // NaN wins (and stays), as in PyTorch, so divergence is visible.
            if (xp[at] > m || std::isnan(xp[at])) {
              if (std::isnan(m)) continue;
              m = xp[at];
              best = at;
            }
          }
        *y++ = m;
        *am++ = static_cast<int32_t>(best);
      }
  }
  return y_;
}

const Tensor& MaxPool2d::backward(const Tensor& dy) {
  if (dy.numel() != y_.numel())
    throw std::invalid_argument(name() + ": bad gradient " + shape_str(dy.shape()));
  if (!need_input_grad_) return dx_;
  ensure_shape(dx_, x_shape_);
  const int64_t planes = x_shape_[0] * x_shape_[1], HW = x_shape_[2] * x_shape_[3];
  const int64_t per_plane = y_.dim(2) * y_.dim(3);
  float* dx = dx_.data();
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(dx_.numel()));
  const float* g = dy.data();
  const int32_t* am = argmax_.data();
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* dp = dx + pl * HW;
    for (int64_t q = 0; q < per_plane; ++q) dp[*am++] += *g++;
  }
  return dx_;
}

}  // namespace murmur
