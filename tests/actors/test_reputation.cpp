#include <catch2/catch.hpp>
#include <stdexcept>

#include "actors/reputation.hpp"

using namespace murmur;

TEST_CASE("standing: the prior's mean without evidence, up with passes, down with misses, 0 on a failure",
          "[reputation]") {
  reputation r;
  CHECK(r.standing(7) == Approx(0.5));  // Beta(1, 1)
  r.passed(1, 1e6);
  CHECK(r.standing(1) == Approx(2.0 / 3.0));
  r.passed(1, 1e6);
  CHECK(r.standing(1) == Approx(3.0 / 4.0));
  CHECK(r.evidence(1).verified_flops == Approx(2e6));
  r.missed(1);
  CHECK(r.standing(1) == Approx(3.0 / 5.0));
  r.missed(2, 3);
  CHECK(r.standing(2) == Approx(1.0 / 5.0));
  CHECK(r.standing(2) > 0);  // misses alone never reach 0: an honest peer can miss
  for (int i = 0; i < 1000; ++i) r.passed(3, 1);
  CHECK(r.standing(3) < 1);
  CHECK(r.standing(3) > 0.99);
  r.failed(3);  // a failed check is proof, whatever came before
  CHECK(r.standing(3) == 0);
  CHECK(r.evidence(3).checks_passed == 1000);
}

TEST_CASE("standing: weights change the formula as documented, bad weights are refused", "[reputation]") {
  reputation_weights w;
  w.prior_pass = 2, w.prior_miss = 3, w.miss_weight = 4;
  peer_evidence e;
  e.checks_passed = 5, e.misses = 2;
  CHECK(standing_of(e, w) == Approx((5.0 + 2) / (5.0 + 4 * 2 + 2 + 3)));
  CHECK(standing_of(peer_evidence{}, w) == Approx(0.4));
  w.prior_pass = 0;
  CHECK_THROWS_AS(reputation(w), std::invalid_argument);
  CHECK_THROWS_AS(standing_of(e, w), std::invalid_argument);
  w.prior_pass = 1, w.miss_weight = -1;
  CHECK_THROWS_AS(reputation(w), std::invalid_argument);
}

TEST_CASE("donor choice: highest standing first, ties keep the given order, unknown peers at the prior",
          "[reputation][donor]") {
  reputation r;
  CHECK(r.by_standing({4, 1, 3}) == std::vector<uint32_t>{4, 1, 3});  // no evidence: today's order
  r.passed(3, 1);                                                      // 3: 2/3
  r.missed(4);                                                         // 4: 1/3
  r.passed(2, 1), r.passed(2, 1);                                      // 2: 3/4
  r.passed(5, 1), r.failed(5);                                         // 5: 0
  CHECK(r.by_standing({1, 2, 3, 4, 5}) == std::vector<uint32_t>{2, 3, 1, 4, 5});
  r.passed(1, 1);  // 1 ties with 3 and keeps its place before it
  CHECK(r.by_standing({1, 2, 3, 4, 5}) == std::vector<uint32_t>{2, 1, 3, 4, 5});
  CHECK(r.by_standing({3, 1}) == std::vector<uint32_t>{3, 1});
  CHECK(r.by_standing({}).empty());
}

TEST_CASE("testimony: summed over observers, a proven cheat's own reports and self-praise left out",
          "[reputation]") {
  std::map<uint32_t, std::map<uint32_t, peer_evidence>> reports;
  reports[0][1] = {3, 0, 1, 3e9};
  reports[0][2] = {1, 1, 0, 1e9};  // 0 caught 2
  reports[1][0] = {4, 0, 0, 4e9};
  reports[1][2] = {2, 0, 0, 2e9};
  reports[2][3] = {50, 0, 0, 5e10};  // 2 praises its accomplice: left out
  reports[3][3] = {9, 0, 0, 9e9};    // nobody checks itself
  reports[3][1] = {1, 0, 2, 1e9};
  const auto r = combine_testimony(reports);
  CHECK(r.evidence(1).checks_passed == 4);
  CHECK(r.evidence(1).misses == 3);
  CHECK(r.evidence(1).verified_flops == Approx(4e9));
  CHECK(r.evidence(2).checks_passed == 3);
  CHECK(r.evidence(2).checks_failed == 1);
  CHECK(r.standing(2) == 0);
  CHECK(r.evidence(3).checks_passed == 0);
  CHECK(r.standing(3) == Approx(0.5));
  CHECK(r.standing(0) == Approx(5.0 / 6.0));
  CHECK(combine_testimony({}).all().empty());
}
