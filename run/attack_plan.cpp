#include "run/attack_plan.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "actors/topology.hpp"
#include "run/peer_settings_from_config.hpp"
#include "run/vertex_cut.hpp"
#include "tensor/rng.hpp"

namespace murmur {

std::vector<uint32_t> attacker_ids(const RunConfig& c, uint32_t peer_count) {
  if (c.attack_kind == "none" || c.attack_fraction <= 0 || peer_count == 0) return {};
  auto m = static_cast<uint32_t>(std::llround(c.attack_fraction * peer_count));
  m = std::clamp<uint32_t>(m, 1, peer_count);
  if (c.attack_placement == "cut") return cut_vertices(run_overlay(c, peer_count), m, Rng(c.seed).fork(0xc07).next_u64());
  std::vector<uint32_t> ids(peer_count);
  std::iota(ids.begin(), ids.end(), 0u);
  Rng(c.seed).fork(0xa77acc).shuffle(ids.begin(), ids.end());
  ids.resize(m);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::vector<uint32_t>> run_overlay(const RunConfig& c, uint32_t peer_count) {
  return make_topology(gossip_mode_of(c) == gossip_mode::delta ? "complete" : c.topology, peer_count,
                       static_cast<uint32_t>(c.degree), c.seed ^ 0x70706f6c6f6779ULL);
}

attack_kind attack_kind_of(const std::string& name) {
  static const std::pair<const char*, attack_kind> names[] = {
      {"gaussian", attack_kind::gaussian},       {"zero_gradient", attack_kind::zero_gradient},
      {"mean_shift", attack_kind::mean_shift},   {"sign_flip", attack_kind::sign_flip},
      {"label_flip", attack_kind::label_flip},   {"skip_product", attack_kind::skip_product},
      {"perturb", attack_kind::perturb},         {"half_batch", attack_kind::half_batch},
      {"replay", attack_kind::replay},           {"silent_prover", attack_kind::silent_prover},
      {"extreme", attack_kind::extreme},         {"ipm", attack_kind::ipm},
      {"dissensus", attack_kind::dissensus},     {"forged_evidence", attack_kind::forged_evidence},
  };
  for (const auto& [n, k] : names)
    if (name == n) return k;
  return attack_kind::none;
}

double alie_z(uint32_t n, uint32_t m) {
  if (n == 0) return 0;
  const double s = std::floor(n / 2.0 + 1.0) - m;
  const double p = (n - s) / n;
  if (p <= 0.5) return 0;
  if (p >= 1) return 4;  // every peer attacks: any shift; Phi(4) ~ 1
  // Phi^-1(p) by bisection on Phi(z) = erfc(-z / sqrt 2) / 2, increasing in z.
  double lo = 0, hi = 8;
  for (int i = 0; i < 100; ++i) {
    double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

attack_settings attack_settings_for(const RunConfig& c, uint32_t id, uint32_t peer_count) {
  attack_settings a;
  const auto ids = attacker_ids(c, peer_count);
  if (!std::binary_search(ids.begin(), ids.end(), id)) return a;
  a.kind = attack_kind_of(c.attack_kind);
  a.scale = c.attack_scale;
  if (a.kind == attack_kind::mean_shift && a.scale <= 0)
    a.scale = alie_z(peer_count, static_cast<uint32_t>(ids.size()));
  a.noise = c.attack_noise;
  a.eps = c.attack_eps;
  a.start_step = static_cast<uint64_t>(c.attack_start_step);
  a.every = static_cast<uint64_t>(c.attack_every);
  // Without their own noise (attack.noise = 0) the colluders share one
  // stream: the same Gaussian draws, the same extreme coordinates.
  a.seed = Rng(c.seed).fork(c.attack_noise > 0 ? 200 + id : 199).next_u64();
  for (uint32_t other : ids)
    if (other != id) a.colluders.push_back(other);
  if (a.kind == attack_kind::dissensus && peer_count > 1) {
    const auto overlay = run_overlay(c, peer_count);
    for (uint32_t i : overlay[id]) {
      auto& others = a.neighbourhoods[i];
      for (uint32_t k : overlay[i])
        if (k != id) others.push_back(k);
    }
  }
  return a;
}

}  // namespace murmur
