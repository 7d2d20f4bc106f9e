#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "tensor/rng.hpp"
#include "tensor/squared_distance.hpp"

using namespace murmur;

// The fixed order: sixteen running sums (coordinate k to sum k mod 16),
// sum l + 8 added to sum l, the eight results pairwise. Written out
// here once more, so a change of the order (which would make the host and
// the CPU backend, or two builds, clip differently) fails.
TEST_CASE("squared distances add in the documented order, alone or several at once, on either path", "[distance]") {
  Rng rng(3);
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{65}, size_t{1000}, size_t{4097}, size_t{70001}}) {
    std::vector<float> self(n);
    std::vector<std::vector<float>> others(5, std::vector<float>(n));
    for (auto& v : self) v = static_cast<float>(rng.normal());
    for (auto& o : others)
      for (auto& v : o) v = static_cast<float>(rng.normal() * 3);
    std::vector<const float*> ptrs;
    for (auto& o : others) ptrs.push_back(o.data());
    std::vector<double> many(others.size());
    squared_distances(self.data(), ptrs.data(), ptrs.size(), n, many.data());
    std::vector<double> portable(others.size());  // the path of CPUs without AVX-512
    squared_distances_portable(self.data(), ptrs.data(), ptrs.size(), n, portable.data());
    for (size_t j = 0; j < others.size(); ++j) {
      double t[16] = {};
      long double exact = 0;
      for (size_t k = 0; k < n; ++k) {
        const double d = static_cast<double>(others[j][k]) - self[k];
        t[k % 16] += d * d;
        exact += static_cast<long double>(d) * d;
      }
      double r[8];
      for (size_t l = 0; l < 8; ++l) r[l] = t[l] + t[l + 8];
      const double expect = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      INFO("n " << n << " j " << j);
      CHECK(many[j] == expect);
      CHECK(portable[j] == expect);
      CHECK(squared_distance(others[j].data(), self.data(), n) == expect);
      CHECK(squared_distance(self.data(), others[j].data(), n) == expect);  // the sign of a difference does not matter
      CHECK(std::fabs(static_cast<double>(exact) - expect) <= 1e-14 * static_cast<double>(exact));
    }
  }
}
