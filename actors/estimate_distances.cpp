#include "actors/estimate_distances.hpp"

#include <algorithm>

#include "tensor/squared_distance.hpp"

namespace murmur {

estimate_distances::estimate_distances(size_t dim)
    : dim_(dim), block_(kDistanceBlock), blocks_((dim + kDistanceBlock - 1) / kDistanceBlock) {}

void estimate_distances::reset(size_t slots) {
  partial_.resize(slots);
  stale_.resize(slots);
  for (size_t j = 0; j < slots; ++j) {
    partial_[j].assign(blocks_, 0.0);
    stale_[j].assign(blocks_, 1);
  }
}

void estimate_distances::self_changed_all() {
  for (auto& s : stale_) std::fill(s.begin(), s.end(), uint8_t{1});
}

void estimate_distances::changed_all(size_t slot) { std::fill(stale_[slot].begin(), stale_[slot].end(), uint8_t{1}); }

double estimate_distances::squared(size_t slot, const float* self, const float* hat) {
  double* p = partial_[slot].data();
  uint8_t* stale = stale_[slot].data();
  double sum = 0;
  for (size_t b = 0; b < blocks_; ++b) {
    if (stale[b]) {
      const size_t k0 = b * block_;
      p[b] = block_squared_distance(hat, self, k0, std::min(dim_, k0 + block_));
      stale[b] = 0;
      ++recomputed_;
    }
    sum += p[b];  // in block order, as squared_distance adds them
  }
  return sum;
}

}  // namespace murmur
