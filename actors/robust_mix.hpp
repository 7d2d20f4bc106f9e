// robust_mix: the point a peer mixes toward when Byzantine neighbours may
// publish anything. Plain gossip moves x by gamma * (mean - x_hat_self) over
// the n = 1 + m public estimates it mixes (its own first, then the m fresh
// neighbours'); a robust rule replaces that mean by:
//   median         coordinate-wise median (mean of the two middle values for even n)
//   trimmed_mean   coordinate-wise mean of what is left after dropping the
//                  b = min(floor(trim * n), (n - 1) / 2) lowest and highest values
//   krum           the estimate whose summed squared L2 distance to its n - f - 2
//                  nearest others is smallest, f = floor(trim * n) (at least one
//                  neighbour is always counted)
//   centered_clip  x_hat_self + (1/n) sum_j clip(x_hat_j - x_hat_self, r), where
//                  clip(v, r) = v * min(1, r / ||v||_2) and r = clip_radius, or
//                  the median of the ||x_hat_j - x_hat_self|| when clip_radius = 0
// Scratch buffers are owned and grow only when more members than ever before
// are passed, so a steady gossip round allocates nothing.
#pragma once
#include <cstddef>
#include <span>
#include <vector>

#include "actors/peer_settings.hpp"

namespace murmur {

class robust_mix {
 public:
  robust_mix(robust_settings s, size_t dim);
  // members[0] is x_hat_self; every pointer addresses dim floats. Returns the
  // aggregate (valid until the next call). rule none gives the plain mean.
  std::span<const float> aggregate(std::span<const float* const> members);

 private:
  static constexpr size_t kBlock = 256;  // coordinates sorted together
  robust_settings s_;
  size_t dim_;
  std::vector<float> agg_, column_;
  std::vector<double> dist_, row_;
  void coordinatewise(std::span<const float* const> members, size_t drop);
  void krum(std::span<const float* const> members);
  void centered_clip(std::span<const float* const> members);
};

}  // namespace murmur
