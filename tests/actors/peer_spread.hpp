// Test helpers for gossip worlds: the mean of the peers' vectors and how far
// the farthest coordinate of any peer lies from a given mean.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

namespace murmur::test {

template <typename T>
std::vector<double> mean_of(const std::vector<std::vector<T>>& x) {
  std::vector<double> m(x[0].size(), 0.0);
  for (auto& xi : x)
    for (size_t k = 0; k < m.size(); ++k) m[k] += xi[k];
  for (auto& v : m) v /= static_cast<double>(x.size());
  return m;
}

template <typename T>
double max_deviation_of(const std::vector<std::vector<T>>& x, const std::vector<double>& m) {
  double d = 0;
  for (auto& xi : x)
    for (size_t k = 0; k < m.size(); ++k) d = std::max(d, std::fabs(xi[k] - m[k]));
  return d;
}

}  // namespace murmur::test
