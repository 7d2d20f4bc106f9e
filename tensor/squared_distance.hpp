// Squared L2 distances between float vectors, summed in double in one
// fixed order. Coordinates go in blocks of kDistanceBlock = 16: a block's
// partial is sum_l s_l over eight lanes, s_l = d_l^2 + d_{l+8}^2 (d the
// differences, a short last block padded with zeros), added pairwise
// ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)); the partials go to eight running
// sums, block b to sum b mod 8, in block order, added pairwise the same way
// (sum_partials). A single running sum (the order before) waits on each
// addition's latency, about four cycles a coordinate, and was the largest
// cost of a gossip round; these sums are vector operations. The order is written out (GCC vector types), not left to the
// compiler, so every build adds alike: gossip's clipping rules
// (actors/robust_mix.cpp), its trigger, and the CPU backend's
// squared_distances share it.
#pragma once
#include <cstddef>

namespace murmur {

inline constexpr size_t kDistanceBlock = 16;

// The partial of the block [k0, k0 + 16) of n coordinates (fewer at the end).
double block_squared_distance(const float* a, const float* b, size_t k0, size_t n);

// The partials p[0..count) summed in the order above.
double sum_partials(const double* p, size_t count);

// sum_k (a_k - b_k)^2 over n coordinates: sum_partials of all the blocks' partials.
double squared_distance(const float* a, const float* b, size_t n);

// out[j] = squared_distance(others[j], self, n) for j < count.
void squared_distances(const float* self, const float* const* others, size_t count, size_t n, double* out);

}  // namespace murmur
