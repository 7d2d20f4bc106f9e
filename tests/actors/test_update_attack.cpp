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
