#include "tensor/linear.hpp"

#include <cmath>
#include <stdexcept>

#include "tensor/gemm.hpp"

namespace murmur {

Linear::Linear(int64_t in, int64_t out) : in_(in), out_(out) {
  if (in <= 0 || out <= 0)
    throw std::invalid_argument("linear: sizes must be positive, got " + std::to_string(in) +
                                "->" + std::to_string(out));
}

std::string Linear::name() const {
  return "linear(" + std::to_string(in_) + "->" + std::to_string(out_) + ")";
}

Shape Linear::output_shape(const Shape& in) const {
  if (in.size() != 1 || in[0] != in_)
    throw std::invalid_argument(name() + " expects input [" + std::to_string(in_) + "], got " +
                                shape_str(in) + " (add flatten?)");
  return {out_};
}

void Linear::bind(float* params, float* grads) {
  w_ = params;
  b_ = params + out_ * in_;
  dw_ = grads;
  db_ = grads + out_ * in_;
}

void Linear::init(Rng& rng) {
  // kaiming_uniform_(a=sqrt(5)) reduces to this bound; the bias uses the same.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
  for (int64_t i = 0; i < out_ * in_; ++i) w_[i] = static_cast<float>(rng.uniform(-bound, bound));
  for (int64_t i = 0; i < out_; ++i) b_[i] = static_cast<float>(rng.uniform(-bound, bound));
}

void Linear::product(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float beta,
                     float* c) {
  if (route_)
    route_->run({ta, tb, m, n, k, a, b, beta, c});
  else
    gemm(ta, tb, m, n, k, 1.f, a, b, beta, c);
}

const Tensor& Linear::forward(const Tensor& x) {
  const int64_t B = x.ndim() > 0 ? x.dim(0) : 0;
  if (x.ndim() < 2 || x.numel() != B * in_)
    throw std::invalid_argument(name() + ": bad input " + shape_str(x.shape()));
  x_ = x.data();
  batch_ = B;
  if (x_shape_ != x.shape()) x_shape_ = x.shape();
  ensure_shape(y_, {B, out_});
  float* y = y_.data();
  // Seed every row with the bias so the gemm adds into it (beta = 1).
  for (int64_t r = 0; r < B; ++r)
    for (int64_t j = 0; j < out_; ++j) y[r * out_ + j] = b_[j];
  if (B > 0) product(false, true, B, out_, in_, x_, w_, 1.f, y);
  return y_;
}

const Tensor& Linear::backward(const Tensor& dy) {
  const int64_t B = batch_;
  if (dy.numel() != B * out_)
    throw std::invalid_argument(name() + ": bad gradient " + shape_str(dy.shape()));
  const float* g = dy.data();
  dy_ = g;
  if (B > 0) {
    product(true, false, out_, in_, B, g, x_, 0.f, dw_);  // dW = dy^T x
  } else {
    for (int64_t i = 0; i < out_ * in_; ++i) dw_[i] = 0.f;
  }
  for (int64_t j = 0; j < out_; ++j) db_[j] = 0.f;
  for (int64_t r = 0; r < B; ++r)
    for (int64_t j = 0; j < out_; ++j) db_[j] += g[r * out_ + j];
  if (need_input_grad_) {
    ensure_shape(dx_, x_shape_);
    if (B > 0) product(false, false, B, in_, out_, g, w_, 0.f, dx_.data());  // dx = dy W
  }
  return dx_;
}

void Linear::share_buffers(Layer& owner) {
  auto& o = dynamic_cast<Linear&>(owner);
  share_buffer(y_, o.y_);
  share_buffer(dx_, o.dx_);
}

}  // namespace murmur
