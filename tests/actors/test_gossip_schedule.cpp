// The one-peer schedule (gossip.schedule = one_peer on the hypercube):
// pairing, per-link exactness of the compressed estimates, rejection of
// frames off the schedule, determinism.
#include <catch2/catch.hpp>
#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <set>

#include "actors/gossip_state.hpp"
#include "actors/topology.hpp"
#include "tensor/rng.hpp"
#include "peer_spread.hpp"

using namespace murmur;

namespace {

uint32_t colours_for(uint32_t n) {
  uint32_t c = 1;
  while ((uint64_t{1} << c) < n) ++c;
  return c;
}

gossip_settings one_peer_settings(uint32_t n) {
  gossip_settings s;
  s.schedule = gossip_schedule::one_peer;
  s.schedule_colours = colours_for(n);
  s.schedule_every = 1;
  return s;
}

// The frontier's compressor: grid tau 0.01, estimates that follow the mix.
gossip_settings grid_follow_settings(uint32_t n, double gamma) {
  auto s = one_peer_settings(n);
  s.threshold = 0.01;
  s.grid = true;
  s.gamma = gamma;
  s.estimates_follow_mix = true;
  return s;
}

// The largest change of a coordinate of the peers' mean.
double mean_drift(const std::vector<double>& m0, const std::vector<double>& m1) {
  double drift = 0;
  for (size_t k = 0; k < m0.size(); ++k) drift = std::max(drift, std::fabs(m1[k] - m0[k]));
  return drift;
}

// Synchronous rounds: every peer publishes (one frame per partner), every
// frame is delivered, then every peer mixes.
struct pairs {
  std::vector<std::vector<float>> x;
  std::vector<gossip_state> g;
  uint64_t accepted = 0;

  pairs(uint32_t n, size_t dim, gossip_settings s, uint64_t seed) {
    auto nb = make_topology("hypercube", n, 0, 0);
    std::vector<float> zero(dim, 0.f);
    Rng rng(seed);
    for (uint32_t i = 0; i < n; ++i) {
      g.emplace_back(i, nb[i], s, zero);
      std::vector<float> xi(dim);
      for (auto& v : xi) v = static_cast<float>(rng.normal());
      x.push_back(std::move(xi));
    }
  }
  // late: a round's frames arrive only after every peer's next publish, as
  // when frames leave at the end of the step (sim.frames_leave = step_end).
  // lose(from, to, step): that frame never arrives.
  bool late = false;
  std::function<bool(uint32_t, uint32_t, uint64_t)> lose;
  struct in_flight {
    uint32_t from, to;
    uint64_t step;
    std::vector<std::byte> bytes;
  };
  std::vector<in_flight> wire;
  void round(uint64_t step) {
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g[i].publish(x[i], step).empty());
    std::vector<in_flight> sent;
    for (size_t i = 0; i < g.size(); ++i)
      for (size_t slot = 0; slot < g[i].neighbours().size(); ++slot) {
        auto f = g[i].frame_to(slot);
        if (f.empty()) continue;
        sent.push_back({static_cast<uint32_t>(i), g[i].neighbours()[slot], step, {f.begin(), f.end()}});
        g[i].on_sent();
      }
    if (late) std::swap(sent, wire);
    for (auto& f : sent) {
      if (lose && lose(f.from, f.to, f.step)) continue;
      reject_reason why{};
      INFO("peer " << f.from << " -> " << f.to << " step " << f.step);
      REQUIRE(g[f.to].receive(f.from, f.bytes, &why));
      ++accepted;
    }
    for (size_t i = 0; i < g.size(); ++i) g[i].mix(x[i]);
  }
  // Late frames: deliver those still in flight and mix, publishing nothing,
  // so that no copy waits for a frame (links_exact compares them).
  void settle() {
    for (auto& f : wire) {
      if (lose && lose(f.from, f.to, f.step)) continue;
      REQUIRE(g[f.to].receive(f.from, f.bytes));
    }
    wire.clear();
    for (size_t i = 0; i < g.size(); ++i) g[i].mix(x[i]);
  }
  std::vector<double> mean() const { return test::mean_of(x); }
  double max_deviation(const std::vector<double>& m) const { return test::max_deviation_of(x, m); }
  // Every link's two copies of a public estimate agree exactly.
  bool links_exact() const {
    for (size_t i = 0; i < g.size(); ++i)
      for (size_t slot = 0; slot < g[i].neighbours().size(); ++slot) {
        const uint32_t j = g[i].neighbours()[slot];
        const auto& nj = g[j].neighbours();
        const auto back = static_cast<size_t>(std::find(nj.begin(), nj.end(), static_cast<uint32_t>(i)) - nj.begin());
        auto mine = g[i].link_estimate(slot);
        auto theirs = g[j].neighbour_estimate(back);
        if (mine.size() != theirs.size() || !std::equal(mine.begin(), mine.end(), theirs.begin())) return false;
      }
    return true;
  }
};

}  // namespace

TEST_CASE("hypercube: symmetric, connected, properly coloured by ctz(i XOR j)", "[topology]") {
  for (uint32_t n : {2u, 5u, 6u, 8u, 12u, 16u}) {
    auto g = make_topology("hypercube", n, 0, 0);
    INFO("peers " << n);
    REQUIRE(g.size() == n);
    std::set<uint32_t> seen{0}, todo{0};
    while (!todo.empty()) {
      uint32_t a = *todo.begin();
      todo.erase(todo.begin());
      for (uint32_t b : g[a])
        if (seen.insert(b).second) todo.insert(b);
    }
    CHECK(seen.size() == n);
    for (uint32_t i = 0; i < n; ++i) {
      std::set<int> colours;
      for (uint32_t j : g[i]) {
        CHECK(j < n);
        CHECK(std::popcount(i ^ j) == 1);
        CHECK(std::find(g[j].begin(), g[j].end(), i) != g[j].end());
        CHECK(colours.insert(std::countr_zero(i ^ j)).second);  // one partner per colour
      }
      if (std::has_single_bit(n)) CHECK(g[i].size() == colours_for(n));
    }
    CHECK(g == make_topology("hypercube", n, 0, 0));
  }
}

TEST_CASE("one_peer: each round pairs peers symmetrically, one frame each", "[gossip]") {
  const uint32_t n = 8;
  auto s = one_peer_settings(n);
  s.threshold = 1e-3;
  s.grid = true;
  pairs w(n, 64, s, 5);
  for (uint64_t step = 1; step <= 6; ++step) {
    const uint64_t before = w.accepted;
    w.round(step);
    CHECK(w.accepted - before == n);  // one frame per peer per round
    for (uint32_t i = 0; i < n; ++i) {
      size_t frames = 0;
      for (size_t slot = 0; slot < w.g[i].neighbours().size(); ++slot) {
        if (w.g[i].frame_to(slot).empty()) continue;
        ++frames;
        CHECK(w.g[i].neighbours()[slot] == (i ^ (1u << (step % 3))));
      }
      CHECK(frames == 1);
    }
  }
}

TEST_CASE("one_peer with tau = 0 and gamma = 1 is exact pairwise averaging: the mean after log2 n rounds",
          "[gossip]") {
  const uint32_t n = 8;
  auto s = one_peer_settings(n);
  s.mode = gossip_mode::dense;
  s.threshold = 0;
  s.gamma = 1.0;
  pairs w(n, 100, s, 7);
  const auto m0 = w.mean();
  REQUIRE(w.max_deviation(m0) > 1.0);
  for (uint64_t step = 1; step <= 2; ++step) w.round(step);
  CHECK(w.max_deviation(m0) > 1e-2);  // two of the three dimensions: not yet
  w.round(3);
  CHECK(w.max_deviation(m0) < 1e-5);
  CHECK(w.links_exact());
}

TEST_CASE("one_peer on 6 peers (not a power of two) keeps the mean and converges", "[gossip]") {
  const uint32_t n = 6;
  auto s = one_peer_settings(n);
  s.mode = gossip_mode::dense;
  s.threshold = 0;
  s.gamma = 1.0;
  pairs w(n, 50, s, 9);
  const auto m0 = w.mean();
  for (uint64_t step = 1; step <= 60; ++step) w.round(step);
  CHECK(w.max_deviation(m0) < 1e-4);
}

TEST_CASE("one_peer grid gossip: every link's estimates stay exact and the mean is kept", "[gossip]") {
  const uint32_t n = 8;
  auto s = one_peer_settings(n);
  s.threshold = 0.01;
  s.grid = true;
  s.gamma = 0.7;
  pairs w(n, 300, s, 11);
  const auto m0 = w.mean();
  Rng noise(3);
  for (uint64_t step = 1; step <= 40; ++step) {
    w.round(step);
    REQUIRE(w.links_exact());
  }
  const auto m1 = w.mean();
  const double drift = mean_drift(m0, m1);
  CHECK(drift < 1e-4);                  // mixing moves pairs toward each other, never the sum
  CHECK(w.max_deviation(m1) < 0.05);    // within a few tau of agreement
}

TEST_CASE("one_peer rejects frames off the schedule and from non-partners, state unchanged", "[gossip]") {
  const uint32_t n = 8;
  auto s = one_peer_settings(n);
  s.threshold = 0.01;
  s.grid = true;
  pairs w(n, 32, s, 13);
  w.round(1);  // colour 1: 0 <-> 2
  // Peer 1 publishes in round 2 (colour 2: to 5): a frame for 0 would be off the schedule.
  for (size_t i = 0; i < n; ++i) (void)w.g[i].publish(w.x[i], 2);
  auto nb1 = w.g[1].neighbours();
  const size_t to5 = static_cast<size_t>(std::find(nb1.begin(), nb1.end(), 5u) - nb1.begin());
  auto f = w.g[1].frame_to(to5);
  REQUIRE_FALSE(f.empty());
  std::vector<std::byte> bytes(f.begin(), f.end());
  const auto before = w.g[0].neighbour_estimate(0);
  const std::vector<float> copy(before.begin(), before.end());
  reject_reason why{};
  CHECK_FALSE(w.g[0].receive(1, bytes, &why));
  CHECK(why == reject_reason::off_schedule);
  CHECK(w.g[0].counters().rejected[static_cast<size_t>(reject_reason::off_schedule)] == 1);
  CHECK(std::equal(copy.begin(), copy.end(), w.g[0].neighbour_estimate(0).begin()));
  // Peer 3 is no neighbour of 0 on the hypercube: unknown sender.
  auto nb3 = w.g[3].neighbours();
  for (size_t slot = 0; slot < nb3.size(); ++slot) {
    auto f3 = w.g[3].frame_to(slot);
    if (f3.empty()) continue;
    std::vector<std::byte> b3(f3.begin(), f3.end());
    CHECK_FALSE(w.g[0].receive(3, b3, &why));
    CHECK(why == reject_reason::unknown_sender);
  }
  CHECK(to_string(reject_reason::off_schedule) == "off_schedule");
}

TEST_CASE("one_peer is deterministic and refuses what it does not support", "[gossip]") {
  auto s = one_peer_settings(8);
  s.threshold = 0.01;
  s.grid = true;
  pairs a(8, 40, s, 21), b(8, 40, s, 21);
  for (uint64_t step = 1; step <= 12; ++step) {
    a.round(step);
    b.round(step);
  }
  CHECK(a.x == b.x);
  std::vector<float> x0(4, 0.f);
  auto d = s;
  d.mode = gossip_mode::delta;
  CHECK_THROWS_WITH(gossip_state(0, {1}, d, x0), Catch::Contains("one_peer"));
  auto det = s;
  det.detect.enabled = true;
  CHECK_THROWS_WITH(gossip_state(0, {1}, det, x0), Catch::Contains("detect.method"));
  CHECK(gossip_state::backend_unsupported(s, {}) == "gossip.schedule = one_peer");
  CHECK(gossip_state::replay_unsupported(s, {}) == "gossip.schedule = one_peer");
  gossip_state g(0, {1, 2, 4}, s, x0);
  gossip_state::replay_state r;
  CHECK_THROWS_WITH(g.save_replay_state(r), Catch::Contains("one_peer"));
}

TEST_CASE("one_peer with a robust rule mixes each pair through it and keeps links exact", "[gossip]") {
  for (auto rule : {robust_rule::clipped_gossip, robust_rule::median}) {
    auto s = one_peer_settings(8);
    s.threshold = 0.01;
    s.grid = true;
    s.gamma = 0.7;
    s.robust.rule = rule;
    pairs w(8, 64, s, 17);
    const double d0 = w.max_deviation(w.mean());
    for (uint64_t step = 1; step <= 60; ++step) {
      w.round(step);
      REQUIRE(w.links_exact());
    }
    INFO("rule " << static_cast<int>(rule));
    CHECK(w.max_deviation(w.mean()) < 0.2 * d0);
  }
}

TEST_CASE("one_peer follow_mix: links exact, mean kept, and grid gossip sends far less once pairs agree", "[gossip]") {
  // Without training, fixed estimates let a pair pull again by a difference
  // its last mix already closed (the estimates move only once x has moved
  // 0.75 tau): the peers swap sides and keep sending. follow_mix moves the
  // estimates with the mix, so the pull is applied once; what it still
  // sends late comes from the other links' mixes.
  const uint32_t n = 8;
  auto run = [&](bool follow, double* late_bytes, double* deviation) {
    auto s = one_peer_settings(n);
    s.threshold = 0.01;
    s.grid = true;
    s.gamma = 0.7;
    s.estimates_follow_mix = follow;
    pairs w(n, 2000, s, 17);
    for (auto& xi : w.x)
      for (auto& v : xi) v *= 0.05f;  // a few tau apart, as trained peers are
    const auto m0 = w.mean();
    uint64_t bytes_at_30 = 0;
    for (uint64_t step = 1; step <= 90; ++step) {
      w.round(step);
      REQUIRE(w.links_exact());
      if (step == 30)
        for (auto& g : w.g) bytes_at_30 += g.counters().bytes_sent;
    }
    uint64_t bytes = 0;
    for (auto& g : w.g) bytes += g.counters().bytes_sent;
    const auto m1 = w.mean();
    const double drift = mean_drift(m0, m1);
    CHECK(drift < 1e-4);  // still pairwise: the sum is kept
    *late_bytes = static_cast<double>(bytes - bytes_at_30);
    *deviation = w.max_deviation(m1);
  };
  double fixed_bytes = 0, fixed_dev = 0, follow_bytes = 0, follow_dev = 0;
  run(false, &fixed_bytes, &fixed_dev);
  run(true, &follow_bytes, &follow_dev);
  INFO("bytes in rounds 31-90: fixed " << fixed_bytes << ", follow_mix " << follow_bytes << "; largest deviation "
                                       << fixed_dev << ", " << follow_dev);
  CHECK(follow_bytes < 0.5 * fixed_bytes);  // measured: 27909 against 76533
  CHECK(follow_dev < 0.015);                // within the grid's dead band, as fixed (0.0090)
}

TEST_CASE("threshold schedule lr: tau follows the cosine lr down to its floor, frames carry it, links stay exact",
          "[gossip]") {
  const uint32_t n = 8;
  auto s = grid_follow_settings(n, 1.0);
  s.threshold_power = 1.0;
  s.threshold_floor = 0.1;
  s.lr_total_steps = 120;
  {
    gossip_state g(0, {1}, s, std::vector<float>(4, 0.f));
    CHECK(g.threshold_at(0) == 0.01f);
    CHECK(g.threshold_at(60) == Approx(0.005).epsilon(1e-6));  // half the lr, half the tau
    CHECK(g.threshold_at(30) == Approx(0.01 * 0.5 * (1 + std::cos(M_PI / 4))).epsilon(1e-6));
    CHECK(g.threshold_at(110) == Approx(0.001).epsilon(1e-6));  // the lr ratio is 0.017 there: the floor
    CHECK(g.threshold_at(500) == Approx(0.001).epsilon(1e-6));
    auto c = s;
    c.threshold_power = 0;  // constant
    CHECK(gossip_state(0, {1}, c, std::vector<float>(4, 0.f)).threshold_at(110) == 0.01f);
  }
  // Peers that keep moving (training noise of a fixed size): every frame's
  // grid scale is the tau of its step, every link's two copies stay bit-identical,
  // and the residual each link leaves is below the band of that step's tau.
  auto run = [&](double power, double* late_residual) {
    auto t = s;
    t.threshold_power = power;
    pairs w(n, 500, t, 23);
    for (auto& xi : w.x)
      for (auto& v : xi) v *= 0.05f;
    Rng noise(5);
    double residual = 0;
    for (uint64_t step = 1; step <= 120; ++step) {
      for (auto& xi : w.x)
        for (auto& v : xi) v += static_cast<float>(0.0005 * noise.normal());
      for (size_t i = 0; i < n; ++i) REQUIRE(w.g[i].publish(w.x[i], step).empty());
      for (size_t i = 0; i < n; ++i) {
        const float tau = w.g[i].threshold_at(step);
        for (size_t slot = 0; slot < w.g[i].neighbours().size(); ++slot) {
          auto f = w.g[i].frame_to(slot);
          if (f.empty()) continue;
          gossip_update u;
          REQUIRE(decode_gossip(f, 1u << 20, u) == frame_error::none);
          if (u.kind == update_kind::grid_set) REQUIRE(u.scale == tau);
          const auto hat = w.g[i].link_estimate(slot);
          for (size_t k = 0; k < hat.size(); ++k) REQUIRE(std::fabs(w.x[i][k] - hat[k]) < 0.75f * tau);
          if (step > 100)
            for (size_t k = 0; k < hat.size(); ++k) residual = std::max(residual, double(std::fabs(w.x[i][k] - hat[k])));
          std::vector<std::byte> bytes(f.begin(), f.end());
          REQUIRE(w.g[w.g[i].neighbours()[slot]].receive(static_cast<uint32_t>(i), bytes));
          w.g[i].on_sent();
        }
      }
      for (size_t i = 0; i < n; ++i) w.g[i].mix(w.x[i]);
      REQUIRE(w.links_exact());
    }
    *late_residual = residual;
  };
  double constant = 0, follows = 0;
  run(0.0, &constant);
  run(1.0, &follows);
  INFO("largest |x - x_hat| a frame left after step 100: constant tau " << constant << ", lr tau " << follows);
  CHECK(constant > 0.002);            // the constant tau's band: up to 0.0075
  CHECK(follows < 0.75 * 0.0011);     // tau is at its floor, 0.001, after step 100
}

TEST_CASE("one_peer with frames a round late: both ends mix the same pair, links exact, mean kept", "[gossip]") {
  // Frames that leave when the step ends reach the partner after its next
  // mix. A pair is mixed once both its frames are here, and the link sends
  // nothing new until then, so both ends pull by exactly opposite amounts.
  for (uint32_t n : {2u, 8u}) {
    INFO("peers " << n);
    {
      // Pairwise averaging, late: still the mean, and consensus. (At gamma
      // = 1 a pair's late pull overshoots what the other links' pulls have
      // moved meanwhile, and 8 peers stall short of consensus; 0.7 converges.)
      auto s = one_peer_settings(n);
      s.mode = gossip_mode::dense;
      s.threshold = 0;
      s.gamma = 0.7;
      pairs w(n, 100, s, 7);
      w.late = true;
      const auto m0 = w.mean();
      REQUIRE(w.max_deviation(m0) > 1.0);
      for (uint64_t step = 1; step <= 60; ++step) w.round(step);
      w.settle();
      CHECK(w.max_deviation(m0) < 1e-4);
      CHECK(w.links_exact());
      uint64_t skips = 0;
      for (auto& g : w.g) skips += g.counters().stale_skips;
      if (n == 2) CHECK(skips > 0);  // one link, used every round: it waits every other round
    }
    {
      // The frontier's grid gossip with follow_mix, late, with training noise.
      pairs w(n, 300, grid_follow_settings(n, 0.7), 11);
      w.late = true;
      Rng noise(5);
      for (uint64_t step = 1; step <= 60; ++step) {
        w.round(step);
        if (step % 7 == 0) {
          w.settle();
          REQUIRE(w.links_exact());
        }
        for (auto& xi : w.x)
          for (auto& v : xi) v += 0.002f * static_cast<float>(noise.normal());
      }
      const auto m0 = w.mean();
      for (uint64_t step = 61; step <= 90; ++step) w.round(step);
      w.settle();
      CHECK(w.links_exact());
      const auto m1 = w.mean();
      const double drift = mean_drift(m0, m1);
      CHECK(drift < 1e-4);                      // pairs pull by opposite amounts
      CHECK(w.max_deviation(m1) < 0.05);        // within a few tau of agreement
    }
  }
}

TEST_CASE("one_peer: a lost frame gives its pair up, and dense frames both ways make the link exact again",
          "[gossip]") {
  const uint32_t n = 8;
  const auto s = grid_follow_settings(n, 0.7);
  for (bool late : {false, true}) {
    INFO((late ? "late frames" : "frames in time"));
    pairs w(n, 300, s, 23);
    w.late = late;
    // Peer 0's frame to peer 1 (colour 0: steps 3, 6, ...) of step 6 is lost.
    w.lose = [](uint32_t from, uint32_t to, uint64_t step) { return from == 0 && to == 1 && step == 6; };
    const auto m0 = w.mean();
    bool broken = false;
    for (uint64_t step = 1; step <= 40; ++step) {
      w.round(step);
      if (late) continue;
      broken = broken || !w.links_exact();
    }
    w.settle();
    if (!late) CHECK(broken);  // the loss did put the link's copies apart for a while
    CHECK(w.links_exact());    // and the resync made them exact again
    const auto m1 = w.mean();
    const double drift = mean_drift(m0, m1);
    // One pair mixed on one side only: a one-off shift of the mean by that
    // pull over 8 peers (0.35 x a difference of about 2 / 8: 0.06 measured late).
    CHECK(drift < 0.15);
    CHECK(w.max_deviation(m1) < 0.05);
  }
}

TEST_CASE("one_peer: a partner that keeps skipping exchange numbers gets a dense frame at most once per 8 exchanges",
          "[gossip]") {
  // Peer 1's frames to peer 0 are lost every other exchange (a hostile
  // partner can skip numbers on purpose): each gap would buy a dense frame
  // (300 values here, a whole model on a real one) for a few bytes.
  const uint32_t n = 8;
  const size_t dim = 300;
  pairs w(n, dim, grid_follow_settings(n, 0.7), 29);
  w.lose = [](uint32_t from, uint32_t to, uint64_t step) { return from == 1 && to == 0 && step % 6 == 3; };
  const auto& nb0 = w.g[0].neighbours();
  const size_t to1 = static_cast<size_t>(std::find(nb0.begin(), nb0.end(), 1u) - nb0.begin());
  int dense = 0, frames = 0;
  for (uint64_t step = 1; step <= 240; ++step) {
    w.round(step);
    auto f = w.g[0].frame_to(to1);
    if (f.empty()) continue;
    ++frames;
    if (f.size() > dim * sizeof(float)) ++dense;
  }
  INFO("peer 0 sent " << frames << " frames to peer 1, " << dense << " of them dense");
  CHECK(frames >= 30);
  CHECK(dense >= 1);
  // A resync is two dense frames each way (the one the gap asks for, then
  // the pair that completes it); without the limit nearly every frame is.
  CHECK(dense <= 2 * (frames / 8 + 1));  // measured: 14 of 60
}
