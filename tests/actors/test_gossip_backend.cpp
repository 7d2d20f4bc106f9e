// gossip_state in backend mode (parameters on a GPU) against the host path:
// the same frames byte for byte, the same counters, and mixes that agree to
// float rounding (bit for bit with the clipping rules). Run here on the
// CPU backend; tests/gpu runs the CUDA one.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>

#include "actors/gossip_state.hpp"
#include "actors/topology.hpp"
#include "tensor/cpu_backend.hpp"
#include "tensor/rng.hpp"
#include "tests/counting_backend.hpp"
#include "same_counters.hpp"

using namespace murmur;

namespace {

struct twin_swarm {
  size_t dim;
  std::unique_ptr<compute_backend> be = make_cpu_backend();
  std::vector<std::vector<float>> x;   // host path's parameters
  std::vector<float*> dx;              // backend path's parameters
  std::vector<gossip_state> host, dev;
  // Largest |backend - host| / (1 + |host|) a mix may leave: float rounding
  // for the plain mix; 0 for the clipping rules (the same operations).
  double tolerance = 1e-6;
  // A hostile peer (when < n) drifts this many times faster than the
  // others, so its estimate runs away and the clipping rules shorten it.
  uint32_t hostile = UINT32_MAX;
  double hostile_factor = 50;

  twin_swarm(uint32_t n, size_t d, gossip_settings s, uint64_t seed) : dim(d) {
    auto nb = make_topology("ring", n, 2, seed);
    Rng rng(seed);
    std::vector<float> x0(dim);
    for (auto& v : x0) v = static_cast<float>(0.1 * rng.normal());
    for (uint32_t i = 0; i < n; ++i) {
      host.emplace_back(i, nb[i], s, x0);
      dev.emplace_back(i, nb[i], s, x0, *be);
      x.push_back(x0);
      dx.push_back(be->alloc(static_cast<int64_t>(dim)));
      be->upload(dx.back(), x0.data(), static_cast<int64_t>(dim));
    }
  }
  ~twin_swarm() {
    for (float* p : dx) be->free(p);
  }
  // A local "step": the same random drift on both paths.
  void drift(Rng& rng, double scale) {
    for (size_t i = 0; i < x.size(); ++i) {
      const double sc = i == hostile ? hostile_factor * scale : scale;
      for (auto& v : x[i]) v += static_cast<float>(sc * rng.normal());
      be->upload(dx[i], x[i].data(), static_cast<int64_t>(dim));
    }
  }
  void round(uint64_t step) {
    std::vector<std::vector<std::byte>> fh(x.size()), fd(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      auto a = host[i].publish(x[i], step);
      auto b = dev[i].publish_on_backend(dx[i], step);
      fh[i].assign(a.begin(), a.end());
      fd[i].assign(b.begin(), b.end());
      INFO("peer " << i << " round " << step);
      REQUIRE(fh[i] == fd[i]);
    }
    for (size_t i = 0; i < x.size(); ++i) {
      if (fh[i].empty()) continue;
      for (uint32_t j : host[i].neighbours()) {
        REQUIRE(host[j].receive(static_cast<uint32_t>(i), fh[i]));
        REQUIRE(dev[j].receive(static_cast<uint32_t>(i), fd[i]));
        host[i].on_sent();
        dev[i].on_sent();
      }
    }
    std::vector<float> back(dim);
    for (size_t i = 0; i < x.size(); ++i) {
      host[i].mix(x[i]);
      dev[i].mix_on_backend(dx[i]);
      be->download(back.data(), dx[i], static_cast<int64_t>(dim));
      double worst = 0;
      for (size_t k = 0; k < dim; ++k)
        worst = std::max(worst, std::fabs(static_cast<double>(back[k]) - x[i][k]) / (1.0 + std::fabs(x[i][k])));
      INFO("peer " << i << " round " << step << ": worst relative mix difference " << worst);
      REQUIRE(worst <= tolerance);
      // Continue from identical parameters, so the next frames must match exactly.
      be->upload(dx[i], x[i].data(), static_cast<int64_t>(dim));
    }
  }
};

// Returns the backend peers' silent rounds, in all.
uint64_t check_twins(gossip_settings s, const char* what, uint32_t hostile = UINT32_MAX) {
  INFO(what);
  twin_swarm w(5, 1037, s, 7);
  w.hostile = hostile;
  if (s.robust.rule != robust_rule::none) w.tolerance = 0;
  Rng rng(11);
  for (uint64_t r = 1; r <= 30; ++r) {
    w.drift(rng, 0.01);
    w.round(r);
  }
  // Membership changes: peers 0 and 2 become neighbours (each starts from its
  // own estimate of itself, and publishes in full next), then 0 and 1 part.
  for (size_t i = 0; i < w.x.size(); ++i) {
    auto ids = w.host[i].neighbours();
    std::vector<uint64_t> inc(ids.size(), 0);
    if (i == 0) {
      ids.push_back(2);
      inc.push_back(0);
    }
    if (i == 2) {
      ids.push_back(0);
      inc.push_back(0);
    }
    w.host[i].set_neighbours(ids, inc);
    w.dev[i].set_neighbours(ids, inc);
  }
  for (uint64_t r = 31; r <= 45; ++r) {
    w.drift(rng, 0.01);
    w.round(r);
  }
  // Both sides of a link drop it (one-sided, the other's frames would be
  // rejected as from a quarantined peer, on both paths alike).
  for (auto* g : {&w.host, &w.dev}) {
    REQUIRE((*g)[0].quarantine(1, quarantine_cause::evidence));
    REQUIRE((*g)[1].quarantine(0, quarantine_cause::evidence));
  }
  for (uint64_t r = 46; r <= 60; ++r) {
    w.drift(rng, 0.01);
    w.round(r);
  }
  for (size_t i = 0; i < w.x.size(); ++i) {
    test::check_same_counters(w.host[i].counters(), w.dev[i].counters());
    CHECK(w.host[i].counters().bytes_sent > 0);
  }
  if (s.robust.rule == robust_rule::clipped_gossip || s.robust.rule == robust_rule::centered_clip) {
    uint64_t clipped = 0;
    for (const auto& g : w.dev) clipped += g.counters().clipped;
    CHECK(clipped > 0);  // the rule did shorten pulls, so the equality above says something
  }
  uint64_t silent = 0;
  for (const auto& g : w.dev) silent += g.counters().silent_rounds;
  return silent;
}

}  // namespace

TEST_CASE("gossip on a backend sends the host path's frames and mixes alike: threshold, grid and dense",
          "[gossip][backend]") {
  gossip_settings s;
  s.threshold = 0.01;
  check_twins(s, "threshold 0.01");
  s.grid = true;
  check_twins(s, "grid 0.01");
  s.grid = false;
  s.threshold = 0;
  check_twins(s, "dense");
}

TEST_CASE("gossip on a backend with a trigger holds the host path's rounds back, at one double per publish",
          "[gossip][backend]") {
  gossip_settings s;
  s.threshold = 0.01;
  // A round's drift adds ~1037 * 1e-4 = 0.1 to the residual's squared norm:
  // some rounds are held back, others sent (check_twins compares the silent rounds).
  s.trigger = 0.25;
  CHECK(check_twins(s, "threshold 0.01, trigger 0.25") > 0);
  s.robust.rule = robust_rule::clipped_gossip;
  CHECK(check_twins(s, "threshold 0.01, trigger 0.25, clipped_gossip, peer 3 hostile", 3) > 0);

  auto cpu = make_cpu_backend();
  testing::counting_backend be(*cpu);
  const int64_t dim = 1000;
  std::vector<float> x0(static_cast<size_t>(dim), 0.f), x = x0;
  s = {};
  s.threshold = 0.01;
  s.trigger = 1.0;
  gossip_state a(0, {1}, s, x0, be);
  float* xa = be.alloc(dim);
  x[0] = 0.9f;  // squared norm 0.81 < 1: held back
  be.upload(xa, x.data(), dim);
  be.downloaded = 0;
  CHECK(a.publish_on_backend(xa, 1).empty());
  CHECK(a.counters().silent_rounds == 1);
  CHECK(be.downloaded == 1);  // the norm, nothing else
  x[1] = 0.5f;  // 0.81 + 0.25 >= 1: sent, two coordinates
  be.upload(xa, x.data(), dim);
  be.downloaded = 0;
  CHECK_FALSE(a.publish_on_backend(xa, 2).empty());
  CHECK(a.counters().coords_sent == 2);
  CHECK(be.downloaded == 1 + 2 * 2);  // the norm, then the frame's indices and values
  be.free(xa);
}

TEST_CASE("gossip on a backend with the clipping rules mixes as the host path, bit for bit, with the same clip counts",
          "[gossip][backend][robust]") {
  for (auto rule : {robust_rule::clipped_gossip, robust_rule::centered_clip}) {
    const char* name = rule == robust_rule::clipped_gossip ? "clipped_gossip" : "centered_clip";
    INFO(name);
    gossip_settings s;
    s.robust.rule = rule;
    s.threshold = 0.01;
    check_twins(s, "threshold 0.01, honest");
    check_twins(s, "threshold 0.01, peer 3 hostile", 3);
    s.grid = true;
    check_twins(s, "grid 0.01, peer 3 hostile", 3);
    s.grid = false;
    s.threshold = 0;
    check_twins(s, "dense, peer 3 hostile", 3);
    s.threshold = 0.01;
    s.robust.clip_radius = 0.05;  // a fixed radius
    check_twins(s, "threshold 0.01, fixed radius, peer 3 hostile", 3);
  }
}

TEST_CASE("gossip on a backend with median and trimmed mean mixes as the host path, bit for bit",
          "[gossip][backend][robust]") {
  for (auto rule : {robust_rule::median, robust_rule::trimmed_mean}) {
    INFO((rule == robust_rule::median ? "median" : "trimmed_mean"));
    gossip_settings s;
    s.robust.rule = rule;
    s.robust.trim = 0.26;  // drops none of 3 members, one at each end of 4 (after the membership change)
    s.threshold = 0.01;
    check_twins(s, "threshold 0.01, honest");
    check_twins(s, "threshold 0.01, peer 3 hostile", 3);
    s.threshold = 0;
    check_twins(s, "dense, peer 3 hostile", 3);
  }
}

TEST_CASE("gossip on a backend applies a received frame there and rejects bad frames as the host path does",
          "[gossip][backend]") {
  gossip_settings s;
  s.threshold = 0.01;
  twin_swarm w(3, 64, s, 3);
  // A frame from a stranger and a truncated frame: rejected, nothing changes.
  Rng rng(5);
  w.drift(rng, 0.05);
  auto f = w.host[1].publish(w.x[1], 1);
  std::vector<std::byte> frame(f.begin(), f.end());
  REQUIRE(!frame.empty());
  reject_reason why_host{}, why_dev{};
  CHECK_FALSE(w.host[0].receive(2 + 7, frame, &why_host));
  CHECK_FALSE(w.dev[0].receive(2 + 7, frame, &why_dev));
  CHECK(why_host == why_dev);
  std::vector<std::byte> cut(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(frame.size() / 2));
  CHECK_FALSE(w.host[0].receive(1, cut, &why_host));
  CHECK_FALSE(w.dev[0].receive(1, cut, &why_dev));
  CHECK(why_host == why_dev);
}

TEST_CASE("gossip on a backend refuses the settings it does not run, naming them", "[gossip][backend]") {
  auto be = make_cpu_backend();
  std::vector<float> x0(8, 0.f);
  gossip_settings s;
  s.mode = gossip_mode::delta;
  CHECK_THROWS_WITH(gossip_state(0, {1}, s, x0, *be), Catch::Contains("gossip.mode = delta"));
  s.trigger = 1;  // delta mode's trigger too: still the mode that is named
  CHECK_THROWS_WITH(gossip_state(0, {1}, s, x0, *be), Catch::Contains("gossip.mode = delta"));
  s = {};
  s.trigger = 1;  // threshold mode's trigger runs on the backend
  CHECK(gossip_state::backend_unsupported(s, {}).empty());
  s = {};
  s.robust.rule = robust_rule::krum;
  CHECK_THROWS_WITH(gossip_state(0, {1}, s, x0, *be), Catch::Contains("gossip.robust = krum"));
  for (auto rule : {robust_rule::clipped_gossip, robust_rule::centered_clip, robust_rule::median,
                    robust_rule::trimmed_mean}) {  // clipped_gossip is the default
    s.robust.rule = rule;
    CHECK(gossip_state::backend_unsupported(s, {}).empty());
  }
  s = {};
  s.detect.enabled = true;
  CHECK_THROWS_WITH(gossip_state(0, {1}, s, x0, *be), Catch::Contains("detect.method"));
  attack_settings a;
  a.kind = attack_kind::sign_flip;
  CHECK(gossip_state::backend_unsupported({}, a) == "an update attack");
  CHECK(gossip_state::backend_unsupported({}, {}).empty());
}

TEST_CASE("gossip on a backend moves a round's selected coordinates across, never the model", "[gossip][backend]") {
  auto cpu = make_cpu_backend();
  testing::counting_backend be(*cpu);
  const int64_t dim = 100000;
  std::vector<float> x0(static_cast<size_t>(dim), 0.f), x = x0;
  gossip_settings s;
  s.threshold = 0.01;
  gossip_state a(0, {1}, s, x0, be), b(1, {0}, s, x0, be);
  float* xa = be.alloc(dim);
  float* xb = be.alloc(dim);
  for (int64_t k = 0; k < dim; k += 1000) x[static_cast<size_t>(k)] = 0.5f;  // 100 coordinates moved
  be.upload(xa, x.data(), dim);
  be.uploaded = be.downloaded = 0;
  auto f = a.publish_on_backend(xa, 1);
  const std::vector<std::byte> frame(f.begin(), f.end());
  REQUIRE(a.counters().coords_sent == 100);
  CHECK(be.downloaded == 2 * 100);  // indices and values of the frame
  CHECK(be.uploaded == 0);
  REQUIRE(b.receive(0, frame));
  a.on_sent();
  CHECK(be.uploaded == 2 * 100);
  const int64_t before = be.uploaded + be.downloaded;
  b.mix_on_backend(xb);
  a.mix_on_backend(xa);
  CHECK(be.uploaded + be.downloaded == before);  // mixing stays on the backend
  std::vector<float> got(static_cast<size_t>(dim));
  be.download(got.data(), xb, dim);
  // b moved toward a's public estimate: c * 0.5 with c = gamma / 2.
  CHECK(got[0] == Approx(0.5 * 0.5 / 2));
  CHECK(got[1] == 0.f);
  be.free(xa);
  be.free(xb);
}

TEST_CASE("gossip on a backend with a robust rule moves the frames (and m distances) across, never the model",
          "[gossip][backend][robust]") {
  for (auto rule : {robust_rule::clipped_gossip, robust_rule::centered_clip, robust_rule::median}) {
    INFO("rule " << static_cast<int>(rule));
    const bool clips = rule != robust_rule::median;
    auto cpu = make_cpu_backend();
    testing::counting_backend be(*cpu);
    const int64_t dim = 100000;
    const size_t d = static_cast<size_t>(dim);
    gossip_settings s;
    s.threshold = 0.01;
    s.robust.rule = rule;
    // centered_clip's adaptive radius is the upper of two distances, which
    // clips nothing here: a fixed one, below peer 2's distance.
    if (rule == robust_rule::centered_clip) s.robust.clip_radius = 5;
    // Three peers, all neighbours (m = 2 each); the host twins say what the
    // backend peers' parameters must be.
    const std::vector<std::vector<uint32_t>> nb = {{1, 2}, {0, 2}, {0, 1}};
    std::vector<float> x0(d, 0.f);
    std::vector<gossip_state> dev, host;
    std::vector<std::vector<float>> x(3, x0);
    std::vector<float*> dx;
    for (uint32_t i = 0; i < 3; ++i) {
      dev.emplace_back(i, nb[i], s, x0, be);
      host.emplace_back(i, nb[i], s, x0);
      dx.push_back(be.alloc(dim));
    }
    for (uint64_t round = 1; round <= 5; ++round) {
      for (size_t i = 0; i < 3; ++i) {
        // 100 coordinates moved per peer and round; peer 2's by far more (hostile).
        for (size_t k = i * 7 + round; k < d; k += 1000) x[i][k] += i == 2 ? 5.f : 0.1f * static_cast<float>(i + 1);
        be.upload(dx[i], x[i].data(), dim);
      }
      be.uploaded = be.downloaded = 0;
      int64_t coords = 0;  // this round's, over the three frames
      for (size_t i = 0; i < 3; ++i) coords -= static_cast<int64_t>(dev[i].counters().coords_sent);
      std::vector<std::vector<std::byte>> frames(3);
      for (size_t i = 0; i < 3; ++i) {
        auto f = dev[i].publish_on_backend(dx[i], round);
        auto h = host[i].publish(x[i], round);
        frames[i].assign(f.begin(), f.end());
        REQUIRE(frames[i] == std::vector<std::byte>(h.begin(), h.end()));
      }
      for (size_t i = 0; i < 3; ++i) coords += static_cast<int64_t>(dev[i].counters().coords_sent);
      REQUIRE(coords > 0);
      REQUIRE(5 * coords < 4 * 3 * dim);  // sparse frames: indices and values
      for (size_t i = 0; i < 3; ++i)
        for (uint32_t j : nb[i]) {
          REQUIRE(dev[j].receive(static_cast<uint32_t>(i), frames[i]));
          REQUIRE(host[j].receive(static_cast<uint32_t>(i), frames[i]));
          dev[i].on_sent();
          host[i].on_sent();
        }
      const int64_t published = be.downloaded, received = be.uploaded;
      CHECK(published == 2 * coords);      // each frame's indices and values, once
      CHECK(received == 2 * 2 * coords);   // each frame at its two receivers
      for (size_t i = 0; i < 3; ++i) {
        dev[i].mix_on_backend(dx[i]);
        host[i].mix(x[i]);
      }
      INFO("round " << round);
      // The mix: m = 2 distances per peer with a clipping rule, and nothing else.
      CHECK(be.downloaded - published == (clips ? 3 * 2 : 0));
      CHECK(be.uploaded == received);
      CHECK(be.uploaded + be.downloaded < dim);  // far below one model
      std::vector<float> got(d);
      for (size_t i = 0; i < 3; ++i) {
        be.download(got.data(), dx[i], dim);
        CHECK(got == x[i]);
        CHECK(dev[i].counters().clipped == host[i].counters().clipped);
      }
    }
    if (clips) CHECK(dev[0].counters().clipped > 0);  // peer 2's pull was shortened
    for (float* p : dx) be.free(p);
  }
}
