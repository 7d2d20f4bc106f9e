// What forged frames look like on the wire: an extreme attacker's raw
// values, an equivocating attacker's per-neighbour frames, and the honest
// path untouched.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "actors/gossip_state.hpp"

using namespace murmur;

namespace {

gossip_settings grid_settings() {
  gossip_settings s;
  s.mode = gossip_mode::threshold;
  s.threshold = 0.01;
  s.grid = true;
  return s;
}

gossip_update decoded(std::span<const std::byte> frame) {
  gossip_update m;
  REQUIRE(decode_gossip(frame, 1u << 20, m) == frame_error::none);
  return m;
}

}  // namespace

TEST_CASE("extreme: the acting frame carries 16 raw +-1e30 values, the next one puts honest values back",
          "[attack]") {
  const size_t dim = 200;
  std::vector<float> x0(dim, 0.f), x(dim, 0.5f);
  attack_settings a;
  a.kind = attack_kind::extreme;
  a.every = 0;
  a.start_step = 1;
  a.seed = 3;
  gossip_state g(0, {1, 2}, grid_settings(), x0, a);
  gossip_state honest(1, {0}, grid_settings(), x0);
  auto first = decoded(g.publish(x, 1));
  CHECK(first.kind == update_kind::sparse_set);
  size_t extreme = 0;
  for (float v : first.values) extreme += std::fabs(v) == 1e30f;
  CHECK(extreme == update_attack::kExtremeCoords);
  CHECK(first.values.size() == dim);  // the honest move (0 -> 0.5) and the 16 forged values
  g.on_sent();
  g.on_sent();
  auto second = decoded(g.publish(x, 2));
  CHECK(second.kind == update_kind::grid_set);
  CHECK(second.values.size() == update_attack::kExtremeCoords);  // restored to 0.5
  for (float v : second.values) CHECK(v == Approx(0.5));
}

TEST_CASE("dissensus: one frame per neighbour, each its own point; honest peers send one frame", "[attack]") {
  const size_t dim = 50;
  std::vector<float> x0(dim, 0.f), x(dim, 0.f);
  attack_settings a;
  a.kind = attack_kind::dissensus;
  a.start_step = 1;
  a.neighbourhoods = {{1, {2}}, {2, {1}}};  // a triangle 0-1-2
  gossip_state attacker(0, {1, 2}, grid_settings(), x0, a);
  gossip_state p1(1, {0, 2}, grid_settings(), x0), p2(2, {0, 1}, grid_settings(), x0);
  CHECK(attacker.equivocates());
  CHECK_FALSE(p1.equivocates());
  // Peers 1 and 2 move apart; the attacker hears both.
  std::vector<float> x1(dim, 0.5f), x2(dim, -0.5f);
  auto f1 = p1.publish(x1, 0);
  REQUIRE(attacker.receive(1, std::vector<std::byte>(f1.begin(), f1.end())));
  auto f2 = p2.publish(x2, 0);
  REQUIRE(attacker.receive(2, std::vector<std::byte>(f2.begin(), f2.end())));
  CHECK(attacker.publish(x, 1).empty());
  auto to1 = decoded(attacker.frame_to(0)), to2 = decoded(attacker.frame_to(1));
  CHECK(to1.round == to2.round);
  // To 1: x1 - 1.5 (x2 - x1) = 0.5 + 1.5 = 2; to 2: -0.5 - 1.5 (x1 - x2) = -2.
  REQUIRE(to1.values.size() == dim);
  REQUIRE(to2.values.size() == dim);
  for (float v : to1.values) CHECK(v == Approx(2.0));
  for (float v : to2.values) CHECK(v == Approx(-2.0));
  CHECK(attacker.counters().msgs_sent == 2);
  CHECK(attacker.counters().bytes_sent == attacker.frame_to(0).size() + attacker.frame_to(1).size());
  // Both frames are accepted: equivocation is not visible to one receiver.
  CHECK(p1.receive(0, std::vector<std::byte>(attacker.frame_to(0).begin(), attacker.frame_to(0).end())));
  CHECK(p2.receive(0, std::vector<std::byte>(attacker.frame_to(1).begin(), attacker.frame_to(1).end())));
  // While its frames are on the wire, nothing: stale frames are not resent.
  attacker.publish(x, 2);
  CHECK(attacker.frame_to(0).empty());
  CHECK(attacker.frame_to(1).empty());
}
