#include "run/vertex_cut.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/rng.hpp"

namespace murmur {

namespace {

// The eigenvector of the second smallest Laplacian eigenvalue, approximately.
std::vector<double> fiedler(const std::vector<std::vector<uint32_t>>& g, uint64_t seed) {
  const size_t n = g.size();
  size_t max_degree = 0;
  for (const auto& nb : g) max_degree = std::max(max_degree, nb.size());
  const double c = 2.0 * static_cast<double>(max_degree) + 1.0;  // c I - L is positive definite
  std::vector<double> v(n), w(n);
  Rng rng(seed);
  for (double& x : v) x = rng.uniform(-1.0, 1.0);
  auto centre_and_normalise = [&](std::vector<double>& x) {
    const double mean = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(n);
    double norm = 0;
    for (double& e : x) e -= mean, norm += e * e;
    norm = std::sqrt(norm);
    if (norm > 0)
      for (double& e : x) e /= norm;
  };
  centre_and_normalise(v);
  for (int it = 0; it < 5000; ++it) {
    for (size_t i = 0; i < n; ++i) {
      double s = (c - static_cast<double>(g[i].size())) * v[i];
      for (uint32_t j : g[i]) s += v[j];
      w[i] = s;
    }
    centre_and_normalise(w);
    double change = 0;
    for (size_t i = 0; i < n; ++i) change = std::max(change, std::fabs(w[i] - v[i]));
    v.swap(w);
    if (change < 1e-10) break;
  }
  return v;
}

}  // namespace

std::vector<uint32_t> cut_vertices(const std::vector<std::vector<uint32_t>>& graph, uint32_t m, uint64_t seed) {
  const auto n = static_cast<uint32_t>(graph.size());
  m = std::min(m, n);
  std::vector<uint32_t> chosen;
  if (m == 0) return chosen;
  const auto f = fiedler(graph, seed);
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return f[a] < f[b]; });
  std::vector<uint8_t> side(n, 0), picked(n, 0);
  for (uint32_t r = n / 2; r < n; ++r) side[order[r]] = 1;
  // Cut edges still uncovered, per peer.
  auto uncovered = [&](uint32_t i) {
    uint32_t count = 0;
    for (uint32_t j : graph[i]) count += side[j] != side[i] && !picked[j];
    return count;
  };
  while (chosen.size() < m) {
    uint32_t best = n, best_count = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (picked[i]) continue;
      const uint32_t cnt = uncovered(i);
      if (cnt > best_count) best = i, best_count = cnt;
    }
    if (best == n) break;  // every cut edge is covered
    picked[best] = 1;
    chosen.push_back(best);
  }
  std::vector<uint32_t> near = order;
  std::stable_sort(near.begin(), near.end(), [&](uint32_t a, uint32_t b) { return std::fabs(f[a]) < std::fabs(f[b]); });
  for (uint32_t i : near) {
    if (chosen.size() >= m) break;
    if (!picked[i]) picked[i] = 1, chosen.push_back(i);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace murmur
