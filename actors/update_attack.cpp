#include "actors/update_attack.hpp"

#include <algorithm>
#include <cmath>

namespace murmur {

update_attack::update_attack(const attack_settings& a, std::span<const float> x0,
                             std::span<const uint32_t> neighbours)
    : a_(a), dim_(x0.size()), target_(x0.begin(), x0.end()), rng_(a.seed) {
  reset_neighbours(neighbours);
}

bool update_attack::colludes_with(uint32_t peer) const {
  return std::find(a_.colluders.begin(), a_.colluders.end(), peer) != a_.colluders.end();
}

void update_attack::reset_neighbours(std::span<const uint32_t> neighbours) {
  const size_t count = neighbours.size();
  update_.assign(count, std::vector<float>(dim_, 0.f));
  heard_.assign(count, 0);
  colluder_.assign(count, 0);
  for (size_t j = 0; j < count; ++j) colluder_[j] = colludes_with(neighbours[j]);
  seen_.reserve(count + 1);
}

void update_attack::observe(size_t slot, std::span<const float> before, const gossip_update& msg) {
  if (slot >= update_.size() || colluder_[slot]) return;
  float* d = update_[slot].data();
  heard_[slot] = 1;
  if (msg.kind == update_kind::dense_set) {
    for (size_t k = 0; k < dim_; ++k) d[k] += msg.values[k] - before[k];
  } else if (msg.kind != update_kind::sparse_add) {
    for (size_t i = 0; i < msg.indices.size(); ++i) d[msg.indices[i]] += msg.values[i] - before[msg.indices[i]];
  }
}

double update_attack::normal() {
  // Box-Muller, both values of each pair used: the attack draws one normal
  // per coordinate per round, so the cost matters.
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = std::max(rng_.uniform(), 1e-300), u2 = rng_.uniform();
  double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586 * u2;
  spare_ = r * std::sin(t);
  has_spare_ = true;
  return r * std::cos(t);
}

std::span<const float> update_attack::poison(std::span<const float> honest, uint64_t step) {
  seen_.clear();
  seen_.push_back(honest.data());
  for (size_t j = 0; j < update_.size(); ++j)
    if (heard_[j]) seen_.push_back(update_[j].data());
  const size_t n = seen_.size();
  const double inv_n = 1.0 / static_cast<double>(n);

  if (!a_.acts_at(step)) {
    for (size_t k = 0; k < dim_; ++k) target_[k] += honest[k];
  } else {
    // First pass: the RMS spread s of the updates.
    double var_sum = 0;
    for (size_t k = 0; k < dim_; ++k) {
      double sum = 0, sq = 0;
      for (const float* u : seen_) sum += u[k], sq += static_cast<double>(u[k]) * u[k];
      double mu = sum * inv_n;
      var_sum += std::max(0.0, sq * inv_n - mu * mu);
    }
    const double s = std::sqrt(var_sum / static_cast<double>(std::max<size_t>(1, dim_)));
    double c = a_.scale, amp = a_.noise * s;
    switch (a_.kind) {
      case attack_kind::gaussian:
        if (c <= 0) c = 30;
        amp = std::sqrt(c * c + a_.noise * a_.noise) * s;
        break;
      case attack_kind::mean_shift: if (c <= 0) c = 1; break;
      case attack_kind::sign_flip: if (c <= 0) c = 3; break;
      default: break;
    }
    for (size_t k = 0; k < dim_; ++k) {
      double sum = 0, sq = 0;
      for (const float* u : seen_) sum += u[k], sq += static_cast<double>(u[k]) * u[k];
      const double mu = sum * inv_n;
      double p = 0;
      switch (a_.kind) {
        case attack_kind::gaussian: p = mu; break;
        case attack_kind::zero_gradient: p = -sum; break;
        case attack_kind::mean_shift: p = mu - c * std::sqrt(std::max(0.0, sq * inv_n - mu * mu)); break;
        case attack_kind::sign_flip: p = -c * mu; break;
        default: p = honest[k]; break;
      }
      if (amp > 0) p += amp * normal();
      target_[k] += static_cast<float>(p);
    }
  }
  for (size_t j = 0; j < update_.size(); ++j)
    if (heard_[j]) {
      std::fill(update_[j].begin(), update_[j].end(), 0.f);
      heard_[j] = 0;
    }
  return target_;
}

}  // namespace murmur
