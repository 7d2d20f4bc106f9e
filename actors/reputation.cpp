#include "actors/reputation.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

namespace murmur {

peer_evidence& peer_evidence::operator+=(const peer_evidence& o) {
  checks_passed += o.checks_passed;
  checks_failed += o.checks_failed;
  misses += o.misses;
  verified_flops += o.verified_flops;
  return *this;
}

namespace {

void check_weights(const reputation_weights& w) {
  if (!(w.prior_pass > 0) || !(w.prior_miss > 0) || !(w.miss_weight >= 0) || !std::isfinite(w.prior_pass) ||
      !std::isfinite(w.prior_miss) || !std::isfinite(w.miss_weight))
    throw std::invalid_argument("reputation: priors must be positive and finite, the miss weight finite and >= 0 (got a " +
                                std::to_string(w.prior_pass) + ", b " + std::to_string(w.prior_miss) + ", miss weight " +
                                std::to_string(w.miss_weight) + ")");
}

}  // namespace

double standing_of(const peer_evidence& e, const reputation_weights& w) {
  check_weights(w);
  if (e.checks_failed > 0) return 0.0;
  const double pass = static_cast<double>(e.checks_passed) + w.prior_pass;
  return pass / (pass + w.miss_weight * static_cast<double>(e.misses) + w.prior_miss);
}

reputation::reputation(reputation_weights w) : w_(w) { check_weights(w_); }

void reputation::passed(uint32_t peer, double flops) {
  auto& e = evidence_[peer];
  ++e.checks_passed;
  e.verified_flops += flops;
}

void reputation::failed(uint32_t peer) { ++evidence_[peer].checks_failed; }

void reputation::missed(uint32_t peer, uint64_t n) { evidence_[peer].misses += n; }

void reputation::add(uint32_t peer, const peer_evidence& e) { evidence_[peer] += e; }

double reputation::standing(uint32_t peer) const { return standing_of(evidence(peer), w_); }

const peer_evidence& reputation::evidence(uint32_t peer) const {
  static const peer_evidence none{};
  auto it = evidence_.find(peer);
  return it == evidence_.end() ? none : it->second;
}

std::vector<uint32_t> reputation::by_standing(std::vector<uint32_t> candidates) const {
  std::vector<std::pair<double, uint32_t>> keyed;
  keyed.reserve(candidates.size());
  for (uint32_t p : candidates) keyed.emplace_back(standing(p), p);
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  for (size_t i = 0; i < keyed.size(); ++i) candidates[i] = keyed[i].second;
  return candidates;
}

reputation combine_testimony(const std::map<uint32_t, std::map<uint32_t, peer_evidence>>& reports,
                             const reputation_weights& w) {
  std::set<uint32_t> proven;
  for (const auto& [observer, about] : reports)
    for (const auto& [peer, e] : about)
      if (peer != observer && e.checks_failed > 0) proven.insert(peer);
  reputation r(w);
  for (const auto& [observer, about] : reports) {
    if (proven.count(observer)) continue;
    for (const auto& [peer, e] : about)
      if (peer != observer) r.add(peer, e);
  }
  return r;
}

}  // namespace murmur
