// Dot products of float data accumulated in double, with four running sums
// (one would be bound by the latency of each addition, and the compiler
// may not reorder floating-point sums itself). The Freivalds check and the
// CPU backend's freivalds_pieces share them, so both add in the same order.
#pragma once
#include <cstdint>

namespace murmur {

template <class Y>
inline double dot_in_double(const float* x, const Y* y, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t p = 0;
  for (; p + 4 <= n; p += 4) {
    s0 += static_cast<double>(x[p]) * static_cast<double>(y[p]);
    s1 += static_cast<double>(x[p + 1]) * static_cast<double>(y[p + 1]);
    s2 += static_cast<double>(x[p + 2]) * static_cast<double>(y[p + 2]);
    s3 += static_cast<double>(x[p + 3]) * static_cast<double>(y[p + 3]);
  }
  for (; p < n; ++p) s0 += static_cast<double>(x[p]) * static_cast<double>(y[p]);
  return (s0 + s1) + (s2 + s3);
}

inline double sum_sq_in_double(const float* x, int64_t n) { return dot_in_double(x, x, n); }

}  // namespace murmur
