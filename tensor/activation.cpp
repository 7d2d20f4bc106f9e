#include "tensor/activation.hpp"

#include <cmath>
#include <stdexcept>

#include "tensor/channel_blocked.hpp"

namespace murmur {

namespace {

// ReLU's two loops are a select per element over activations that do not
// fit in cache (the CNN's are megabytes): 4-wide SSE2 in the baseline
// build, an AVX-512 clone where the CPU has it (the same selects).
[[gnu::target_clones("avx512f", "default")]] void relu_apply(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
[[gnu::target_clones("avx512f", "default")]] void relu_derive(const float* y, const float* dy, float* dx,
                                                             int64_t n) {
  // Both loads unconditional, so the select vectorizes.
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];
    dx[i] = y[i] > 0.f ? g : 0.f;
  }
}

}  // namespace

bool Activation::blocked_input_ok(const Shape& in) const { return channel_blockable(in); }

const Tensor& Activation::forward(const Tensor& x) {
  ensure_shape(y_, x.shape());
  apply(x.data(), y_.data(), x.numel());
  return y_;
}

void Activation::share_buffers(Layer& owner) {
  auto& o = dynamic_cast<Activation&>(owner);
  share_buffer(y_, o.y_);
  share_buffer(dx_, o.dx_);
}

const Tensor& Activation::backward(const Tensor& dy) {
  if (dy.numel() != y_.numel())
    throw std::invalid_argument(name() + ": gradient " + shape_str(dy.shape()) +
                                " does not match output " + shape_str(y_.shape()));
  if (!need_input_grad_) return dx_;
  ensure_shape(dx_, y_.shape());
  derive(y_.data(), dy.data(), dx_.data(), y_.numel());
  return dx_;
}

void ReLU::apply(const float* x, float* y, int64_t n) const { relu_apply(x, y, n); }
void ReLU::derive(const float* y, const float* dy, float* dx, int64_t n) const { relu_derive(y, dy, dx, n); }

void Sigmoid::apply(const float* x, float* y, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
}
void Sigmoid::derive(const float* y, const float* dy, float* dx, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.f - y[i]);
}

void Tanh::apply(const float* x, float* y, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
void Tanh::derive(const float* y, const float* dy, float* dx, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
}

}  // namespace murmur
