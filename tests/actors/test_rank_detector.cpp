#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "actors/rank_detector.hpp"
#include "tensor/rng.hpp"

using namespace murmur;

namespace {

enum class planted { none, gaussian, sign_flip, mean_shift, zero_gradient };

// A neighbourhood without gossip: ourselves (id 0) and 7 neighbours (ids
// 1..7), each public estimate moving by a common drift plus its own noise
// every round; neighbour 7 may publish a forged update instead, built from
// the honest updates of the round like update_attack does.
struct neighbourhood {
  static constexpr size_t dim = 4000, n = 8;
  std::vector<float> self;
  std::vector<std::vector<float>> nbr;
  std::vector<uint32_t> ids = {1, 2, 3, 4, 5, 6, 7};
  std::vector<uint64_t> rounds = std::vector<uint64_t>(7, 0);
  std::vector<float> drift;
  Rng rng;
  planted kind;

  neighbourhood(uint64_t seed, planted k) : self(dim, 0.f), nbr(7, std::vector<float>(dim, 0.f)), drift(dim), rng(seed), kind(k) {
    for (auto& d : drift) d = static_cast<float>(0.5 * rng.normal());
  }
  void round() {
    std::vector<std::vector<float>> u(n, std::vector<float>(dim));
    for (auto& row : u)
      for (size_t k = 0; k < dim; ++k) row[k] = drift[k] + static_cast<float>(rng.normal());
    if (kind != planted::none) {
      // Mean and spread of the 7 honest updates (ours and neighbours 1..6).
      double s2 = 0;
      std::vector<double> mu(dim), sd(dim);
      for (size_t k = 0; k < dim; ++k) {
        double sum = 0, sq = 0;
        for (size_t j = 0; j < n - 1; ++j) sum += u[j][k], sq += u[j][k] * u[j][k];
        mu[k] = sum / (n - 1);
        sd[k] = std::sqrt(std::max(0.0, sq / (n - 1) - mu[k] * mu[k]));
        s2 += sd[k] * sd[k];
      }
      const double s = std::sqrt(s2 / dim);
      for (size_t k = 0; k < dim; ++k) {
        double p = 0;
        switch (kind) {
          case planted::gaussian: p = mu[k] + 30 * s * rng.normal(); break;
          case planted::sign_flip: p = -3 * mu[k]; break;
          case planted::mean_shift: p = mu[k] - 1.0 * sd[k]; break;
          case planted::zero_gradient: p = -static_cast<double>(n - 1) * mu[k]; break;
          default: p = 0; break;
        }
        u[n - 1][k] = static_cast<float>(p + 0.1 * s * rng.normal());
      }
    }
    for (size_t k = 0; k < dim; ++k) self[k] += u[0][k];
    for (size_t j = 0; j < 7; ++j) {
      for (size_t k = 0; k < dim; ++k) nbr[j][k] += u[j + 1][k];
      ++rounds[j];
    }
  }
};

detect_settings settings() {
  detect_settings s;
  s.enabled = true;
  s.window = 5;
  s.threshold = 0.2;
  s.patience = 3;
  s.coords = 2000;
  s.seed = 11;
  return s;
}

// Rounds until the detector reports; the ids reported.
std::vector<uint32_t> run(neighbourhood& w, int rounds) {
  rank_detector d(settings(), 0, neighbourhood::dim);
  std::vector<uint32_t> reported;
  for (int r = 0; r < rounds; ++r) {
    w.round();
    auto q = d.on_round(w.self, w.ids, w.nbr, w.rounds);
    reported.insert(reported.end(), q.begin(), q.end());
  }
  return reported;
}

}  // namespace

TEST_CASE("the detector reports a planted forged update and no honest neighbour", "[detect]") {
  for (auto kind : {planted::gaussian, planted::sign_flip, planted::mean_shift, planted::zero_gradient}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      neighbourhood w(seed, kind);
      auto reported = run(w, 40);
      INFO("attack " << static_cast<int>(kind) << " seed " << seed);
      CHECK(reported == std::vector<uint32_t>{7});
    }
  }
}

TEST_CASE("among honest neighbours only, nothing is ever reported", "[detect]") {
  size_t reports = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    neighbourhood w(100 + seed, planted::none);
    reports += run(w, 60).size();
  }
  CHECK(reports == 0);
}

TEST_CASE("mid-ranks: members that tie everywhere share the middle rank", "[detect]") {
  // Ours and three neighbours: 1 and 2 never move (a tie), 3 moves up, we move down.
  rank_detector d(settings(), 0, 100);
  std::vector<float> self(100, 0.f);
  std::vector<std::vector<float>> nbr(3, std::vector<float>(100, 0.f));
  std::vector<uint32_t> ids = {1, 2, 3};
  std::vector<uint64_t> rounds = {0, 0, 0};
  for (int r = 1; r <= 5; ++r) {
    for (auto& v : self) v -= 1.f;
    for (auto& v : nbr[2]) v += 1.f;
    for (auto& x : rounds) ++x;
    d.on_round(self, ids, nbr, rounds);
  }
  auto f = d.last_check();
  REQUIRE(f.size() == 4);
  // Ranks: ours 1, the tied pair 2.5 each, neighbour 3 rank 4; n = 4, centre 2.5, half-range 1.5.
  CHECK(f[0].u == Approx(-1.0));
  CHECK(f[1].u == Approx(0.0));
  CHECK(f[2].u == Approx(0.0));
  CHECK(f[3].u == Approx(1.0));
}
