#include "tensor/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <vector>

namespace murmur {

namespace {

std::string num(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
  return buf;
}

}  // namespace

// Optimizer state that decays geometrically with no gradient (a momentum
// of 0.9, Adam's moments) sinks into the subnormal floats and stays there:
// 0.9 x (k units of the last place) rounds back to k for k <= 4, so such
// values never reach 0. Every arithmetic operation on a subnormal takes a
// microcode assist on x86 (about a hundred cycles): in a Fashion-MNIST run
// 17 % of the MLP's momentum buffer was subnormal after 1000 steps, and
// the update took 28 % of the step. So state is flushed to +0 once it falls
// below the smallest normal float. A parameter moves by lr x state, which
// for a subnormal state is below half a unit in the last place of any
// normal parameter: the parameters do not change; torch keeps the
// subnormals (and their cost). gpu/cuda_kernels_elementwise.cu flushes alike.
namespace {
inline float flush_subnormal(float v) { return std::fabs(v) < std::numeric_limits<float>::min() ? 0.f : v; }
}  // namespace

// The update is memory-bound and ran as 4-wide SSE2 (the build targets
// baseline x86-64): an AVX-512 clone where the CPU has it. Both clones
// round alike: each element sees the same multiplies and adds in the same
// order, each rounded once (fp-contract=off: no fused multiply-add).
[[gnu::target_clones("avx512f", "default"), gnu::optimize("fp-contract=off")]]
void sgd_update(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n, float lr,
                float momentum, float weight_decay, bool first) {
  const float m = momentum, wd = weight_decay;
  if (m == 0.f) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
  if (first) {  // torch: buf = d (a clone), not m * 0 + d
    for (int64_t i = 0; i < n; ++i) {
      buf[i] = flush_subnormal(g[i] + wd * p[i]);
      p[i] -= lr * buf[i];
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    buf[i] = flush_subnormal(m * buf[i] + (g[i] + wd * p[i]));
    p[i] -= lr * buf[i];
  }
}

void adam_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                 float eps_in, float weight_decay, uint64_t t) {
  // Bias corrections in double, as torch computes them in Python floats.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float b1 = beta1, b2 = beta2, c1 = 1.f - beta1, c2 = 1.f - beta2, eps = eps_in, wd = weight_decay;
  for (int64_t i = 0; i < n; ++i) {
    const float d = g[i] + wd * p[i];
    m[i] = flush_subnormal(b1 * m[i] + c1 * d);
    v[i] = flush_subnormal(b2 * v[i] + c2 * d * d);
    p[i] -= step_size * (m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps));  // torch's rounding order
  }
}

namespace {

class Sgd : public Optimizer {
 public:
  Sgd(int64_t n, float momentum, float wd)
      : n_(n), momentum_(momentum), wd_(wd), buf_(momentum != 0.f ? static_cast<size_t>(n) : 0) {}

  void step(float* p, const float* g, float lr) override {
    ++steps_;
    sgd_update(p, g, buf_.data(), n_, lr, momentum_, wd_, first_);
    if (momentum_ != 0.f) first_ = false;
  }

  std::string name() const override {
    return "sgd(momentum=" + num(momentum_) + ", weight_decay=" + num(wd_) + ")";
  }

  optimizer_state save_state() const override {
    optimizer_state s;
    save_state_into(s);
    return s;
  }

  void save_state_into(optimizer_state& s) const override {
    s.steps = steps_;
    if (first_) s.values.clear();
    else s.values.assign(buf_.begin(), buf_.end());
  }

  bool view_state(uint64_t& steps, std::span<const float>& first, std::span<const float>& second) const override {
    steps = steps_;
    first = first_ ? std::span<const float>() : std::span<const float>(buf_);
    second = {};
    return true;
  }

  void load_state(const optimizer_state& s) override {
    const size_t want = (momentum_ != 0.f && s.steps > 0) ? buf_.size() : 0;
    if (s.values.size() != want)
      throw std::invalid_argument("sgd state: " + std::to_string(s.values.size()) + " values after " +
                                  std::to_string(s.steps) + " steps, expected " + std::to_string(want));
    steps_ = s.steps;
    first_ = s.steps == 0;
    if (want) buf_ = s.values;
  }

 private:
  int64_t n_;
  float momentum_, wd_;
  std::vector<float> buf_;
  bool first_ = true;
  uint64_t steps_ = 0;
};

class Adam : public Optimizer {
 public:
  Adam(int64_t n, float b1, float b2, float eps, float wd)
      : n_(n), b1_(b1), b2_(b2), eps_(eps), wd_(wd), m_(static_cast<size_t>(n)),
        v_(static_cast<size_t>(n)) {}

  void step(float* p, const float* g, float lr) override {
    ++t_;
    adam_update(p, g, m_.data(), v_.data(), n_, lr, b1_, b2_, eps_, wd_, static_cast<uint64_t>(t_));
  }

  std::string name() const override {
    return "adam(betas=(" + num(b1_) + ", " + num(b2_) + "), eps=" + num(eps_) +
           ", weight_decay=" + num(wd_) + ")";
  }

  optimizer_state save_state() const override {
    optimizer_state s;
    save_state_into(s);
    return s;
  }

  void save_state_into(optimizer_state& s) const override {
    s.steps = static_cast<uint64_t>(t_);
    s.values.resize(m_.size() * 2);
    std::copy(m_.begin(), m_.end(), s.values.begin());
    std::copy(v_.begin(), v_.end(), s.values.begin() + static_cast<std::ptrdiff_t>(m_.size()));
  }

  bool view_state(uint64_t& steps, std::span<const float>& first, std::span<const float>& second) const override {
    steps = static_cast<uint64_t>(t_);
    first = m_;
    second = v_;
    return true;
  }

  void load_state(const optimizer_state& s) override {
    if (s.values.size() != m_.size() * 2)
      throw std::invalid_argument("adam state: " + std::to_string(s.values.size()) + " values, expected " +
                                  std::to_string(m_.size() * 2));
    t_ = static_cast<int64_t>(s.steps);
    std::copy(s.values.begin(), s.values.begin() + static_cast<std::ptrdiff_t>(m_.size()), m_.begin());
    std::copy(s.values.begin() + static_cast<std::ptrdiff_t>(m_.size()), s.values.end(), v_.begin());
  }

 private:
  int64_t n_;
  float b1_, b2_, eps_, wd_;
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

void check_n(int64_t n, const char* what) {
  if (n < 0) throw std::invalid_argument(std::string(what) + ": negative parameter count");
}

}  // namespace

std::unique_ptr<Optimizer> make_sgd(int64_t n, float momentum, float weight_decay) {
  check_n(n, "make_sgd");
  return std::make_unique<Sgd>(n, momentum, weight_decay);
}

std::unique_ptr<Optimizer> make_adam(int64_t n, float beta1, float beta2, float eps,
                                     float weight_decay) {
  check_n(n, "make_adam");
  if (!(beta1 >= 0.f && beta1 < 1.f && beta2 >= 0.f && beta2 < 1.f && eps >= 0.f))
    throw std::invalid_argument("make_adam: need 0 <= beta < 1 and eps >= 0");
  return std::make_unique<Adam>(n, beta1, beta2, eps, weight_decay);
}

}  // namespace murmur
