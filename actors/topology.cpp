#include "actors/topology.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "tensor/rng.hpp"

namespace murmur {

namespace {

using graph = std::vector<std::set<uint32_t>>;

void link(graph& g, uint32_t a, uint32_t b) {
  if (a == b) return;
  g[a].insert(b);
  g[b].insert(a);
}

graph random_regular(uint32_t n, uint32_t d, uint64_t seed) {
  if (d >= n || (static_cast<uint64_t>(n) * d) % 2 != 0)
    throw std::invalid_argument("topology 'random' needs degree < peers and peers*degree even (peers=" +
                                std::to_string(n) + ", degree=" + std::to_string(d) + ")");
  Rng rng(seed);
  for (int attempt = 0; attempt < 10000; ++attempt) {
    std::vector<uint32_t> stubs;
    for (uint32_t i = 0; i < n; ++i) stubs.insert(stubs.end(), d, i);
    rng.shuffle(stubs.begin(), stubs.end());
    graph g(n);
    bool ok = true;
    for (size_t i = 0; ok && i < stubs.size(); i += 2) {
      uint32_t a = stubs[i], b = stubs[i + 1];
      if (a == b || g[a].count(b)) ok = false;
      else link(g, a, b);
    }
    if (ok) return g;
  }
  // Dense graphs are rarely simple in the pairing model (the chance falls
  // like exp(-d^2/4)): start from the circulant d-regular graph instead and
  // randomise it with double-edge swaps, which keep every degree and
  // simplicity.
  graph g(n);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t k = 1; k <= d / 2; ++k) link(g, i, (i + k) % n);
    if (d % 2) link(g, i, (i + n / 2) % n);  // n is even when d is odd
  }
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t a = 0; a < n; ++a)
    for (uint32_t b : g[a])
      if (a < b) edges.emplace_back(a, b);
  for (size_t swap = 0; swap < 20 * edges.size(); ++swap) {
    auto& e = edges[rng.below(edges.size())];
    auto& f = edges[rng.below(edges.size())];
    uint32_t a = e.first, b = e.second, c = f.first, x = f.second;
    if (rng.uniform() < 0.5) std::swap(c, x);
    // (a-b, c-x) -> (a-c, b-x), if that stays simple.
    if (a == c || b == x || a == x || b == c || g[a].count(c) || g[b].count(x)) continue;
    g[a].erase(b);
    g[b].erase(a);
    g[c].erase(x);
    g[x].erase(c);
    link(g, a, c);
    link(g, b, x);
    e = {std::min(a, c), std::max(a, c)};
    f = {std::min(b, x), std::max(b, x)};
  }
  return g;
}

}  // namespace

std::vector<std::vector<uint32_t>> make_topology(const std::string& kind, uint32_t n,
                                                 uint32_t degree, uint64_t seed) {
  graph g(n);
  if (n > 1) {
    if (kind == "ring") {
      for (uint32_t i = 0; i < n; ++i) link(g, i, (i + 1) % n);
    } else if (kind == "complete") {
      for (uint32_t i = 0; i < n; ++i)
        for (uint32_t j = i + 1; j < n; ++j) link(g, i, j);
    } else if (kind == "exponential") {
      for (uint32_t i = 0; i < n; ++i)
        for (uint32_t s = 1; s < n; s *= 2) link(g, i, (i + s) % n);
    } else if (kind == "hypercube") {
      // i -- i XOR 2^k where that id exists: connected for every n (clearing
      // the highest set bit walks any i < n down to 0 inside [0, n)).
      for (uint32_t i = 0; i < n; ++i)
        for (uint32_t s = 1; s < n; s *= 2)
          if ((i ^ s) < n) link(g, i, i ^ s);
    } else if (kind == "torus") {
      uint32_t rows = 0;
      for (uint32_t r = 3; r * r <= n; ++r)
        if (n % r == 0) rows = r;
      if (rows == 0)
        throw std::invalid_argument("topology 'torus' needs peers = rows*cols with rows, cols >= 3 (peers=" +
                                    std::to_string(n) + ")");
      uint32_t cols = n / rows;
      for (uint32_t r = 0; r < rows; ++r)
        for (uint32_t c = 0; c < cols; ++c) {
          uint32_t i = r * cols + c;
          link(g, i, r * cols + (c + 1) % cols);
          link(g, i, ((r + 1) % rows) * cols + c);
        }
    } else if (kind == "random") {
      g = random_regular(n, degree, seed);
    } else {
      throw std::invalid_argument("unknown topology '" + kind +
                                  "' (allowed: ring, torus, exponential, hypercube, random, complete)");
    }
  }
  std::vector<std::vector<uint32_t>> out(n);
  for (uint32_t i = 0; i < n; ++i) out[i].assign(g[i].begin(), g[i].end());
  return out;
}

}  // namespace murmur
