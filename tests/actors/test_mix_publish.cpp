// gossip_state::mix_publish: one pass for mix then publish (gossip.publish =
// before_step) must give exactly what the two calls give: parameters,
// estimates, frames and counters, on its fused path and on the paths that
// fall back to the two calls.
#include <catch2/catch.hpp>
#include <cstring>

#include "actors/gossip_state.hpp"
#include "actors/topology.hpp"
#include "tensor/rng.hpp"
#include "same_counters.hpp"

using namespace murmur;

namespace {

// Two copies of the same ring, run side by side: `apart` mixes then
// publishes, `fused` calls mix_publish. Each round a little training noise
// moves x (the same in both); frames of peers in `held` stay on the wire
// for a round (their next round falls back: frames in flight).
struct twins {
  std::vector<std::vector<float>> xa, xb;
  std::vector<gossip_state> apart, fused;
  Rng noise{41};

  twins(uint32_t n, size_t dim, const gossip_settings& s) {
    auto nb = make_topology("ring", n, 0, 0);
    std::vector<float> x0(dim);
    Rng init(9);
    for (auto& v : x0) v = static_cast<float>(0.1 * init.normal());
    for (uint32_t i = 0; i < n; ++i) {
      apart.emplace_back(i, nb[i], s, x0);
      fused.emplace_back(i, nb[i], s, x0);
      xa.push_back(x0);
    }
    xb = xa;
  }
  // Returns how many peers published a frame (the same in both, checked).
  int round(uint64_t step, uint32_t held) {
    int frames = 0;
    for (size_t i = 0; i < apart.size(); ++i) {
      apart[i].mix(xa[i]);
      auto fa = apart[i].publish(xa[i], step);
      auto fb = fused[i].mix_publish(xb[i], step);
      INFO("peer " << i << " step " << step);
      REQUIRE(fa.size() == fb.size());
      REQUIRE(std::memcmp(fa.data(), fb.data(), fa.size()) == 0);
      REQUIRE(std::memcmp(xa[i].data(), xb[i].data(), xa[i].size() * sizeof(float)) == 0);
      if (fa.empty()) continue;
      ++frames;
      std::vector<std::byte> bytes(fa.begin(), fa.end());
      for (uint32_t j : apart[i].neighbours()) {
        REQUIRE(apart[j].receive(static_cast<uint32_t>(i), bytes));
        REQUIRE(fused[j].receive(static_cast<uint32_t>(i), bytes));
        if (i == held) continue;  // its frames stay in flight: its next mix and publish fall back
        apart[i].on_sent();
        fused[i].on_sent();
      }
    }
    for (size_t i = 0; i < apart.size(); ++i) {
      if (i == held) {
        for (size_t k = 0; k < apart[i].neighbours().size(); ++k) {
          apart[i].on_sent();
          fused[i].on_sent();
        }
      }
      for (size_t k = 0; k < xa[i].size(); ++k) {
        const float d = static_cast<float>(0.003 * noise.normal());
        xa[i][k] -= d;
        xb[i][k] -= d;
      }
    }
    return frames;
  }
  void check_same() const {
    for (size_t i = 0; i < apart.size(); ++i) {
      test::check_same_counters(apart[i].counters(), fused[i].counters());
      auto ea = apart[i].public_estimate();
      auto eb = fused[i].public_estimate();
      CHECK(std::memcmp(ea.data(), eb.data(), ea.size() * sizeof(float)) == 0);
    }
  }
};

}  // namespace

TEST_CASE("mix_publish gives exactly mix then publish: grid gossip, plain and robust, weighted, frames in flight",
          "[gossip]") {
  struct variant {
    const char* name;
    robust_rule rule;
    contribution_rule contribution;
  };
  for (const variant v : {variant{"plain", robust_rule::none, contribution_rule::uniform},
                          variant{"clipped_gossip", robust_rule::clipped_gossip, contribution_rule::uniform},
                          variant{"median", robust_rule::median, contribution_rule::uniform},
                          variant{"clipped_gossip, rate", robust_rule::clipped_gossip, contribution_rule::rate},
                          variant{"plain, rate (falls back)", robust_rule::none, contribution_rule::rate}}) {
    INFO(v.name);
    gossip_settings s;
    s.threshold = 0.01;
    s.grid = true;
    s.gamma = 0.5;
    s.robust.rule = v.rule;
    s.contribution = v.contribution;
    // 3000 coordinates: blocks of 1024 (plain) and 256 (robust) end mid-way.
    twins t(6, 3000, s);
    int frames = 0;
    for (uint64_t step = 1; step <= 40; ++step) frames += t.round(step, step % 7 == 3 ? 2u : 99u);
    CHECK(frames > 100);  // they did gossip
    t.check_same();
  }
}
