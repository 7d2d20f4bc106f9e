#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "tensor/rng.hpp"
#include "tensor/squared_distance.hpp"

using namespace murmur;

// The fixed order: blocks of kDistanceBlock, each its eight interleaved
// sums added pairwise, the blocks' partials into eight running sums
// (block b to sum b mod 8), added pairwise. Written out
// here once more, so a change of the order (which would make the host and
// the CPU backend, or two builds, clip differently) fails.
TEST_CASE("squared distances add in the documented order, alone or several at once", "[distance]") {
  Rng rng(3);
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{65}, size_t{1000}, size_t{70001}}) {
    std::vector<float> self(n);
    std::vector<std::vector<float>> others(5, std::vector<float>(n));
    for (auto& v : self) v = static_cast<float>(rng.normal());
    for (auto& o : others)
      for (auto& v : o) v = static_cast<float>(rng.normal() * 3);
    std::vector<const float*> ptrs;
    for (auto& o : others) ptrs.push_back(o.data());
    std::vector<double> many(others.size());
    squared_distances(self.data(), ptrs.data(), ptrs.size(), n, many.data());
    for (size_t j = 0; j < others.size(); ++j) {
      double t[8] = {};
      long double exact = 0;
      for (size_t k0 = 0, b = 0; k0 < n; k0 += kDistanceBlock, ++b) {
        double s[8] = {};
        for (size_t k = k0; k < std::min(n, k0 + kDistanceBlock); ++k) {
          const double d = static_cast<double>(others[j][k]) - self[k];
          s[(k - k0) % 8] += d * d;
          exact += static_cast<long double>(d) * d;
        }
        t[b % 8] += ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
      }
      const double expect = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
      INFO("n " << n << " j " << j);
      CHECK(many[j] == expect);
      CHECK(squared_distance(others[j].data(), self.data(), n) == expect);
      CHECK(squared_distance(self.data(), others[j].data(), n) == expect);  // the sign of a difference does not matter
      CHECK(std::fabs(static_cast<double>(exact) - expect) <= 1e-14 * static_cast<double>(exact));
    }
  }
}
