#include "actors/update_attack.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>

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
  ids_.assign(neighbours.begin(), neighbours.end());
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

bool update_attack::acts(uint64_t step) {
  if (a_.kind == attack_kind::none || step < a_.start_step) return false;
  if (a_.every == 0) {
    if (acted_) return false;
    acted_ = true;
    return true;
  }
  return (step - a_.start_step) % a_.every == 0;
}

void update_attack::draw_extreme() {
  const size_t count = std::min(kExtremeCoords, dim_);
  while (raw_index_.size() < count) {
    auto k = static_cast<uint32_t>(rng_.below(dim_));
    if (std::find(raw_index_.begin(), raw_index_.end(), k) == raw_index_.end()) raw_index_.push_back(k);
  }
  std::sort(raw_index_.begin(), raw_index_.end());
  const double m = std::min<double>(a_.scale > 0 ? a_.scale : 1e30, FLT_MAX);
  for (size_t i = 0; i < count; ++i) raw_value_.push_back(static_cast<float>(rng_.uniform() < 0.5 ? -m : m));
}

const std::vector<std::vector<float>>& update_attack::isolate(std::span<const float> honest_hat,
                                                              const std::vector<std::vector<float>>& nbr_hat) {
  const size_t n = ids_.size();
  if (nbr_hat.size() != n || honest_hat.size() != dim_)
    throw std::invalid_argument("update_attack::isolate: one estimate per neighbour slot, of our dimension");
  point_.resize(n);
  for (auto& p : point_) p.assign(honest_hat.begin(), honest_hat.end());
  if (!acting_ || a_.kind != attack_kind::dissensus) return point_;
  // The mean of the honest estimates we hold stands in for those we do not.
  mean_.assign(honest_hat.begin(), honest_hat.end());
  double count = 1;
  for (size_t j = 0; j < n; ++j) {
    if (colluder_[j]) continue;
    for (size_t k = 0; k < dim_; ++k) mean_[k] += nbr_hat[j][k];
    count += 1;
  }
  for (float& v : mean_) v = static_cast<float>(v / count);
  const double eps = a_.scale > 0 ? a_.scale : 1.5;
  for (size_t j = 0; j < n; ++j) {
    if (colluder_[j]) continue;
    // i = ids_[j]: its honest neighbours (other than us) and its Byzantine ones (us included).
    known_.clear();
    size_t unknown = 0, byzantine = 1;
    auto it = a_.neighbourhoods.find(ids_[j]);
    if (it != a_.neighbourhoods.end()) {
      for (uint32_t k : it->second) {
        if (colludes_with(k)) { ++byzantine; continue; }
        auto slot = std::find(ids_.begin(), ids_.end(), k) - ids_.begin();
        if (static_cast<size_t>(slot) < n && static_cast<size_t>(slot) != j) known_.push_back(nbr_hat[slot].data());
        else if (k != ids_[j]) ++unknown;
      }
    } else {
      for (size_t s = 0; s < n; ++s) unknown += s != j && !colluder_[s];  // a neighbourhood like ours
    }
    const double honest_count = static_cast<double>(known_.size() + unknown);
    const double c = eps / static_cast<double>(byzantine);
    const float* xi = nbr_hat[j].data();
    float* out = point_[j].data();
    for (size_t k = 0; k < dim_; ++k) {
      double sum = static_cast<double>(unknown) * mean_[k];
      for (const float* xk : known_) sum += xk[k];
      out[k] = static_cast<float>(xi[k] - c * (sum - honest_count * xi[k]));
    }
  }
  return point_;
}

std::span<const float> update_attack::poison(std::span<const float> honest, uint64_t step) {
  acting_ = acts(step);
  raw_index_.clear();
  raw_value_.clear();
  seen_.clear();
  seen_.push_back(honest.data());
  for (size_t j = 0; j < update_.size(); ++j)
    if (heard_[j]) seen_.push_back(update_[j].data());
  const size_t n = seen_.size();
  const double inv_n = 1.0 / static_cast<double>(n);

  // extreme and dissensus keep x_pub honest; they forge frames, not updates.
  const bool forges_update = acting_ && a_.kind != attack_kind::extreme && a_.kind != attack_kind::dissensus;
  if (!forges_update) {
    for (size_t k = 0; k < dim_; ++k) target_[k] += honest[k];
    if (acting_ && a_.kind == attack_kind::extreme) draw_extreme();
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
      case attack_kind::ipm: if (c <= 0) c = 0.1; break;
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
        case attack_kind::sign_flip:
        case attack_kind::ipm: p = -c * mu; break;
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
