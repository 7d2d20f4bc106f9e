// Squared L2 distances between float vectors, summed in double in one
// fixed order: coordinate k goes to running sum k mod 16 (a short last
// stretch of 16 is padded with zeros, which add +0), and at the end sum l
// and sum l + 8 are added, then the eight results pairwise,
// ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)). A single running sum (the order
// before) waits on each addition's latency, about four cycles a
// coordinate, and was the largest cost of a gossip round; sixteen sums are
// vector operations. The order is written out (GCC vector types on the
// portable path, AVX-512 intrinsics where the CPU has them), not left to the
// compiler, so every build and CPU adds alike: gossip's clipping rules (actors/robust_mix.cpp), its trigger,
// and the CPU backend's squared_distances share it.
#pragma once
#include <cstddef>

namespace murmur {

// sum_k (a_k - b_k)^2 over n coordinates.
double squared_distance(const float* a, const float* b, size_t n);

// out[j] = squared_distance(others[j], self, n) for j < count. On CPUs with
// AVX-512, an AVX-512 loop; elsewhere squared_distances_portable: the same sums.
void squared_distances(const float* self, const float* const* others, size_t count, size_t n, double* out);
void squared_distances_portable(const float* self, const float* const* others, size_t count, size_t n,
                                double* out);

}  // namespace murmur
