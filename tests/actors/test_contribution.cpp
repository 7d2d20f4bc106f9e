// Contribution scaling (gossip.contribution, actors/contribution.hpp):
// peers that step and mix at different rates converge to the average the
// rule promises, a forged rate cannot raise a neighbour's weight above the
// uniform one, and the settings it cannot serve are refused.
#include <catch2/catch.hpp>
#include <cmath>

#include "actors/contribution.hpp"
#include "actors/gossip_state.hpp"
#include "actors/topology.hpp"
#include "protocols/gossip_messages.hpp"

using namespace murmur;

namespace {

// A ring of peers; peer i runs a cycle (mix, a step, publish) every
// period[i] ticks; frames arrive and leave the uplink at once. No training:
// only mixing moves x, so where the peers meet is the average the weights keep.
struct world {
  std::vector<std::vector<float>> x;
  std::vector<gossip_state> g;
  std::vector<uint64_t> period, steps;

  world(std::vector<uint64_t> periods, gossip_settings s, size_t dim)
      : period(std::move(periods)), steps(period.size(), 0) {
    const auto n = static_cast<uint32_t>(period.size());
    auto nb = make_topology("ring", n, 0, 0);
    std::vector<float> zero(dim, 0.f);
    for (uint32_t i = 0; i < n; ++i) {
      g.emplace_back(i, nb[i], s, zero);
      x.push_back(zero);
    }
  }
  // Within a tick every peer due acts on the frames of earlier ticks; the
  // tick's frames arrive at its end (no peer sees another's newer state first).
  void run(uint64_t ticks) {
    std::vector<std::pair<uint32_t, std::vector<std::byte>>> sent;
    for (uint64_t t = 0; t < ticks; ++t) {
      sent.clear();
      for (size_t i = 0; i < g.size(); ++i) {
        if (t % period[i] != 0) continue;
        if (steps[i] > 0) g[i].mix(x[i]);
        auto f = g[i].publish(x[i], ++steps[i]);
        if (!f.empty()) sent.emplace_back(static_cast<uint32_t>(i), std::vector<std::byte>(f.begin(), f.end()));
      }
      for (const auto& [i, bytes] : sent)
        for (uint32_t j : g[i].neighbours()) {
          REQUIRE(g[j].receive(i, bytes));
          g[i].on_sent();
        }
    }
  }
  // Sets peer i's parameters to v (every coordinate), then runs to consensus.
  double meet(const std::vector<float>& v, uint64_t ticks, double spread = 1e-3) {
    for (size_t i = 0; i < x.size(); ++i) std::fill(x[i].begin(), x[i].end(), v[i]);
    run(ticks);
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& xi : x)
      for (float e : xi) lo = std::min(lo, double(e)), hi = std::max(hi, double(e));
    INFO("spread " << hi - lo);
    CHECK(hi - lo < spread);
    return (lo + hi) / 2;
  }
};

gossip_settings dense(contribution_rule rule) {
  gossip_settings s;
  s.threshold = 0;  // every coordinate, every round: the estimates are exact
  s.gamma = 0.1;  // small steps: close to the continuous-time average
  s.contribution = rule;
  s.contribution_window = 8;
  return s;
}

}  // namespace

TEST_CASE("contribution weights: peers of different rates meet at the average the rule keeps", "[gossip][contribution]") {
  // Fast peers (a cycle every tick) hold 1, slow ones (every 4 ticks) 0,
  // alternating on a ring of 6. d_i = m_i = 1/period_i.
  const std::vector<uint64_t> periods{1, 4, 1, 4, 1, 4};
  const std::vector<float> v{1, 0, 1, 0, 1, 0};
  auto settle_then_meet = [&](contribution_rule rule) {
    world w(periods, dense(rule), 3);
    w.run(400);  // all at 0: the rates are measured from keepalives, nothing moves
    for (const auto& xi : w.x) CHECK(xi[0] == 0.f);
    return w.meet(v, 20000);
  };
  // rate: weights ∝ d_i, every sample trained counts once: 3 / (3 + 3/4) = 0.8.
  CHECK(settle_then_meet(contribution_rule::rate) == Approx(0.8).margin(0.03));
  // mixing: the plain average.
  CHECK(settle_then_meet(contribution_rule::mixing) == Approx(0.5).margin(0.03));
  // uniform: what a peer that mixes 4x less often keeps weighs 4x more (the
  // conserved sum is sum x_i / m_i): 3 / (3 + 12) = 0.2. The slow peers
  // drag the fast ones to themselves; this is the bias the rules remove.
  CHECK(settle_then_meet(contribution_rule::uniform) == Approx(0.2).margin(0.03));
}

TEST_CASE("contribution weights: equal rates keep the uniform weights", "[gossip][contribution]") {
  world w({2, 2, 2, 2}, dense(contribution_rule::rate), 2);
  w.run(200);
  for (auto& g : w.g)
    for (float p : g.contribution_pulls()) CHECK(p == Approx(1.0f));
  CHECK(w.meet({1, 0, 3, 0}, 10000) == Approx(1.0).margin(1e-3));
}

TEST_CASE("contribution weights: a forged huge rate gains nothing over uniform, a slow neighbour pulls less",
          "[gossip][contribution]") {
  // Peer 0 with neighbours 1 (honest, 4x slower) and 2 (claims 10^6 steps
  // and 1000 frames per frame it sends).
  const size_t dim = 4;
  std::vector<float> x0(dim, 0.f);
  gossip_state g(0, {1, 2}, dense(contribution_rule::rate), x0);
  auto frame = [&](uint32_t sender, uint64_t round, uint64_t step, float v) {
    gossip_update m;
    m.sender = sender, m.round = round, m.step = step, m.dim = dim, m.kind = update_kind::dense_set;
    m.values.assign(dim, v);
    std::vector<std::byte> out;
    encode_gossip(m, out);
    return out;
  };
  std::vector<float> x(dim, 0.f);
  uint64_t r1 = 0, r2 = 0, s1 = 0, s2 = 0;
  for (uint64_t step = 1; step <= 200; ++step) {
    if (step > 1) g.mix(x);
    std::fill(x.begin(), x.end(), 1e-3f * static_cast<float>(step));  // a frame of ours every step
    auto f = g.publish(x, step);
    if (!f.empty()) g.on_sent(), g.on_sent();
    if (step % 4 == 0) REQUIRE(g.receive(1, frame(1, ++r1, ++s1, 0.f)));
    r2 += 1000, s2 += 1000000;
    REQUIRE(g.receive(2, frame(2, r2, s2, 0.f)));
  }
  const auto p = g.contribution_pulls();
  REQUIRE(p.size() == 2);
  // Neighbour 1: a quarter of our steps, a quarter of our frames: 1/16.
  CHECK(p[0] == Approx(1.0 / 16).margin(0.01));
  // The forger: capped at the uniform weight, exactly.
  CHECK(p[1] == 1.0f);
  // Its pull in a mix is what uniform gossip gives it, no more: both
  // neighbours now publish 1; x moves by gamma/3 (p_1 + p_2) from 0.
  REQUIRE(g.receive(1, frame(1, ++r1, s1 + 1, 1.f)));
  REQUIRE(g.receive(2, frame(2, r2 + 1, s2 + 1000000, 1.f)));
  std::fill(x.begin(), x.end(), 0.f);
  REQUIRE_FALSE(g.publish(x, 201).empty());
  g.on_sent(), g.on_sent();
  g.mix(x);
  // The forger's full uniform pull, gamma / 3, plus the slow one's small one.
  CHECK(x[0] == Approx(0.1 / 3 * (1 + p[0])));
}

TEST_CASE("contribution weights: a robust clipping rule takes the pulls after clipping", "[gossip][contribution]") {
  for (auto rule : {robust_rule::clipped_gossip, robust_rule::centered_clip}) {
    auto s = dense(contribution_rule::rate);
    s.robust.rule = rule;
    world w({1, 4, 1, 4, 1, 4}, s, 3);
    w.run(400);
    // Clipping bounds each pull, so consensus is slower, not elsewhere.
    CHECK(w.meet({1, 0, 1, 0, 1, 0}, 40000, 0.02) == Approx(0.8).margin(0.05));
  }
}

TEST_CASE("contribution weights: refused where they cannot apply", "[gossip][contribution]") {
  std::vector<float> x0(4, 0.f);
  auto s = dense(contribution_rule::rate);
  s.robust.rule = robust_rule::median;
  CHECK_THROWS_WITH(gossip_state(0, {1}, s, x0), Catch::Contains("gossip.contribution"));
  s = dense(contribution_rule::rate);
  s.mode = gossip_mode::delta;
  CHECK_THROWS(gossip_state(0, {1}, s, x0));
  s = dense(contribution_rule::mixing);
  CHECK(gossip_state::replay_unsupported(s, {}) == "gossip.contribution = rate or mixing");
  CHECK(gossip_state::backend_unsupported(s, {}) == "gossip.contribution = rate or mixing");
  CHECK(gossip_state::contribution_unsupported(dense(contribution_rule::uniform)).empty());
}

TEST_CASE("contribution: a counter that goes back starts a new measurement", "[gossip][contribution]") {
  contribution c(contribution_rule::rate, 10, 1);
  c.heard(0, 100, 10, 0, 0);
  c.heard(0, 110, 20, 10, 20);  // half our frames, same steps: 0.5, averaged with 1
  CHECK(c.pulls()[0] == Approx(0.75f));
  c.heard(0, 5, 1, 20, 30);     // it restarted: anchored afresh, the weight kept
  CHECK(c.pulls()[0] == Approx(0.75f));
  c.heard(0, 25, 21, 30, 40);   // 2x our steps, 2x our frames: capped at 1
  CHECK(c.pulls()[0] == Approx(0.875f));
  contribution u(contribution_rule::uniform, 10, 2);
  u.heard(0, 1, 1, 100, 100);
  CHECK(u.pulls()[0] == 1.f);
}
