#include "tensor/groupnorm.hpp"

#include <cmath>
#include <stdexcept>

namespace murmur {

GroupNorm::GroupNorm(int64_t channels, int64_t groups) : c_(channels), g_(groups) {
  if (channels <= 0 || groups <= 0 || channels % groups != 0)
    throw std::invalid_argument("groupnorm: " + std::to_string(channels) + " channels do not split into " +
                                std::to_string(groups) + " groups");
}

std::string GroupNorm::name() const {
  return "groupnorm(" + std::to_string(g_) + "," + std::to_string(c_) + ")";
}

Shape GroupNorm::output_shape(const Shape& in) const {
  if (in.empty() || in[0] != c_)
    throw std::invalid_argument(name() + " expects input [" + std::to_string(c_) + ",...], got " + shape_str(in));
  return in;
}

void GroupNorm::bind(float* params, float* grads) {
  w_ = params;
  b_ = params + c_;
  dw_ = grads;
  db_ = grads + c_;
}

void GroupNorm::init(Rng& /*rng*/) {
  for (int64_t c = 0; c < c_; ++c) {
    w_[c] = 1.f;
    b_[c] = 0.f;
  }
}

void groupnorm_forward(const float* xs, int64_t B, int64_t C, int64_t S, int64_t G, const float* wt,
                       const float* bs, float* y, float* xh, float* rstd_out) {
  constexpr float eps = GroupNorm::eps;
  const int64_t cg = C / G, n = cg * S;
  for (int64_t bg = 0; bg < B * G; ++bg) {
    const float* xp = xs + bg * n;
    // Two passes in double: the mean first, then the variance around it
    // (no cancellation from E[x^2] - E[x]^2).
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += xp[i];
    const double mean = s / static_cast<double>(n);
    double v = 0;
    for (int64_t i = 0; i < n; ++i) v += (xp[i] - mean) * (xp[i] - mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(n) + eps));
    rstd_out[bg] = rstd;
    const float m = static_cast<float>(mean);
    const int64_t c0 = (bg % G) * cg;
    for (int64_t c = 0; c < cg; ++c) {
      const float w = wt[c0 + c], b = bs[c0 + c];
      const float* xc = xp + c * S;
      float* hc = xh + bg * n + c * S;
      float* yc = y + bg * n + c * S;
      for (int64_t i = 0; i < S; ++i) {
        hc[i] = (xc[i] - m) * rstd;
        yc[i] = hc[i] * w + b;
      }
    }
  }
}

// With xhat = (x - mean) * rstd and g = dy * w over one (sample, group) of n
// elements: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
void groupnorm_backward(const float* g, const float* xh, const float* rstd_in, const float* wt, int64_t B,
                        int64_t C, int64_t S, int64_t G, float* dx, float* dw, float* db) {
  const int64_t cg = C / G, n = cg * S;
  for (int64_t c = 0; c < C; ++c) dw[c] = db[c] = 0.f;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const float* gc = g + (b * C + c) * S;
      const float* hc = xh + (b * C + c) * S;
      double sw = 0, sb = 0;
      for (int64_t i = 0; i < S; ++i) {
        sw += gc[i] * hc[i];
        sb += gc[i];
      }
      dw[c] += static_cast<float>(sw);
      db[c] += static_cast<float>(sb);
    }
  if (!dx) return;
  for (int64_t bg = 0; bg < B * G; ++bg) {
    const int64_t c0 = (bg % G) * cg;
    const float* gp = g + bg * n;
    const float* hp = xh + bg * n;
    double sg = 0, sgh = 0;
    for (int64_t c = 0; c < cg; ++c) {
      const double w = wt[c0 + c];
      for (int64_t i = 0; i < S; ++i) {
        const double gi = gp[c * S + i] * w;
        sg += gi;
        sgh += gi * hp[c * S + i];
      }
    }
    const float mg = static_cast<float>(sg / static_cast<double>(n));
    const float mgh = static_cast<float>(sgh / static_cast<double>(n));
    const float rstd = rstd_in[bg];
    float* dp = dx + bg * n;
    for (int64_t c = 0; c < cg; ++c) {
      const float w = wt[c0 + c];
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = c * S + i;
        dp[k] = rstd * (gp[k] * w - mg - hp[k] * mgh);
      }
    }
  }
}

const Tensor& GroupNorm::forward(const Tensor& x) {
  if (x.ndim() < 2 || x.dim(1) != c_)
    throw std::invalid_argument(name() + ": bad input " + shape_str(x.shape()));
  B_ = x.dim(0);
  S_ = B_ ? x.numel() / (B_ * c_) : 0;
  ensure_shape(xhat_, x.shape());
  ensure_shape(y_, x.shape());
  rstd_.resize(static_cast<size_t>(B_ * g_));  // keeps capacity
  groupnorm_forward(x.data(), B_, c_, S_, g_, w_, b_, y_.data(), xhat_.data(), rstd_.data());
  return y_;
}

const Tensor& GroupNorm::backward(const Tensor& dy) {
  if (dy.numel() != y_.numel()) throw std::invalid_argument(name() + ": bad gradient " + shape_str(dy.shape()));
  float* dx = nullptr;
  if (need_input_grad_) {
    ensure_shape(dx_, y_.shape());
    dx = dx_.data();
  }
  groupnorm_backward(dy.data(), xhat_.data(), rstd_.data(), w_, B_, c_, S_, g_, dx, dw_, db_);
  return dx_;
}

}  // namespace murmur
