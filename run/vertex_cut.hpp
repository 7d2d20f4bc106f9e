// vertex_cut: m peers whose removal cuts an overlay into two halves, a
// heuristic (the exact smallest balanced vertex separator is NP-hard).
// Spectral bisection: the Fiedler vector of the graph Laplacian (power
// iteration on c I - L with the constant vector projected out, from a start
// drawn from `seed`) orders the peers; the lower half and the upper half are
// the two sides. Then greedily the peer that covers the most not yet covered
// edges between the sides, until m are chosen or every such edge is covered;
// any still missing are the peers nearest the split (smallest |Fiedler
// value|). A ring of n gives two opposite peers; a circulant graph (the
// exponential one) peers at the two borders of an arc. Returned sorted.
#pragma once
#include <cstdint>
#include <vector>

namespace murmur {

std::vector<uint32_t> cut_vertices(const std::vector<std::vector<uint32_t>>& graph, uint32_t m, uint64_t seed);

}  // namespace murmur
