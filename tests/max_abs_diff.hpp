// max_abs_diff: the largest |a[i] - b[i]| of two equally long float vectors,
// in double; the tests' measure of "the same parameters, up to rounding".
#pragma once
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <vector>

namespace murmur::testing {

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  return d;
}

}  // namespace murmur::testing
