#include "tensor/backend_optimizer.hpp"

#include <stdexcept>
#include <string>

namespace murmur {

backend_optimizer_state::backend_optimizer_state(compute_backend& be, backend_optimizer opt, int64_t n)
    : be_(be), opt_(opt), n_(n) {
  if (opt.type == backend_optimizer::kind::adam) {
    if (!(opt.beta1 >= 0.f && opt.beta1 < 1.f && opt.beta2 >= 0.f && opt.beta2 < 1.f && opt.eps >= 0.f))
      throw std::invalid_argument("backend optimizer: adam needs 0 <= beta < 1 and eps >= 0");
    a_ = be.alloc(n);
    b_ = be.alloc(n);
  } else if (opt.momentum != 0.f) {
    a_ = be.alloc(n);
  }
}

backend_optimizer_state::~backend_optimizer_state() {
  be_.free(a_);
  be_.free(b_);
}

void backend_optimizer_state::step(float* params, const float* grads, float lr) {
  ++steps_;
  if (opt_.type == backend_optimizer::kind::adam) {
    be_.adam_step(params, grads, a_, b_, n_, lr, opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay, steps_);
  } else {
    be_.sgd_step(params, grads, a_, n_, lr, opt_.momentum, opt_.weight_decay, sgd_first_);
    if (opt_.momentum != 0.f) sgd_first_ = false;
  }
}

optimizer_state backend_optimizer_state::save() const {
  optimizer_state s;
  s.steps = steps_;
  const auto n = static_cast<size_t>(n_);
  if (opt_.type == backend_optimizer::kind::adam) {
    s.values.resize(2 * n);
    be_.download(s.values.data(), a_, n_);
    be_.download(s.values.data() + n, b_, n_);
  } else if (a_ && !sgd_first_) {
    s.values.resize(n);
    be_.download(s.values.data(), a_, n_);
  }
  return s;
}

void backend_optimizer_state::load(const optimizer_state& s) {
  const auto n = static_cast<size_t>(n_);
  if (opt_.type == backend_optimizer::kind::adam) {
    if (s.values.size() != 2 * n)
      throw std::invalid_argument("adam state: " + std::to_string(s.values.size()) + " values, expected " +
                                  std::to_string(2 * n));
    be_.upload(a_, s.values.data(), n_);
    be_.upload(b_, s.values.data() + n, n_);
  } else {
    const size_t want = (a_ && s.steps > 0) ? n : 0;
    if (s.values.size() != want)
      throw std::invalid_argument("sgd state: " + std::to_string(s.values.size()) + " values after " +
                                  std::to_string(s.steps) + " steps, expected " + std::to_string(want));
    if (want) be_.upload(a_, s.values.data(), n_);
    sgd_first_ = s.steps == 0;
  }
  steps_ = s.steps;
  be_.sync();
}

}  // namespace murmur
