// Data: labelled images in memory, loaders, shards and batches.
// Images are float32 in [0,1] (pixel / 255, no normalisation, as the PyTorch
// baselines in ../shared/bench), shape [N, C, H, W]; labels int32 in [0, classes).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/rng.hpp"
#include "tensor/tensor.hpp"

namespace murmur {

struct Dataset {
  Tensor images;                 // [N, C, H, W]
  std::vector<int32_t> labels;   // N
  int32_t num_classes = 0;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  Shape sample_shape() const { return Shape(images.shape().begin() + 1, images.shape().end()); }
};

// Thrown for malformed data files; what() names the file and the problem.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads an IDX file pair (gzipped if the name ends in .gz or the content has
// the gzip magic, raw otherwise). Rejects: missing/unreadable file, bad magic,
// wrong element type, wrong number of dimensions, truncated or oversized
// data, image/label count mismatch, labels >= num_classes.
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 int32_t num_classes = 10);
// dir holds train-images-idx3-ubyte.gz etc. (Debian: /usr/share/datasets/fashion-mnist)
Dataset load_fashion_mnist(const std::string& dir, bool train);

// A small, fast, learnable data set for tests: `classes` Gaussian blobs
// rendered as 1 x side x side images, deterministic in seed.
Dataset make_synthetic(int64_t n, int32_t classes, int64_t side, uint64_t seed);

// First n samples (a subset for quick runs).
Dataset take(const Dataset& d, int64_t n);

// Shards: each peer gets a list of sample indices into the training set.
// iid: a seeded permutation cut into equal parts (sizes differ by <= 1).
std::vector<std::vector<int64_t>> shard_iid(int64_t n, int peers, uint64_t seed);
// non-iid: for each class, proportions over peers drawn from Dirichlet(alpha).
std::vector<std::vector<int64_t>> shard_dirichlet(const std::vector<int32_t>& labels,
                                                  int32_t num_classes, int peers, double alpha,
                                                  uint64_t seed);

// Draws batches from a shard: reshuffled each epoch from (seed, epoch); the
// last partial batch is kept. Buffers are reused across calls.
class BatchIterator {
 public:
  BatchIterator(const Dataset& data, std::vector<int64_t> indices, int64_t batch, uint64_t seed);
  // Fills x [b, C, H, W] and y (b labels), returns b (> 0).
  int64_t next(Tensor& x, std::vector<int32_t>& y);
  int64_t epoch() const { return epoch_; }
  int64_t steps_per_epoch() const;
  int64_t shard_size() const { return static_cast<int64_t>(indices_.size()); }

 private:
  const Dataset& data_;
  std::vector<int64_t> indices_, order_;
  int64_t batch_, pos_ = 0, epoch_ = 0;
  uint64_t seed_;
  void reshuffle();
};

}  // namespace murmur
