#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "actors/robust_mix.hpp"

using namespace murmur;

namespace {

// Aggregate of `rows` (ours first) under `rule`.
std::vector<float> aggregate(robust_rule rule, const std::vector<std::vector<float>>& rows, double trim = 0.2,
                             double radius = 0) {
  robust_settings s;
  s.rule = rule;
  s.trim = trim;
  s.clip_radius = radius;
  robust_mix mix(s, rows[0].size());
  std::vector<const float*> members;
  for (const auto& r : rows) members.push_back(r.data());
  auto out = mix.aggregate(members);
  return {out.begin(), out.end()};
}

// Five honest estimates near 1, 2, 3 (three coordinates) and one outlier.
std::vector<std::vector<float>> honest_and_outlier(float outlier) {
  return {{1.0f, 2.0f, 3.0f}, {1.1f, 2.1f, 3.1f}, {0.9f, 1.9f, 2.9f},
          {1.05f, 2.05f, 3.05f}, {0.95f, 1.95f, 2.95f}, {outlier, outlier, -outlier}};
}

}  // namespace

TEST_CASE("none is the plain mean", "[robust]") {
  auto a = aggregate(robust_rule::none, {{1, 2}, {3, 6}, {5, 10}});
  CHECK(a[0] == Approx(3));
  CHECK(a[1] == Approx(6));
}

TEST_CASE("coordinate-wise median, odd and even counts", "[robust]") {
  auto odd = aggregate(robust_rule::median, {{5, 0}, {1, 9}, {3, 4}});
  CHECK(odd[0] == 3);
  CHECK(odd[1] == 4);
  auto even = aggregate(robust_rule::median, {{1, 0}, {2, 10}, {4, 20}, {100, 30}});
  CHECK(even[0] == Approx(3));   // (2 + 4) / 2
  CHECK(even[1] == Approx(15));  // (10 + 20) / 2
}

TEST_CASE("trimmed mean drops floor(trim * n) at each end", "[robust]") {
  // n = 5, trim 0.2: one dropped at each end, the mean of the middle three.
  auto a = aggregate(robust_rule::trimmed_mean, {{1}, {2}, {3}, {4}, {100}}, 0.2);
  CHECK(a[0] == Approx(3));
  // trim 0: the plain mean.
  auto b = aggregate(robust_rule::trimmed_mean, {{1}, {2}, {3}, {4}, {100}}, 0.0);
  CHECK(b[0] == Approx(22));
}

TEST_CASE("krum picks the estimate closest to its nearest others", "[robust]") {
  // Four close together, one far: krum returns one of the four, exactly.
  std::vector<std::vector<float>> rows = {{0, 0}, {10, 10}, {0.1f, 0}, {0, 0.1f}, {0.05f, 0.05f}};
  auto a = aggregate(robust_rule::krum, rows, 0.2);
  CHECK(a[0] == 0.05f);  // the centre of the cluster has the smallest summed distances
  CHECK(a[1] == 0.05f);
}

TEST_CASE("centered clipping bounds each neighbour's pull by the radius", "[robust]") {
  // Self at 0; neighbours at distance 1 (x) and 100 (y). Radius 2: the far one
  // pulls by 2, the near one by 1; mean over n = 3 members.
  auto a = aggregate(robust_rule::centered_clip, {{0, 0}, {1, 0}, {0, 100}}, 0.2, 2.0);
  CHECK(a[0] == Approx(1.0 / 3));
  CHECK(a[1] == Approx(2.0 / 3));
  // Radius 0: the median of the distances 5, 100, 10, i.e. 10: the far one pulls by 10.
  auto b = aggregate(robust_rule::centered_clip, {{0, 0}, {3, 4}, {0, 100}, {6, 8}}, 0.2, 0.0);
  CHECK(b[0] == Approx((3 + 6) / 4.0));
  CHECK(b[1] == Approx((4 + 10 + 8) / 4.0));
}

TEST_CASE("one outlier of 1e6 barely moves median, trimmed mean, krum and clipping", "[robust]") {
  const auto clean = aggregate(robust_rule::none, {{1.0f, 2.0f, 3.0f}, {1.1f, 2.1f, 3.1f}, {0.9f, 1.9f, 2.9f},
                                                   {1.05f, 2.05f, 3.05f}, {0.95f, 1.95f, 2.95f}});
  const auto rows = honest_and_outlier(1e6f);
  const auto plain = aggregate(robust_rule::none, rows);
  CHECK(std::fabs(plain[0] - clean[0]) > 1e5);  // the mean is ruined
  for (auto rule : {robust_rule::median, robust_rule::trimmed_mean, robust_rule::krum, robust_rule::centered_clip}) {
    const auto a = aggregate(rule, rows, 0.2);
    INFO("rule " << static_cast<int>(rule));
    for (size_t k = 0; k < 3; ++k) CHECK(std::fabs(a[k] - clean[k]) < 0.2);
  }
}

TEST_CASE("aggregating allocates only for a larger neighbourhood than before", "[robust]") {
  robust_settings s;
  s.rule = robust_rule::median;
  robust_mix mix(s, 4);
  std::vector<float> a(4, 1.f), b(4, 2.f), c(4, 3.f);
  std::vector<const float*> three = {a.data(), b.data(), c.data()};
  auto first = mix.aggregate(three);
  const float* where = first.data();
  std::vector<const float*> two = {a.data(), c.data()};
  auto second = mix.aggregate(two);
  CHECK(second.data() == where);  // the same owned buffer
  CHECK(second[0] == Approx(2));
}

TEST_CASE("clipped_gossip: the radius is clip_scale x the lower median, which one outlier cannot set",
          "[robust]") {
  robust_settings s;
  s.rule = robust_rule::clipped_gossip;
  s.clip_scale = 2.0;
  // Ours at 0; neighbours at distance 1 and 1e6 (ring: two neighbours).
  robust_mix mix(s, 1);
  std::vector<float> self{0.f}, near{1.f}, far{1e6f};
  std::vector<const float*> members{self.data(), near.data(), far.data()};
  auto a = mix.aggregate(members);
  CHECK(mix.radius() == Approx(2.0));  // 2 x min(1, 1e6)
  CHECK(a[0] == Approx((1.0 + 2.0) / 3.0));  // the far one pulls only as far as the radius
  CHECK(mix.clipped() == 1);
  // Later rounds: the radius moves by at most 4x its slow average, even when
  // every neighbour is hostile.
  std::vector<float> far2{1e6f};
  members = {self.data(), far.data(), far2.data()};
  a = mix.aggregate(members);
  CHECK(mix.radius() == Approx(2.0 * 4.0));
  CHECK(a[0] == Approx(2.0 * 8.0 / 3.0));
  // A lone fresh neighbour of several cannot vouch for itself: its radius
  // is capped by the slow average (here 1.15 after the two rounds above).
  members = {self.data(), far.data()};
  a = mix.aggregate(members, 2);
  CHECK(mix.radius() == Approx(2.0 * 1.15));
  // ... and before any reference exists it pulls nothing.
  robust_mix fresh(s, 1);
  a = fresh.aggregate(members, 2);
  CHECK(a[0] == 0.f);
  // A peer that never had more than one neighbour has no other reference.
  a = fresh.aggregate(members, 1);
  CHECK(a[0] == Approx(1e6f / 2));
  // One that had (here: `mix`, whose others left) keeps its reference.
  a = mix.aggregate(members, 1);
  CHECK(mix.radius() == Approx(2.0 * 1.15));
}

TEST_CASE("mix_into moves x exactly as x += gamma * (aggregate - x_hat_self), over several blocks", "[robust]") {
  // 700 coordinates: two full blocks of 256 and a partial one.
  const size_t dim = 700;
  std::vector<std::vector<float>> rows(5, std::vector<float>(dim));
  for (size_t j = 0; j < rows.size(); ++j)
    for (size_t k = 0; k < dim; ++k) rows[j][k] = std::sin(0.37f * static_cast<float>(k * (j + 1))) + 0.1f * j;
  std::vector<const float*> members;
  for (const auto& r : rows) members.push_back(r.data());
  for (auto rule : {robust_rule::none, robust_rule::median, robust_rule::trimmed_mean, robust_rule::krum,
                    robust_rule::centered_clip, robust_rule::clipped_gossip}) {
    INFO("rule " << static_cast<int>(rule));
    robust_settings s;
    s.rule = rule;
    robust_mix a(s, dim), b(s, dim);
    std::vector<float> x(dim), want(dim);
    for (size_t k = 0; k < dim; ++k) x[k] = want[k] = 0.5f - 0.001f * static_cast<float>(k);
    for (int round = 0; round < 3; ++round) {  // clipped_gossip carries its reference distance across rounds
      const auto agg = a.aggregate(members);
      for (size_t k = 0; k < dim; ++k) want[k] += 0.5f * (agg[k] - rows[0][k]);
      b.mix_into(x, members, 0.5f);
      CHECK(x == want);
      CHECK(a.clipped() == b.clipped());
      CHECK(a.reference_distance() == b.reference_distance());
    }
  }
}
