// Overlay topologies: who gossips with whom. Every graph here is
// undirected and regular (all peers have the same degree), which the
// uniform mixing weights of gossip_state rely on, except the hypercube on a
// peer count that is not a power of two (meant for gossip.schedule =
// one_peer, whose pairwise weights need no regularity).
//   ring         i-1, i+1
//   torus        r x c grid with wrap-around (r, c >= 3), 4 neighbours
//   exponential  i +- 2^k for 2^k < n (a circulant graph)
//   hypercube    i XOR 2^k for 2^k < n, where i XOR 2^k < n (log2 n-regular
//                when n is a power of two; connected for every n)
//   random       random d-regular graph drawn from seed (pairing model)
//   complete     everybody
// Throws std::invalid_argument naming the problem (e.g. torus on 10 peers).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace murmur {

std::vector<std::vector<uint32_t>> make_topology(const std::string& kind, uint32_t n,
                                                 uint32_t degree, uint64_t seed);

}  // namespace murmur
