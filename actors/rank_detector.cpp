#include "actors/rank_detector.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/rng.hpp"

namespace murmur {

rank_detector::rank_detector(const detect_settings& s, uint32_t self, size_t dim) : s_(s), self_(self) {
  if (s_.window == 0) s_.window = 1;
  starts_.resize(std::max<uint64_t>(1, s_.span));
  if (s_.patience == 0) s_.patience = 1;
  const size_t m = s_.coords == 0 ? dim : std::min<size_t>(dim, s_.coords);
  std::vector<uint32_t> all(dim);
  std::iota(all.begin(), all.end(), 0u);
  if (m < dim) {
    // Partial Fisher-Yates: the first m of a seeded shuffle.
    Rng rng = Rng(s_.seed).fork(self);
    for (size_t i = 0; i < m; ++i) std::swap(all[i], all[i + rng.below(dim - i)]);
    all.resize(m);
    std::sort(all.begin(), all.end());
  }
  coords_ = std::move(all);
}

uint64_t& rank_detector::streak_of(uint32_t peer) {
  for (size_t i = 0; i < streak_ids_.size(); ++i)
    if (streak_ids_[i] == peer) return streak_[i];
  streak_ids_.push_back(peer);
  streak_.push_back(0);
  return streak_.back();
}

std::span<const uint32_t> rank_detector::on_round(std::span<const float> self_estimate,
                                                  std::span<const uint32_t> ids,
                                                  std::span<const std::vector<float>> estimates,
                                                  std::span<const uint64_t> rounds) {
  report_.clear();
  // The oldest snapshot kept: span windows ago, or the first one.
  const size_t span = starts_.size();
  if (++round_ % s_.window == 0 && taken_ > 0)
    check(starts_[taken_ < span ? 0 : taken_ % span], self_estimate, ids, estimates, rounds);
  if (round_ % s_.window == 0 || taken_ == 0) snapshot(starts_[taken_++ % span], self_estimate, ids, estimates, rounds);
  return report_;
}

void rank_detector::snapshot(window_start& w, std::span<const float> self_estimate, std::span<const uint32_t> ids,
                             std::span<const std::vector<float>> estimates, std::span<const uint64_t> rounds) {
  const size_t m = coords_.size();
  w.ids.assign(1, self_);
  w.rounds.assign(1, 0);
  w.values.resize((ids.size() + 1) * m);
  for (size_t c = 0; c < m; ++c) w.values[c] = self_estimate[coords_[c]];
  for (size_t i = 0; i < ids.size(); ++i) {
    w.ids.push_back(ids[i]);
    w.rounds.push_back(rounds[i]);
    float* row = w.values.data() + (i + 1) * m;
    const float* e = estimates[i].data();
    for (size_t c = 0; c < m; ++c) row[c] = e[coords_[c]];
  }
}

void rank_detector::check(const window_start& from, std::span<const float> self_estimate,
                          std::span<const uint32_t> ids, std::span<const std::vector<float>> estimates,
                          std::span<const uint64_t> rounds) {
  const size_t m = coords_.size();
  // The members: ourselves, then each neighbour that was here at the window's
  // start and has been heard from since (a silent one tells nothing).
  members_.assign(1, self_);
  change_.resize((ids.size() + 1) * m);
  for (size_t c = 0; c < m; ++c) change_[c] = self_estimate[coords_[c]] - from.values[c];
  for (size_t i = 0; i < ids.size(); ++i) {
    size_t s = 1;
    while (s < from.ids.size() && from.ids[s] != ids[i]) ++s;
    if (s == from.ids.size() || rounds[i] == from.rounds[s]) continue;
    float* row = change_.data() + members_.size() * m;
    const float* before = from.values.data() + s * m;
    const float* e = estimates[i].data();
    for (size_t c = 0; c < m; ++c) row[c] = e[coords_[c]] - before[c];
    members_.push_back(ids[i]);
  }
  features_.clear();
  const size_t n = members_.size();
  if (n < 4) return;
  ++checks_;
  rank_.resize(n);
  sum_e_.assign(n, 0.0);
  sum_e2_.assign(n, 0.0);
  sum_a_.assign(n, 0.0);
  const double mid = 0.5 * static_cast<double>(n + 1), half = 0.5 * static_cast<double>(n - 1);
  size_t informative = 0;
  for (size_t c = 0; c < m; ++c) {
    const float first = change_[c];
    bool all_equal = true;
    for (size_t j = 1; j < n && all_equal; ++j) all_equal = change_[j * m + c] == first;
    if (all_equal) continue;
    ++informative;
    // The direction most members moved in: the sign of the sum of their signs.
    int votes = 0;
    for (size_t j = 0; j < n; ++j) {
      const float v = change_[j * m + c];
      votes += (v > 0) - (v < 0);
    }
    const double direction = (votes > 0) - (votes < 0);
    for (size_t j = 0; j < n; ++j) {
      const float v = change_[j * m + c];
      size_t less = 0, equal = 0;
      for (size_t i = 0; i < n; ++i) {
        const float w = change_[i * m + c];
        less += w < v;
        equal += w == v;
      }
      // Mid-rank: the mean of the ranks less+1 .. less+equal.
      const double e = (static_cast<double>(less) + 0.5 * static_cast<double>(equal + 1) - mid) / half;
      sum_e_[j] += e;
      sum_e2_[j] += e * e;
      sum_a_[j] += e * direction;
    }
  }
  if (informative < 64) return;
  const double inv = 1.0 / static_cast<double>(informative);
  for (size_t j = 0; j < n; ++j)
    features_.push_back({members_[j], sum_e_[j] * inv, std::sqrt(sum_e2_[j] * inv), sum_a_[j] * inv, false});
  const rank_features& self = features_[0];
  // The centre: the (upper) median of each feature over all members, ourselves included.
  auto centre = [&](double rank_features::*feature) {
    for (size_t j = 0; j < n; ++j) rank_[j] = features_[j].*feature;
    auto mid = rank_.begin() + static_cast<std::ptrdiff_t>(n / 2);
    std::nth_element(rank_.begin(), mid, rank_.begin() + static_cast<std::ptrdiff_t>(n));
    return *mid;
  };
  const double cu = centre(&rank_features::u), cv = centre(&rank_features::v), ca = centre(&rank_features::a);
  for (size_t j = 1; j < n; ++j) {
    auto& f = features_[j];
    const double from_self = std::max({std::fabs(f.u - self.u), std::fabs(f.v - self.v), std::fabs(f.a - self.a)});
    const double from_centre = std::max({std::fabs(f.u - cu), std::fabs(f.v - cv), std::fabs(f.a - ca)});
    f.flagged = from_self > s_.threshold && from_centre > s_.threshold;
    uint64_t& streak = streak_of(f.peer);
    streak = f.flagged ? streak + 1 : 0;
    if (streak == s_.patience) report_.push_back(f.peer);
  }
}

}  // namespace murmur
