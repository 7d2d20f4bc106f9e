// Per-link send periods (gossip.link_period_max, actors/link_budget.hpp):
// each link's two copies of the sender's estimate stay bit-identical however
// rarely the link is sent, and a busy peer sends less to a neighbour that
// barely uses its estimate than to one that does.
#include <catch2/catch.hpp>
#include <deque>
#include <random>

#include "actors/gossip_state.hpp"
#include "actors/link_budget.hpp"
#include "actors/topology.hpp"

using namespace murmur;

namespace {

// A ring of 4: peers 0 and 1 on slow uplinks (a frame holds the uplink for
// `slow` ticks), peers 2 and 3 on uplinks that keep up (0 ticks). Every peer
// steps every tick: mix, a random-walk "training" move, publish. A frame
// arrives when it leaves the uplink (FIFO per sender).
struct wan {
  struct frame {
    uint32_t from, to;
    uint64_t leaves;
    std::vector<std::byte> bytes;
  };
  std::vector<std::vector<float>> x;
  std::vector<gossip_state> g;
  std::vector<uint64_t> cost, busy_until;
  std::deque<frame> wire;
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> link_bytes;
  std::mt19937 rng{7};

  wan(gossip_settings s, size_t dim, uint64_t slow) : cost{slow, slow, 0, 0}, busy_until(4, 0) {
    auto nb = make_topology("ring", 4, 0, 0);
    std::vector<float> zero(dim, 0.f);
    for (uint32_t i = 0; i < 4; ++i) {
      g.emplace_back(i, nb[i], s, zero);
      x.push_back(zero);
    }
  }
  void deliver(uint64_t t) {
    for (auto it = wire.begin(); it != wire.end();) {
      if (it->leaves > t) { ++it; continue; }
      REQUIRE(g[it->to].receive(it->from, it->bytes));
      g[it->from].on_sent();
      it = wire.erase(it);
    }
  }
  void send(uint32_t i, uint32_t to, std::span<const std::byte> f, uint64_t t) {
    busy_until[i] = std::max(busy_until[i], t) + cost[i];
    wire.push_back({i, to, busy_until[i], std::vector<std::byte>(f.begin(), f.end())});
    link_bytes[{i, to}] += f.size();
  }
  void run(uint64_t ticks) {
    std::normal_distribution<float> step(0.f, 0.02f);
    for (uint64_t t = 1; t <= ticks; ++t) {
      deliver(t);
      for (uint32_t i = 0; i < 4; ++i) {
        g[i].mix(x[i]);
        for (float& v : x[i]) v += step(rng);
        auto f = g[i].publish(x[i], t);
        const auto& nb = g[i].neighbours();
        if (!f.empty()) {
          for (uint32_t j : nb) send(i, j, f, t);
        } else if (g[i].per_neighbour_frames()) {
          for (size_t s = 0; s < nb.size(); ++s)
            if (!g[i].frame_to(s).empty()) send(i, nb[s], g[i].frame_to(s), t);
        }
      }
    }
    deliver(~uint64_t{0});  // drain: every frame sent has arrived
  }
  size_t slot(uint32_t peer, uint32_t of) const {
    const auto& nb = g[peer].neighbours();
    return static_cast<size_t>(std::find(nb.begin(), nb.end(), of) - nb.begin());
  }
};

gossip_settings budgeted(uint32_t max_period) {
  gossip_settings s;
  s.threshold = 0.01;
  s.grid = true;
  s.contribution = contribution_rule::rate;
  s.contribution_window = 10;
  s.link_period_max = max_period;
  return s;
}

}  // namespace

TEST_CASE("link budget: each link's two copies stay bit-identical, the slow link to a fast peer gets fewer bytes",
          "[gossip][link_budget]") {
  wan w(budgeted(8), 64, 3);
  w.run(600);
  // Per-link error feedback is exact: what j holds of i is i's copy for j,
  // value for value (the grid compressor may keep a -0 where the frame
  // decodes +0: equal values, as on every gossip link, not this scheme's).
  for (uint32_t i = 0; i < 4; ++i)
    for (uint32_t j : w.g[i].neighbours()) {
      const auto mine = w.g[i].link_estimate(w.slot(i, j));
      const auto theirs = w.g[j].neighbour_estimate(w.slot(j, i));
      REQUIRE(mine.size() == theirs.size());
      size_t diff = 0, first = 0;
      for (size_t k = 0; k < mine.size(); ++k) if (mine[k] != theirs[k]) { if (!diff) first = k; ++diff; }
      INFO("link " << i << " -> " << j << ": " << diff << " differ, first " << first << " " << mine[first] << " vs " << theirs[first]);
      CHECK(diff == 0);
    }
  // Peer 0 (busy uplink) has neighbours 1 (as slow) and 3 (fast, mixes every
  // tick: it barely uses our estimate): a longer period, fewer bytes to 3.
  const auto p0 = w.g[0].link_periods();
  INFO("periods of peer 0: to 1 " << p0[w.slot(0, 1)] << ", to 3 " << p0[w.slot(0, 3)]);
  CHECK(p0[w.slot(0, 3)] > 1);
  CHECK(p0[w.slot(0, 1)] == 1);
  const uint64_t to_slow = w.link_bytes[{0, 1}], to_fast = w.link_bytes[{0, 3}];
  INFO("bytes 0 -> 1: " << to_slow << ", 0 -> 3: " << to_fast);
  CHECK(2 * to_fast < to_slow);
  // Fast peers' uplinks keep up: they send every neighbour every round.
  for (uint32_t i : {2u, 3u})
    for (uint32_t p : w.g[i].link_periods()) CHECK(p == 1);

  // The host's report (sends_report): per link its period and frames, and
  // the published rounds; a link that ends (neighbour 3 leaves) is still
  // reported with its frames.
  {
    const auto r = w.g[0].sends_report().link_sends;
    REQUIRE(r.size() == 2);
    uint64_t frames3 = 0;
    for (const auto& l : r) {
      const size_t sl = w.slot(0, l.peer);
      CHECK(l.period == p0[sl]);
      CHECK(l.rounds > 0);
      CHECK(l.frames <= l.rounds);
      if (l.peer == 3) frames3 = l.frames;
    }
    CHECK(frames3 > 0);
    CHECK(frames3 < r[0].rounds);  // thinned: fewer frames than rounds
    std::vector<uint32_t> keep{1};
    std::vector<uint64_t> inc{0};
    w.g[0].set_neighbours(keep, inc);
    const auto after = w.g[0].sends_report().link_sends;
    REQUIRE(after.size() == 2);
    CHECK(after[0].peer == 1);
    CHECK(after[1].peer == 3);
    CHECK(after[1].frames == frames3);
    CHECK(w.g[1].sends_report().link_sends.size() == 2);
    CHECK(gossip_state(0, {1}, gossip_settings{}, std::vector<float>(4, 0.f)).sends_report().link_sends.empty());
  }

  // Against every link every round (the same world, budget off): the slow
  // peer publishes more rounds, since its uplink is busy less often.
  wan all(budgeted(1), 64, 3);
  all.run(600);
  CHECK(w.link_bytes[{0, 3}] < all.link_bytes[{0, 3}]);
  CHECK(w.g[0].counters().busy_rounds < all.g[0].counters().busy_rounds);
}

TEST_CASE("link budget: periods from the neighbour's ratio and our uplink's busy share", "[link_budget]") {
  link_budget b(8, 4, 3);
  const std::vector<float> ratios{6.f, 1.f, 100.f};
  b.plan(ratios);
  for (uint32_t p : b.periods()) CHECK(p == 1);  // not yet busy: every link every round
  for (int i = 0; i < 8; ++i) b.attempt(true);  // two windows fully busy: share 0.75
  CHECK(b.busy_share() == Approx(0.75));
  b.plan(ratios);
  CHECK(b.periods()[0] == 4);  // floor(6 * 0.75)
  CHECK(b.periods()[1] == 1);
  CHECK(b.periods()[2] == 8);  // capped
  CHECK(b.due(0, 1));          // never sent: due
  b.sent(0, 1);
  CHECK_FALSE(b.due(0, 4));
  CHECK(b.due(0, 5));
  const std::vector<int> from{2, -1};
  b.remap(from);
  CHECK(b.periods()[0] == 8);
  CHECK(b.due(1, 1));  // a new neighbour is due at once
}

TEST_CASE("link budget: refused where it cannot apply", "[link_budget]") {
  std::vector<float> x0(4, 0.f);
  auto s = budgeted(4);
  s.contribution = contribution_rule::uniform;
  CHECK_THROWS_WITH(gossip_state(0, {1}, s, x0), Catch::Contains("gossip.contribution = uniform"));
  s = budgeted(4);
  s.mode = gossip_mode::delta;
  CHECK_THROWS_WITH(gossip_state(0, {1}, s, x0), Catch::Contains("gossip.mode = delta"));
  CHECK_FALSE(gossip_state::replay_unsupported(budgeted(4), {}).empty());
  CHECK_FALSE(gossip_state::backend_unsupported(budgeted(4), {}).empty());
  CHECK(gossip_state::link_budget_unsupported(budgeted(1)).empty());
}
