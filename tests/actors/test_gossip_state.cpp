#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "actors/gossip_state.hpp"
#include "actors/topology.hpp"
#include "tensor/rng.hpp"
#include "peer_spread.hpp"

using namespace murmur;

namespace {

// Synchronous rounds among gossip_states, no training: every peer publishes,
// every frame is delivered, then every peer mixes.
struct swarm {
  std::vector<std::vector<float>> x;
  std::vector<gossip_state> g;

  swarm(const std::string& topo, uint32_t n, size_t dim, gossip_settings s, uint64_t seed) {
    auto nb = make_topology(topo, n, 4, seed);
    std::vector<float> zero(dim, 0.f);
    Rng rng(seed);
    for (uint32_t i = 0; i < n; ++i) {
      g.emplace_back(i, nb[i], s, zero);
      std::vector<float> xi(dim);
      for (auto& v : xi) v = static_cast<float>(rng.normal());
      x.push_back(std::move(xi));
    }
  }
  void round(uint64_t step) {
    std::vector<std::vector<std::byte>> frames(g.size());
    for (size_t i = 0; i < g.size(); ++i) {
      auto f = g[i].publish(x[i], step);
      frames[i].assign(f.begin(), f.end());
    }
    for (size_t i = 0; i < g.size(); ++i) {
      if (frames[i].empty()) continue;
      for (uint32_t j : g[i].neighbours()) {
        REQUIRE(g[j].receive(static_cast<uint32_t>(i), frames[i]));
        g[i].on_sent();
      }
    }
    for (size_t i = 0; i < g.size(); ++i) g[i].mix(x[i]);
  }
  std::vector<double> mean() const { return test::mean_of(x); }
  double max_deviation(const std::vector<double>& m) const { return test::max_deviation_of(x, m); }
};

}  // namespace

TEST_CASE("dense gossip without training drives every peer to the exact average", "[gossip]") {
  for (std::string topo : {"ring", "exponential", "complete", "torus"}) {
    uint32_t n = topo == "torus" ? 9 : 8;
    gossip_settings s;
    s.mode = gossip_mode::dense;
    s.threshold = 0;
    s.gamma = 1.0;
    swarm w(topo, n, 200, s, 3);
    const auto m0 = w.mean();
    REQUIRE(w.max_deviation(m0) > 1.0);
    for (int r = 1; r <= 300; ++r) w.round(static_cast<uint64_t>(r));
    INFO("topology " << topo);
    CHECK(w.max_deviation(m0) < 1e-5);  // to the average of the start, not just to agreement
  }
}

TEST_CASE("threshold gossip converges to within a bound that shrinks with tau", "[gossip]") {
  double prev = 1e9;
  for (double tau : {1e-1, 1e-2, 1e-3, 1e-4}) {
    gossip_settings s;
    s.mode = gossip_mode::threshold;
    s.threshold = tau;
    s.gamma = 0.5;
    swarm w("ring", 8, 300, s, 4);
    const auto m0 = w.mean();
    uint64_t sent_before_last = 0;
    for (int r = 1; r <= 2000; ++r) {
      if (r == 1900) sent_before_last = w.g[0].counters().coords_sent;
      w.round(static_cast<uint64_t>(r));
    }
    double dev = w.max_deviation(m0);
    INFO("tau " << tau << ": max deviation from the initial mean " << dev);
    CHECK(dev < 8 * tau);
    CHECK(dev < prev);
    prev = dev;
    // Once within the bound, peers fall (almost) silent.
    CHECK(w.g[0].counters().coords_sent - sent_before_last < 100 * 300);
  }
}

TEST_CASE("larger tau sends fewer coordinates", "[gossip]") {
  uint64_t prev = UINT64_MAX;
  for (double tau : {0.0, 1e-3, 1e-2, 1e-1}) {
    gossip_settings s;
    s.mode = tau == 0 ? gossip_mode::dense : gossip_mode::threshold;
    s.threshold = tau;
    swarm w("ring", 6, 500, s, 9);
    for (int r = 1; r <= 200; ++r) w.round(static_cast<uint64_t>(r));
    uint64_t bytes = w.g[0].counters().bytes_sent;
    CHECK(bytes < prev);
    prev = bytes;
  }
}

TEST_CASE("the event trigger keeps a peer silent while its residual is small", "[gossip]") {
  gossip_settings s;
  s.threshold = 0;
  s.trigger = 1.0;
  std::vector<float> x0(10, 0.f), x(10, 0.1f);  // ||r||^2 = 0.1 < 1
  gossip_state g(0, {1}, s, x0);
  CHECK(g.publish(x, 1).empty());
  CHECK(g.counters().silent_rounds == 1);
  std::fill(x.begin(), x.end(), 1.f);  // ||r||^2 = 10
  CHECK_FALSE(g.publish(x, 2).empty());
}

TEST_CASE("a peer publishes again only after its previous frames left", "[gossip]") {
  gossip_settings s;
  s.threshold = 0;
  std::vector<float> x0(4, 0.f), x(4, 1.f);
  gossip_state g(0, {1, 2}, s, x0);
  CHECK_FALSE(g.publish(x, 1).empty());
  x[0] = 2;
  CHECK(g.publish(x, 2).empty());
  CHECK(g.counters().busy_rounds == 1);
  g.on_sent();
  g.on_sent();
  CHECK_FALSE(g.publish(x, 3).empty());
}

TEST_CASE("delta mode: each peer applies the others' changes once", "[gossip]") {
  gossip_settings s;
  s.mode = gossip_mode::delta;
  s.threshold = 0;
  std::vector<float> x0(3, 0.f);
  gossip_state a(0, {1}, s, x0), b(1, {0}, s, x0);
  std::vector<float> xa = {1, 0, 0}, xb = {0, 2, 0};  // local steps
  auto fa = a.publish(xa, 1);
  std::vector<std::byte> fa_copy(fa.begin(), fa.end());
  auto fb = b.publish(xb, 1);
  REQUIRE(b.receive(0, fa_copy));
  REQUIRE(a.receive(1, fb));
  a.mix(xa);
  b.mix(xb);
  CHECK(xa == std::vector<float>{1, 2, 0});
  CHECK(xb == std::vector<float>{1, 2, 0});
  // A replay of an applied frame is refused.
  CHECK_FALSE(b.receive(0, fa_copy));
  // Small changes wait in the residual until they cross tau.
  gossip_settings st = s;
  st.threshold = 0.5;
  gossip_state c(0, {1}, st, x0);
  std::vector<float> xc = {0.3f, 0, 0};
  CHECK(c.publish(xc, 1).empty());
  xc[0] = 0.6f;
  CHECK_FALSE(c.publish(xc, 2).empty());
}

TEST_CASE("rejected frames leave the state byte-identical and are counted", "[gossip]") {
  gossip_settings s;
  s.threshold = 0;
  const size_t dim = 16;
  std::vector<float> x0(dim, 0.f);
  gossip_state g(0, {1, 2}, s, x0);
  gossip_state other(1, {0}, s, x0);
  std::vector<float> x1(dim, 1.f);
  auto good_span = other.publish(x1, 1);
  std::vector<std::byte> good(good_span.begin(), good_span.end());

  auto snapshot = [&] {
    std::vector<float> x(dim, 0.f);
    g.mix(x);  // mixing reads the estimates: same estimates, same result
    return x;
  };
  const auto before = snapshot();

  std::vector<std::byte> garbage(good.size(), std::byte{0x5a});
  reject_reason why{};
  CHECK_FALSE(g.receive(1, garbage, &why));
  CHECK(why == static_cast<reject_reason>(frame_error::bad_magic));
  CHECK_FALSE(g.receive(2, good, &why));  // sender field says 1, transport says 2
  CHECK(why == reject_reason::unknown_sender);
  gossip_state stranger(7, {0}, s, x0);
  auto fs = stranger.publish(x1, 1);
  CHECK_FALSE(g.receive(7, fs, &why));
  CHECK(why == reject_reason::unknown_sender);
  std::vector<float> big0(dim + 1, 0.f), big1(dim + 1, 1.f);
  gossip_state wrong_dim(1, {0}, s, big0);
  auto fw = wrong_dim.publish(big1, 1);
  CHECK_FALSE(g.receive(1, fw, &why));
  CHECK(why == reject_reason::wrong_shape);
  gossip_settings ds = s;
  ds.mode = gossip_mode::delta;
  gossip_state delta_peer(1, {0}, ds, x0);
  auto fd = delta_peer.publish(x1, 1);
  CHECK_FALSE(g.receive(1, fd, &why));
  CHECK(why == reject_reason::wrong_kind);
  std::vector<std::byte> truncated(good.begin(), good.end() - 5);
  CHECK_FALSE(g.receive(1, truncated, &why));
  CHECK(why == static_cast<reject_reason>(frame_error::length_mismatch));
  // Finite but beyond any parameter of this model (x0 = 0: bound 1000).
  gossip_state huge_peer(1, {0}, s, x0);
  std::vector<float> huge(dim, 1.f);
  huge[3] = 1e30f;
  auto fh = huge_peer.publish(huge, 1);
  CHECK_FALSE(g.receive(1, fh, &why));
  CHECK(why == reject_reason::out_of_range);
  huge[3] = 1001.f;  // just over the bound
  gossip_state over_peer(1, {0}, s, x0);
  CHECK_FALSE(g.receive(1, over_peer.publish(huge, 1), &why));
  CHECK(why == reject_reason::out_of_range);

  CHECK(snapshot() == before);
  CHECK(g.counters().rejected_total() == 8);

  REQUIRE(g.receive(1, good));
  CHECK_FALSE(g.receive(1, good, &why));  // replayed round
  CHECK(why == reject_reason::stale);
  CHECK(snapshot() != before);
}

TEST_CASE("topologies are regular, symmetric and deterministic", "[topology]") {
  for (std::string t : {"ring", "exponential", "complete", "random", "torus"}) {
    uint32_t n = t == "torus" ? 12 : 16;
    auto g = make_topology(t, n, 4, 1);
    REQUIRE(g.size() == n);
    INFO("topology " << t);
    for (uint32_t i = 0; i < n; ++i) {
      CHECK(g[i].size() == g[0].size());
      for (uint32_t j : g[i]) {
        CHECK(j != i);
        CHECK(std::find(g[j].begin(), g[j].end(), i) != g[j].end());
      }
    }
    CHECK(g == make_topology(t, n, 4, 1));
  }
  CHECK(make_topology("ring", 8, 0, 0)[0].size() == 2);
  CHECK(make_topology("torus", 12, 0, 0)[0].size() == 4);
  CHECK(make_topology("exponential", 8, 0, 0)[0].size() == 5);  // +-1, +-2, 4
  CHECK(make_topology("random", 16, 4, 1)[0].size() == 4);
  CHECK(make_topology("random", 16, 4, 1) != make_topology("random", 16, 4, 2));
  // Dense random graphs too (the pairing model almost never gives a simple one).
  for (uint32_t d : {8u, 11u, 13u}) {
    auto g = make_topology("random", 16, d, 3);
    for (uint32_t i = 0; i < 16; ++i) {
      INFO("degree " << d << " peer " << i);
      CHECK(g[i].size() == d);
      CHECK(std::find(g[i].begin(), g[i].end(), i) == g[i].end());
      for (uint32_t j : g[i]) CHECK(std::find(g[j].begin(), g[j].end(), i) != g[j].end());
    }
    CHECK(g == make_topology("random", 16, d, 3));
  }
  CHECK(make_topology("ring", 1, 0, 0)[0].empty());
  CHECK_THROWS_WITH(make_topology("torus", 10, 0, 0), Catch::Contains("rows, cols >= 3"));
  CHECK_THROWS_WITH(make_topology("random", 5, 3, 0), Catch::Contains("even"));
  CHECK_THROWS_WITH(make_topology("star", 5, 3, 0), Catch::Contains("unknown topology"));
}

TEST_CASE("grid gossip: peers agree on grid values, then fall silent", "[gossip]") {
  for (double tau : {1e-1, 1e-2}) {
    gossip_settings s;
    s.mode = gossip_mode::threshold;
    s.grid = true;
    s.threshold = tau;
    s.gamma = 0.5;
    swarm w("ring", 8, 300, s, 5);
    const auto m0 = w.mean();
    for (int r = 1; r <= 1500; ++r) w.round(static_cast<uint64_t>(r));
    INFO("tau " << tau << ": max deviation from the initial mean " << w.max_deviation(m0));
    CHECK(w.max_deviation(m0) < 8 * tau);
    // Every public value is a multiple of tau, exactly as the receivers rebuild it.
    for (float v : w.g[0].public_estimate()) {
      float q = std::nearbyint(v / static_cast<float>(tau));
      CHECK(v == q * static_cast<float>(tau));
    }
    // After agreement nothing moves, so nothing is sent.
    uint64_t before = w.g[0].counters().coords_sent;
    for (int r = 1501; r <= 1600; ++r) w.round(static_cast<uint64_t>(r));
    CHECK(w.g[0].counters().coords_sent - before < 300);
  }
}

TEST_CASE("grid frames are a fraction of the threshold compressor's bytes", "[gossip]") {
  uint64_t bytes[2];
  for (int grid = 0; grid < 2; ++grid) {
    gossip_settings s;
    s.threshold = 1e-2;
    s.grid = grid == 1;
    swarm w("ring", 8, 2000, s, 6);
    for (auto& xi : w.x)
      for (auto& v : xi) v *= 0.1f;  // weight-sized values: |x / tau| mostly < 64, one byte
    for (int r = 1; r <= 5; ++r) w.round(static_cast<uint64_t>(r));
    bytes[grid] = w.g[0].counters().bytes_sent;
  }
  CHECK(bytes[1] * 2 < bytes[0]);
}

TEST_CASE("membership changes: new neighbours get our full state, kept ones keep theirs", "[gossip]") {
  gossip_settings s;
  s.threshold = 0.5;  // large: an ordinary round would send nothing below
  const size_t dim = 8;
  std::vector<float> x0(dim, 0.f), x(dim, 0.1f);
  gossip_state g(0, {1}, s, x0);
  CHECK(g.publish(x, 1).empty());  // 0.1 < tau: silent
  g.set_neighbours({1, 2}, {0, 0});  // 2 is new
  auto f = g.publish(x, 2);
  REQUIRE_FALSE(f.empty());  // forced complete publish despite tau
  gossip_update m;
  REQUIRE(decode_gossip(f, 1 << 20, m) == frame_error::none);
  CHECK(m.kind == update_kind::dense_set);
  CHECK(m.values == x);
  g.on_sent();
  g.on_sent();
  CHECK(g.publish(x, 3).empty());  // back to normal

  // A neighbour that restarted (new incarnation) is reset: its old rounds no longer count.
  gossip_state r(1, {0}, s, x0);
  std::vector<float> y(dim, 1.f);
  auto f1 = g.publish(y, 4);  // g's round 3 (after the two above)
  std::vector<std::byte> keep(f1.begin(), f1.end());
  REQUIRE(r.receive(0, keep));
  CHECK_FALSE(r.receive(0, keep));  // replay
  r.set_neighbours({0}, {1});       // peer 0 came back with incarnation 1
  gossip_state g2(0, {1}, s, x0);   // the restarted process counts rounds from 1 again
  auto f2 = g2.publish(y, 1);
  CHECK(r.receive(0, f2));
  CHECK_THROWS(r.set_neighbours({1}, {0}));  // itself
}

TEST_CASE("a quarantined peer leaves our neighbours, stays out, and its frames are rejected", "[gossip]") {
  gossip_settings s;
  s.mode = gossip_mode::dense;
  s.threshold = 0;
  std::vector<float> x0(16, 0.f);
  gossip_state a(0, {1, 2}, s, x0), b(1, {0, 2}, s, x0);
  std::vector<float> xb(16, 1.f);
  auto f = b.publish(xb, 1);
  std::vector<std::byte> frame(f.begin(), f.end());
  REQUIRE(a.quarantine(1, quarantine_cause::evidence));
  CHECK_FALSE(a.quarantine(1, quarantine_cause::statistical));  // once only
  CHECK(a.is_quarantined(1));
  CHECK(a.neighbours() == std::vector<uint32_t>{2});
  reject_reason why{};
  CHECK_FALSE(a.receive(1, frame, &why));
  CHECK(why == reject_reason::quarantined);
  CHECK(a.counters().rejected[static_cast<size_t>(reject_reason::quarantined)] == 1);
  // Membership offering it again does not bring it back.
  a.set_neighbours({1, 2, 3}, {0, 0, 0});
  CHECK(a.neighbours() == std::vector<uint32_t>{2, 3});
  REQUIRE(a.counters().quarantines.size() == 1);
  CHECK(a.counters().quarantines[0].peer == 1);
  CHECK(a.counters().quarantines[0].cause == quarantine_cause::evidence);
  CHECK_FALSE(a.quarantine(0, quarantine_cause::evidence));  // never ourselves
}

TEST_CASE("the value bound follows gossip max_value, or the model's own scale", "[gossip]") {
  const size_t dim = 4;
  gossip_settings s;
  s.threshold = 0;
  std::vector<float> x0(dim, 0.f), big(dim, 0.f);
  x0[1] = -5.f;  // largest initial magnitude 5: bound 5000
  big[2] = 4999.f;
  {
    gossip_state g(0, {1}, s, x0), p(1, {0}, s, x0);
    CHECK(g.receive(1, p.publish(big, 1)));
    p.on_sent();
    big[2] = 5001.f;
    reject_reason why{};
    CHECK_FALSE(g.receive(1, p.publish(big, 2), &why));
    CHECK(why == reject_reason::out_of_range);
  }
  s.max_value = 10;
  gossip_state g(0, {1}, s, x0), p(1, {0}, s, x0);
  big[2] = 11.f;
  CHECK_FALSE(g.receive(1, p.publish(big, 1)));
  p.on_sent();
  big[2] = -9.f;
  CHECK(g.receive(1, p.publish(big, 2)));
}

TEST_CASE("clipped gossip: one hostile neighbour on a ring moves us by at most the honest scale per round",
          "[gossip][robust]") {
  // Peer 0 between an honest neighbour (1) and a hostile one (2) that
  // publishes values just under the decode bound at a few coordinates.
  const size_t dim = 64;
  gossip_settings s;
  s.threshold = 0;
  s.robust.rule = robust_rule::clipped_gossip;
  std::vector<float> x0(dim, 0.f);
  gossip_state g(0, {1, 2}, s, x0), honest(1, {0}, s, x0), hostile(2, {0}, s, x0);
  std::vector<float> x(dim, 0.f), xh(dim, 0.01f), xa(dim, 0.f);
  for (size_t k = 0; k < dim; k += 16) xa[k] = 999.f;
  double worst = 0;
  for (uint64_t r = 1; r <= 50; ++r) {
    for (auto& v : xh) v += 0.001f;  // the honest neighbour keeps moving a little
    const auto before = x;
    REQUIRE(g.receive(1, honest.publish(xh, r)));
    honest.on_sent();
    REQUIRE(g.receive(2, hostile.publish(xa, r)));
    hostile.on_sent();
    g.publish(x, r);
    g.on_sent();
    g.on_sent();
    g.mix(x);
    double step = 0, honest_dist = 0;
    for (size_t k = 0; k < dim; ++k) {
      step += (x[k] - before[k]) * (x[k] - before[k]);
      honest_dist += (xh[k] - before[k]) * (xh[k] - before[k]);
    }
    worst = std::max(worst, std::sqrt(step) / std::sqrt(honest_dist));
  }
  // gamma / n * (honest pull + hostile pull <= the lower-median distance):
  // at most gamma * 2 / 3 of the honest distance, never the 999s.
  CHECK(worst <= 1.0 / 3.0 + 1e-3);
  CHECK(g.counters().clipped >= 50);
  for (float v : x) CHECK(std::fabs(v) < 1.f);
}

TEST_CASE("clipped gossip without a hostile neighbour contracts the spread, more slowly than the plain mean",
          "[gossip][robust]") {
  gossip_settings plain;
  plain.threshold = 0;
  gossip_settings clipped = plain;
  clipped.robust.rule = robust_rule::clipped_gossip;
  swarm a("ring", 8, 32, plain, 5), b("ring", 8, 32, clipped, 5);
  const double spread0 = b.max_deviation(b.mean());
  for (uint64_t r = 1; r <= 1000; ++r) {
    a.round(r);
    b.round(r);
  }
  CHECK(a.max_deviation(a.mean()) < 1e-3);
  // Each pull is at most half the nearer neighbour's distance: without the
  // noise of training, a ring can come to rest where opposite clipped pulls
  // balance, short of the average (the price of not knowing which of two
  // neighbours to believe); the spread still shrinks severalfold.
  const double spread = b.max_deviation(b.mean());
  INFO("spread " << spread0 << " -> " << spread);
  CHECK(spread < 0.25 * spread0);
  double drift = 0;
  auto ma = a.mean(), mb = b.mean();
  for (size_t k = 0; k < ma.size(); ++k) drift = std::max(drift, std::fabs(ma[k] - mb[k]));
  CHECK(drift < 0.5);
}

TEST_CASE("the compressor publishes exactly the coordinates the per-coordinate rule picks", "[gossip]") {
  // A dimension that is no multiple of the compressor's chunk (1024) or its
  // 64-bit words, moves on both sides of the threshold (and exactly at it),
  // and NaNs: the public estimate after a publish is what the rule in
  // gossip_state.hpp gives coordinate by coordinate.
  const size_t dim = 2 * 1024 + 64 + 37;
  const float tau = 0.01f;
  for (int grid = 0; grid < 2; ++grid) {
    gossip_settings s;
    s.threshold = tau;
    s.grid = grid == 1;
    std::vector<float> x0(dim, 0.f);
    gossip_state g(0, {1}, s, x0);
    Rng rng(11);
    std::vector<float> x(dim), want(x0);
    for (size_t k = 0; k < dim; ++k) {
      const double u = rng.uniform();
      x[k] = u < 0.1 ? tau : u < 0.2 ? 0.75f * tau : static_cast<float>(rng.normal() * 0.01);
      if (k % 997 == 5) x[k] = std::nanf("");
    }
    for (size_t k = 0; k < dim; ++k) {
      const float d = std::fabs(x[k] - x0[k]);
      if (!grid) {
        if (d >= tau) want[k] = x[k];
      } else if (!(d < 0.75f * tau)) {
        const float v = std::nearbyint(std::clamp(x[k] / tau, -1e9f, 1e9f)) * tau;
        if (v != x0[k]) want[k] = v;  // a NaN: not equal, published as NaN
      }
    }
    g.publish(x, 1);
    const auto got = g.public_estimate();
    size_t differ = 0, moved = 0;
    for (size_t k = 0; k < dim; ++k) {
      differ += std::memcmp(&got[k], &want[k], sizeof(float)) != 0;
      moved += std::memcmp(&want[k], &x0[k], sizeof(float)) != 0;
    }
    INFO("grid " << grid << ": " << moved << " coordinates moved");
    CHECK(moved > dim / 10);
    CHECK(differ == 0);
  }
}
