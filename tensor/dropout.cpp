#include "tensor/dropout.hpp"

#include <cstdio>
#include <stdexcept>

namespace murmur {

namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t dropout_key(uint64_t seed, uint64_t call) { return splitmix64(seed ^ splitmix64(call)); }

void dropout_mask_apply(const float* x, float* y, float* m, int64_t n, double p, uint64_t key) {
  // Keep when a 53-bit uniform u >= p (P = 1 - p, as torch's bernoulli(1 - p)).
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(splitmix64(key + static_cast<uint64_t>(i)) >> 11) * 0x1.0p-53;
    m[i] = u >= p ? scale : 0.f;
    y[i] = x[i] * m[i];
  }
}

Dropout::Dropout(double p) : p_(p) {
  if (!(p >= 0.0 && p < 1.0))
    throw std::invalid_argument("dropout: probability " + std::to_string(p) + " is not in [0, 1)");
}

std::string Dropout::name() const {
  char buf[48];
  std::snprintf(buf, sizeof buf, "dropout(%g)", p_);
  return buf;
}

const Tensor& Dropout::forward(const Tensor& x) {
  masked_ = training_ && p_ > 0.0;
  ensure_shape(y_, x.shape());
  const int64_t n = x.numel();
  const float* xs = x.data();
  float* y = y_.data();
  if (!masked_) {
    for (int64_t i = 0; i < n; ++i) y[i] = xs[i];
    return y_;
  }
  ensure_shape(mask_, x.shape());
  float* m = mask_.data();
  dropout_mask_apply(xs, y, m, n, p_, dropout_key(seed_, ++calls_));
  return y_;
}

const Tensor& Dropout::backward(const Tensor& dy) {
  if (dy.numel() != y_.numel()) throw std::invalid_argument(name() + ": bad gradient " + shape_str(dy.shape()));
  if (!need_input_grad_) return dx_;
  ensure_shape(dx_, y_.shape());
  const int64_t n = dy.numel();
  const float* g = dy.data();
  float* dx = dx_.data();
  if (!masked_) {
    for (int64_t i = 0; i < n; ++i) dx[i] = g[i];
  } else {
    const float* m = mask_.data();
    for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * m[i];
  }
  return dx_;
}

}  // namespace murmur
