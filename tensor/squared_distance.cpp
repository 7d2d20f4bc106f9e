#include "tensor/squared_distance.hpp"

#include <algorithm>

namespace murmur {

namespace {
constexpr size_t kLanes = 8;  // running sums in a block; coordinate k feeds sum k mod 8
static_assert(kDistanceBlock % kLanes == 0);
}  // namespace

double block_squared_distance(const float* a, const float* b, size_t k0, size_t k1) {
  double s[kLanes] = {};
  size_t k = k0;
  for (; k + kLanes <= k1; k += kLanes)
    for (size_t l = 0; l < kLanes; ++l) {
      const double d = static_cast<double>(a[k + l]) - static_cast<double>(b[k + l]);
      s[l] += d * d;
    }
  for (size_t l = 0; k < k1; ++k, ++l) {
    const double d = static_cast<double>(a[k]) - static_cast<double>(b[k]);
    s[l] += d * d;
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double squared_distance(const float* a, const float* b, size_t n) {
  double sum = 0;
  for (size_t k0 = 0; k0 < n; k0 += kDistanceBlock) sum += block_squared_distance(a, b, k0, std::min(n, k0 + kDistanceBlock));
  return sum;
}

void squared_distances(const float* self, const float* const* others, size_t count, size_t n, double* out) {
  // Neighbour by neighbour over a stretch of self that stays in cache.
  constexpr size_t kStretch = 64 * kDistanceBlock;
  for (size_t j = 0; j < count; ++j) out[j] = 0;
  for (size_t s0 = 0; s0 < n; s0 += kStretch) {
    const size_t s1 = std::min(n, s0 + kStretch);
    for (size_t j = 0; j < count; ++j)
      for (size_t k0 = s0; k0 < s1; k0 += kDistanceBlock)
        out[j] += block_squared_distance(others[j], self, k0, std::min(s1, k0 + kDistanceBlock));
  }
}

}  // namespace murmur
