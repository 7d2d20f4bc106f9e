// estimate_distances: the squared distances ||x_hat_j - x_hat_self||^2
// that the clipping rules need every mix, kept per neighbour slot as
// tensor/squared_distance's block partials. Between two mixes only the
// coordinates a frame carried change (a few in a thousand in a steady
// round), so the owner reports each change (of x_hat_self: every slot's
// block goes stale; of x_hat_j: slot j's) and squared() recomputes only the
// stale blocks. A partial is a function of its block's values alone, so the
// result is the same double as squared_distance over the whole vectors.
// Holds no parameter-sized buffer: one double and one flag per block of 64
// coordinates per slot.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace murmur {

class estimate_distances {
 public:
  explicit estimate_distances(size_t dim);
  void reset(size_t slots);                  // every slot stale (slots moved, or state replaced)
  void self_changed(size_t k) {              // x_hat_self[k] was written
    const size_t b = k / block_;
    for (auto& s : stale_) s[b] = 1;
  }
  void self_changed_all();
  void changed(size_t slot, size_t k) { stale_[slot][k / block_] = 1; }  // x_hat_j[k], j = slot
  void changed_all(size_t slot);
  // ||hat - self||^2 for slot `slot`, hat and self its current values.
  double squared(size_t slot, const float* self, const float* hat);
  uint64_t blocks_recomputed() const { return recomputed_; }  // for benchmarks: the work skipped shows here

 private:
  size_t dim_, block_, blocks_;
  std::vector<std::vector<double>> partial_;
  std::vector<std::vector<uint8_t>> stale_;
  uint64_t recomputed_ = 0;
};

}  // namespace murmur
