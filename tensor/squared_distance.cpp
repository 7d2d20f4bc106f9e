#include "tensor/squared_distance.hpp"

#include <algorithm>
#include <cstring>

namespace murmur {

namespace {

using f8 = float __attribute__((vector_size(32)));
using d8 = double __attribute__((vector_size(64)));
static_assert(kDistanceBlock == 16, "the order is written for two vectors of eight a block");

// Vectors pass by reference: a 64-byte vector by value would change the
// calling convention with the instruction set (GCC's -Wpsabi).
inline void widen(const float* p, d8& out) {
  f8 v;
  std::memcpy(&v, p, sizeof v);
  out = __builtin_convertvector(v, d8);
}

inline double pairwise(const d8& s) { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }

inline double full_block(const float* a, const float* b) {
  d8 a0, b0, a1, b1;
  widen(a, a0), widen(b, b0), widen(a + 8, a1), widen(b + 8, b1);
  const d8 d0 = a0 - b0, d1 = a1 - b1;
  d8 s = d0 * d0;
  const d8 t = d1 * d1;
  s += t;
  return pairwise(s);
}

// Eight running sums over a stream of partials, as sum_partials adds them.
struct lanes {
  d8 t = {};
  size_t next = 0;
  void add(double p) { t[next++ & 7] += p; }
  double total() const { return pairwise(t); }
};

}  // namespace

double block_squared_distance(const float* a, const float* b, size_t k0, size_t n) {
  if (k0 + kDistanceBlock <= n) return full_block(a + k0, b + k0);
  float pa[kDistanceBlock] = {}, pb[kDistanceBlock] = {};  // zeros add +0: the same as leaving them out
  std::copy(a + k0, a + n, pa);
  std::copy(b + k0, b + n, pb);
  return full_block(pa, pb);
}

double sum_partials(const double* p, size_t count) {
  d8 t = {};
  size_t b = 0;
  for (; b + 8 <= count; b += 8) {
    d8 v;
    std::memcpy(&v, p + b, sizeof v);
    t += v;
  }
  for (size_t l = 0; b < count; ++b, ++l) t[l] += p[b];
  return pairwise(t);
}

double squared_distance(const float* a, const float* b, size_t n) {
  lanes sum;
  for (size_t k0 = 0; k0 < n; k0 += kDistanceBlock) sum.add(block_squared_distance(a, b, k0, n));
  return sum.total();
}

void squared_distances(const float* self, const float* const* others, size_t count, size_t n, double* out) {
  // Neighbour by neighbour over a stretch of self that stays in cache.
  constexpr size_t kStretch = 256 * kDistanceBlock;
  constexpr size_t kGroup = 8;
  for (size_t g = 0; g < count; g += kGroup) {
    const size_t m = std::min(kGroup, count - g);
    lanes sum[kGroup];
    for (size_t s0 = 0; s0 < n; s0 += kStretch) {
      const size_t s1 = std::min(n, s0 + kStretch);
      for (size_t j = 0; j < m; ++j)
        for (size_t k0 = s0; k0 < s1; k0 += kDistanceBlock)
          sum[j].add(block_squared_distance(others[g + j], self, k0, n));
    }
    for (size_t j = 0; j < m; ++j) out[g + j] = sum[j].total();
  }
}

}  // namespace murmur
