#include "tensor/squared_distance.hpp"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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
  // Adds coordinates [0, n) of a and b.
  void add(const float* a, const float* b, size_t n) {
    d8 t0 = s0, t1 = s1;
    size_t k = 0;
    for (; k + kStride <= n; k += kStride) step(a + k, b + k, t0, t1);
    if (k < n) {
      float pa[kStride] = {}, pb[kStride] = {};  // zeros add +0: the same as leaving them out
      std::copy(a + k, a + n, pa);
      std::copy(b + k, b + n, pb);
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

#if defined(__x86_64__)
// AVX-512: each group of 8 floats widened by one vcvtps2pd (GCC lowered the
// vector-extension conversion of sums::step to halves, extracts and inserts, and
// the pass was bound by those more than by memory), and the neighbours of
// a group of 4 advanced together 16 coordinates at a time, so their
// streams are read at once while self's 16 stay in registers. The same
// operations in the same order per sum, each rounded once (fp-contract=off:
// no fused multiply-add): bit for bit the portable sums. A simulated
// peer's clipping distances (2 neighbours, 235k coordinates, cold caches,
// a standalone loop over 48 vectors): 231-359 us before, 139-197 after.
// Eight floats widened to doubles (zero-masked: GCC 12's plain
// _mm512_cvtps_pd reads an undefined register and warns).
[[gnu::target("avx512f")]] inline __m512d widen8(const float* p) {
  return _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(p));
}

[[gnu::target("avx512f"), gnu::optimize("fp-contract=off")]]
void squared_distances_avx512(const float* self, const float* const* others, size_t count, size_t n,
                              double* out) {
  constexpr size_t kGroup = 4;
  for (size_t g = 0; g < count; g += kGroup) {
    const size_t m = std::min(kGroup, count - g);
    __m512d s0[kGroup], s1[kGroup];
    for (size_t j = 0; j < kGroup; ++j) s0[j] = _mm512_setzero_pd(), s1[j] = _mm512_setzero_pd();
    const float* op[kGroup];
    auto step = [&](const float* sp) {
      const __m512d b0 = widen8(sp), b1 = widen8(sp + 8);
      for (size_t j = 0; j < m; ++j) {
        const __m512d d0 = _mm512_sub_pd(widen8(op[j]), b0);
        const __m512d d1 = _mm512_sub_pd(widen8(op[j] + 8), b1);
        s0[j] = _mm512_add_pd(s0[j], _mm512_mul_pd(d0, d0));
        s1[j] = _mm512_add_pd(s1[j], _mm512_mul_pd(d1, d1));
      }
    };
    size_t k = 0;
    for (; k + kStride <= n; k += kStride) {
      for (size_t j = 0; j < m; ++j) op[j] = others[g + j] + k;
      step(self + k);
    }
    if (k < n) {  // the short last stretch, padded with zeros (which add +0)
      float pb[kStride] = {}, pa[kGroup][kStride] = {};
      std::copy(self + k, self + n, pb);
      for (size_t j = 0; j < m; ++j) {
        std::copy(others[g + j] + k, others[g + j] + n, pa[j]);
        op[j] = pa[j];
      }
      step(pb);
    }
    for (size_t j = 0; j < m; ++j) {
      double r[8];
      _mm512_storeu_pd(r, _mm512_add_pd(s0[j], s1[j]));
      out[g + j] = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    }
  }
}
#endif

}  // namespace

void squared_distances(const float* self, const float* const* others, size_t count, size_t n, double* out) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) {
    squared_distances_avx512(self, others, count, n, out);
    return;
  }
#endif
  squared_distances_portable(self, others, count, n, out);
}

// Without AVX-512 (the baseline x86-64 build: 2-wide SSE2 doubles), one
// neighbour after another; fp-contract=off as above.
[[gnu::optimize("fp-contract=off")]]
void squared_distances_portable(const float* self, const float* const* others, size_t count, size_t n,
                                double* out) {
  for (size_t j = 0; j < count; ++j) {
    sums s;
    s.add(others[j], self, n);
    out[j] = s.total();
  }
}

// (a - b)^2 = (b - a)^2 exactly: the sum of squared_distances with one neighbour.
double squared_distance(const float* a, const float* b, size_t n) {
  double out = 0;
  squared_distances(b, &a, 1, n, &out);
  return out;
}

}  // namespace murmur
