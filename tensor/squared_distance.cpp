#include "tensor/squared_distance.hpp"

#include <algorithm>
#include <cstring>

namespace murmur {

namespace {

using f8 = float __attribute__((vector_size(32)));
using d8 = double __attribute__((vector_size(64)));
constexpr size_t kStride = 16;  // running sums: two vectors of eight

// Vectors pass by reference: a 64-byte vector by value would change the
// calling convention with the instruction set (GCC's -Wpsabi).
inline void widen(const float* p, d8& out) {
  f8 v;
  std::memcpy(&v, p, sizeof v);
  out = __builtin_convertvector(v, d8);
}

// The sixteen running sums of one distance: s0 holds sums 0..7, s1 8..15.
struct sums {
  d8 s0 = {}, s1 = {};
  // Adds coordinates [k0, k1) of a and b, k0 a multiple of kStride.
  void add(const float* a, const float* b, size_t k0, size_t k1) {
    d8 t0 = s0, t1 = s1;
    size_t k = k0;
    for (; k + kStride <= k1; k += kStride) step(a + k, b + k, t0, t1);
    if (k < k1) {
      float pa[kStride] = {}, pb[kStride] = {};  // zeros add +0: the same as leaving them out
      std::copy(a + k, a + k1, pa);
      std::copy(b + k, b + k1, pb);
      step(pa, pb, t0, t1);
    }
    s0 = t0, s1 = t1;
  }
  static void step(const float* a, const float* b, d8& t0, d8& t1) {
    d8 a0, b0, a1, b1;
    widen(a, a0), widen(b, b0), widen(a + 8, a1), widen(b + 8, b1);
    const d8 d0 = a0 - b0, d1 = a1 - b1;
    const d8 q0 = d0 * d0, q1 = d1 * d1;
    t0 += q0;
    t1 += q1;
  }
  double total() const {
    const d8 r = s0 + s1;
    return ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  }
};

}  // namespace

// The passes are bound by the widening arithmetic, not by memory, in the
// baseline x86-64 build (2-wide SSE2 doubles: the clipping distances were
// the largest cost of a simulated peer-step): an AVX-512 clone where the
// CPU has it, everything inlined into it (flatten). Both clones add alike:
// the order above is written out, each operation rounded once
// (fp-contract=off: no fused multiply-add).
[[gnu::target_clones("avx512f", "default"), gnu::optimize("fp-contract=off"), gnu::flatten]]
double squared_distance(const float* a, const float* b, size_t n) {
  sums s;
  s.add(a, b, 0, n);
  return s.total();
}

[[gnu::target_clones("avx512f", "default"), gnu::optimize("fp-contract=off"), gnu::flatten]]
void squared_distances(const float* self, const float* const* others, size_t count, size_t n, double* out) {
  // Neighbour by neighbour over a stretch of self that stays in cache.
  constexpr size_t kStretch = 4096;  // a multiple of kStride
  constexpr size_t kGroup = 8;
  for (size_t g = 0; g < count; g += kGroup) {
    const size_t m = std::min(kGroup, count - g);
    sums s[kGroup];
    for (size_t s0 = 0; s0 < n; s0 += kStretch) {
      const size_t s1 = std::min(n, s0 + kStretch);
      for (size_t j = 0; j < m; ++j) s[j].add(others[g + j], self, s0, s1);
    }
    for (size_t j = 0; j < m; ++j) out[g + j] = s[j].total();
  }
}

}  // namespace murmur
