#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "actors/update_attack.hpp"

using namespace murmur;

namespace {

// An attacker with two neighbours (ids 1 and 2) at x0 = 0 in 3 coordinates.
struct rig {
  std::vector<float> zero = std::vector<float>(3, 0.f);
  std::vector<uint32_t> ids = {1, 2};
  update_attack attack;
  explicit rig(attack_settings a) : attack(a, zero, ids) {}
  // Neighbour `slot` moves from 0 to `to` (a dense frame).
  void neighbour_moves(size_t slot, std::vector<float> to) {
    gossip_update m;
    m.kind = update_kind::dense_set;
    m.values = std::move(to);
    attack.observe(slot, zero, m);
  }
  std::vector<float> poison(std::vector<float> honest, uint64_t step) {
    auto p = attack.poison(honest, step);
    return {p.begin(), p.end()};
  }
};

attack_settings settings(attack_kind k, double scale = 0, uint64_t start = 0) {
  attack_settings a;
  a.kind = k;
  a.scale = scale;
  a.noise = 0;
  a.start_step = start;
  return a;
}

}  // namespace

TEST_CASE("sign flip, zero gradient and mean shift follow their formulas", "[attack]") {
  // Updates seen: ours (1, 2, 3), neighbours (3, 2, 1) and (2, 2, 2):
  // mu = (2, 2, 2), sigma = (sqrt(2/3), 0, sqrt(2/3)), sum = (6, 6, 6).
  const double sd = std::sqrt(2.0 / 3.0);
  {
    rig r(settings(attack_kind::sign_flip));
    r.neighbour_moves(0, {3, 2, 1});
    r.neighbour_moves(1, {2, 2, 2});
    auto p = r.poison({1, 2, 3}, 1);
    for (float v : p) CHECK(v == Approx(-6));  // -3 mu
  }
  {
    rig r(settings(attack_kind::zero_gradient));
    r.neighbour_moves(0, {3, 2, 1});
    r.neighbour_moves(1, {2, 2, 2});
    auto p = r.poison({1, 2, 3}, 1);
    for (float v : p) CHECK(v == Approx(-6));  // -(sum of the three)
  }
  {
    rig r(settings(attack_kind::mean_shift, 1.5));
    r.neighbour_moves(0, {3, 2, 1});
    r.neighbour_moves(1, {2, 2, 2});
    auto p = r.poison({1, 2, 3}, 1);
    CHECK(p[0] == Approx(2 - 1.5 * sd));
    CHECK(p[1] == Approx(2));
    CHECK(p[2] == Approx(2 - 1.5 * sd));
  }
}

TEST_CASE("the poisoned estimate accumulates, honest before start_step", "[attack]") {
  rig r(settings(attack_kind::sign_flip, 1, 5));
  auto before = r.poison({1, 1, 1}, 4);  // not yet: p = h
  for (float v : before) CHECK(v == Approx(1));
  r.neighbour_moves(0, {1, 1, 1});
  auto after = r.poison({1, 1, 1}, 5);  // x_pub = 1 + (-1 * mu) = 0
  for (float v : after) CHECK(v == Approx(0));
}

TEST_CASE("a neighbour's update counts only in the round it was heard", "[attack]") {
  rig r(settings(attack_kind::zero_gradient));
  r.neighbour_moves(0, {4, 4, 4});
  auto first = r.poison({0, 0, 0}, 1);  // -(0 + 4)
  CHECK(first[0] == Approx(-4));
  auto second = r.poison({0, 0, 0}, 2);  // nothing heard: -(0)
  CHECK(second[0] == Approx(-4));
}

TEST_CASE("fellow attackers' updates are not taken for honest ones", "[attack]") {
  auto a = settings(attack_kind::zero_gradient);
  a.colluders = {2};
  rig r(a);
  r.neighbour_moves(0, {1, 1, 1});
  r.neighbour_moves(1, {100, 100, 100});  // the colluder's forged update
  auto p = r.poison({1, 1, 1}, 1);
  CHECK(p[0] == Approx(-2));
  CHECK(r.attack.colludes_with(2));
  CHECK_FALSE(r.attack.colludes_with(1));
}

TEST_CASE("Gaussian: noise of 30 times the honest spread around the mean", "[attack]") {
  const size_t dim = 20000;
  std::vector<float> x0(dim, 0.f), h(dim), d(dim);
  std::vector<uint32_t> ids = {1};
  attack_settings a = settings(attack_kind::gaussian);
  a.seed = 7;
  update_attack attack(a, x0, ids);
  for (size_t k = 0; k < dim; ++k) h[k] = 1.f, d[k] = 3.f;  // mu = 2, sigma = 1 everywhere
  gossip_update m;
  m.kind = update_kind::dense_set;
  m.values = d;
  attack.observe(0, x0, m);
  auto p = attack.poison(h, 1);
  double mean = 0, sq = 0;
  for (float v : p) mean += v, sq += (v - 2.0) * (v - 2.0);
  mean /= dim;
  CHECK(mean == Approx(2).margin(0.5));
  CHECK(std::sqrt(sq / dim) == Approx(30).epsilon(0.03));
}

TEST_CASE("each attacker's own noise makes two attackers differ", "[attack]") {
  std::vector<float> x0(100, 0.f), h(100, 1.f);
  std::vector<uint32_t> ids = {5};
  attack_settings a = settings(attack_kind::sign_flip);
  a.noise = 0.1;
  a.seed = 1;
  attack_settings b = a;
  b.seed = 2;
  update_attack first(a, x0, ids), second(b, x0, ids);
  std::vector<float> d(100, 0.f);
  gossip_update m;
  m.kind = update_kind::dense_set;
  m.values = d;  // the spread is (1 - 0)/2 = 0.5 everywhere
  first.observe(0, x0, m);
  second.observe(0, x0, m);
  auto p = first.poison(h, 1);
  std::vector<float> pa(p.begin(), p.end());
  auto q = second.poison(h, 1);
  size_t differ = 0;
  for (size_t k = 0; k < 100; ++k) differ += pa[k] != q[k];
  CHECK(differ == 100);
}

TEST_CASE("ipm: minus a small multiple of the mean honest update", "[attack]") {
  // mu = (2, 2, 2) as above.
  for (double eps : {0.0, 0.5}) {
    rig r(settings(attack_kind::ipm, eps));
    r.neighbour_moves(0, {3, 2, 1});
    r.neighbour_moves(1, {2, 2, 2});
    auto p = r.poison({1, 2, 3}, 1);
    const double e = eps > 0 ? eps : 0.1;  // 0: the default, 0.1
    for (float v : p) CHECK(v == Approx(-e * 2));
  }
}

TEST_CASE("extreme: 16 coordinates at +-scale (default 1e30) in acting rounds, x_pub honest", "[attack]") {
  std::vector<float> x0(1000, 0.f), h(1000, 0.5f);
  std::vector<uint32_t> ids = {1};
  auto check_round = [&](update_attack& a, double magnitude) {
    auto idx = a.raw_indices();
    auto val = a.raw_values();
    REQUIRE(idx.size() == update_attack::kExtremeCoords);
    REQUIRE(val.size() == idx.size());
    CHECK(std::adjacent_find(idx.begin(), idx.end(), [](uint32_t x, uint32_t y) { return x >= y; }) == idx.end());
    for (float v : val) CHECK(std::fabs(v) == static_cast<float>(magnitude));
    return std::vector<uint32_t>(idx.begin(), idx.end());
  };
  {
    auto s = settings(attack_kind::extreme, 0, 3);
    s.seed = 11;
    update_attack a(s, x0, ids);
    a.poison(h, 2);
    CHECK(a.raw_indices().empty());  // before start_step
    auto p = a.poison(h, 3);
    for (float v : p) CHECK(v == Approx(1.0));  // x_pub = 2 honest updates
    auto first = check_round(a, 1e30);
    a.poison(h, 4);
    auto second = check_round(a, 1e30);  // every = 1: again, elsewhere
    CHECK(first != second);
  }
  {
    auto s = settings(attack_kind::extreme, 7.5, 3);
    s.every = 0;  // once
    update_attack a(s, x0, ids);
    a.poison(h, 5);  // the first publish at or after start_step
    check_round(a, 7.5);
    for (uint64_t step = 6; step < 20; ++step) {
      a.poison(h, step);
      CHECK(a.raw_indices().empty());
    }
  }
}

TEST_CASE("dissensus: each neighbour is pushed away from its neighbourhood's consensus", "[attack]") {
  // We (honest estimate (1,1,1)) neighbour 1 at (2,2,2) and 2 at (5,5,5).
  // Peer 1's other neighbours: 2 (we hold it) and 3 (we do not: the mean of
  // what we hold, 8/3); peer 2's: 1 and 4, a colluder (b = 2).
  auto s = settings(attack_kind::dissensus, 0, 1);
  s.colluders = {4};
  s.neighbourhoods = {{1, {2, 3}}, {2, {1, 4}}};
  std::vector<float> x0(3, 0.f), honest(3, 1.f);
  std::vector<uint32_t> ids = {1, 2};
  std::vector<std::vector<float>> nbr = {{2, 2, 2}, {5, 5, 5}};
  update_attack a(s, x0, ids);
  CHECK(a.equivocates());
  a.poison(honest, 0);  // before start_step: everybody gets our honest estimate
  for (const auto& p : a.isolate(honest, nbr))
    for (float v : p) CHECK(v == Approx(1));
  a.poison(honest, 1);
  const auto& p = a.isolate(honest, nbr);
  // eps = 1.5: 2 - 1.5 * ((5 + 8/3) - 2 * 2) = -3.5; 5 - 1.5/2 * (2 - 5) = 7.25.
  for (float v : p[0]) CHECK(v == Approx(-3.5));
  for (float v : p[1]) CHECK(v == Approx(7.25));
}

TEST_CASE("colluders without their own noise (same stream, same view) publish identical vectors", "[attack]") {
  std::vector<float> x0(500, 0.f), h(500), d(500);
  for (size_t k = 0; k < 500; ++k) h[k] = static_cast<float>(k % 7) * 0.01f, d[k] = static_cast<float>(k % 5) * 0.01f;
  std::vector<uint32_t> ids = {1};
  for (attack_kind k : {attack_kind::gaussian, attack_kind::sign_flip, attack_kind::extreme}) {
    auto s = settings(k);  // noise 0
    s.seed = 42;           // attack_plan gives colluders one stream when noise = 0
    update_attack first(s, x0, ids), second(s, x0, ids);
    gossip_update m;
    m.kind = update_kind::dense_set;
    m.values = d;
    first.observe(0, x0, m);
    second.observe(0, x0, m);
    auto p = first.poison(h, 1);
    std::vector<float> pa(p.begin(), p.end());
    auto q = second.poison(h, 1);
    CHECK(std::equal(pa.begin(), pa.end(), q.begin()));
    CHECK(std::equal(first.raw_values().begin(), first.raw_values().end(), second.raw_values().begin(),
                     second.raw_values().end()));
  }
}
