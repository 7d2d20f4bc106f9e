// Squared L2 distances between float vectors, summed in double in one
// fixed order: per block of kDistanceBlock coordinates, coordinate k goes
// to running sum k mod 8 and the eight sums are added pairwise (the
// block's partial); the partials are then added block after block. A
// single running sum (the order before) waits on each addition's latency,
// about four cycles a coordinate, and was the largest cost of a gossip
// round; eight independent sums vectorize, and a block's partial depends
// on that block alone, so a caller may keep partials and redo only the
// blocks that changed (actors/estimate_distances.hpp) and get the same
// bits. The order is written out, not left to the compiler, so every build
// and every CPU adds alike: gossip's clipping rules (actors/robust_mix.cpp),
// its trigger, and the CPU backend's squared_distances share it.
#pragma once
#include <cstddef>

namespace murmur {

inline constexpr size_t kDistanceBlock = 64;

// sum_k (a_k - b_k)^2 for k in [k0, k1), k1 - k0 <= kDistanceBlock: one block's partial.
double block_squared_distance(const float* a, const float* b, size_t k0, size_t k1);

// sum over the blocks of n coordinates, in order, of their partials.
double squared_distance(const float* a, const float* b, size_t n);

// out[j] = squared_distance(others[j], self, n) for j < count.
void squared_distances(const float* self, const float* const* others, size_t count, size_t n, double* out);

}  // namespace murmur
