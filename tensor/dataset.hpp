// Data: labelled images in memory, loaders, shards and batches.
// Images are float32 in [0,1] (pixel / 255, no normalisation, as the PyTorch
// baselines in ../shared/bench), shape [N, C, H, W]; labels int32 in [0, classes).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/data_error.hpp"  // DataError: malformed data files, what() names the file
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

// Reads an IDX file pair (gzipped if the content has the gzip magic 1f 8b,
// raw otherwise; the name does not matter). Images: uint8 [N, H, W] stored as
// [N, 1, H, W]; labels: uint8 [N]. Throws DataError for a missing/unreadable
// file, bad magic, wrong element type, wrong number of dimensions, truncated
// or trailing data, a corrupt gzip stream, more than 2^28 elements (checked
// before allocating), image/label count mismatch, labels >= num_classes;
// std::invalid_argument for num_classes < 1.
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 int32_t num_classes = 10);
// The two halves of load_idx, for files named one by one (data.dataset =
// "files"). expect_count < 0: any count (then images_path is unused).
Tensor load_idx_images(const std::string& path);
std::vector<int32_t> load_idx_labels(const std::string& path, int32_t num_classes, int64_t expect_count = -1,
                                     const std::string& images_path = "");
// dir holds train-images-idx3-ubyte.gz etc. (Debian: /usr/share/datasets/fashion-mnist);
// the un-gzipped names are the fallback.
Dataset load_fashion_mnist(const std::string& dir, bool train);

// A small, fast, learnable data set for tests: each class has a fixed
// prototype (a few Gaussian blobs, 1 x side x side, values in [0,1]); a sample
// is its prototype plus Gaussian noise (sd 0.4), clipped to [0,1]. Labels are
// balanced (counts differ by <= 1) in random order. Deterministic in seed.
Dataset make_synthetic(int64_t n, int32_t classes, int64_t side, uint64_t seed);

// Copy of the first min(n, size) samples (a subset for quick runs); n >= 0.
Dataset take(const Dataset& d, int64_t n);

// Shards: each peer gets a sorted list of sample indices into the training
// set; together they cover every index exactly once, and every peer gets at
// least one (std::invalid_argument if n < peers or peers < 1).
// iid: a seeded permutation cut into equal parts (sizes differ by <= 1).
std::vector<std::vector<int64_t>> shard_iid(int64_t n, int peers, uint64_t seed);
// non-iid: for each class, proportions over peers drawn from Dirichlet(alpha)
// (small alpha: few classes per peer; large: near iid). A peer left empty
// takes one sample from the largest shard. alpha > 0; labels in range.
std::vector<std::vector<int64_t>> shard_dirichlet(const std::vector<int32_t>& labels,
                                                  int32_t num_classes, int peers, double alpha,
                                                  uint64_t seed);

// Draws batches from a shard: each epoch's order is Rng(seed).fork(epoch)
// applied to the shard; the last partial batch is kept, so an epoch is
// ceil(shard / batch) steps, and epoch() counts completed epochs. `data` must
// outlive the iterator. After the first call next() reuses x's and y's
// storage; only a change of batch size (around the partial batch) builds a
// new Shape for x.
class BatchIterator {
 public:
  BatchIterator(const Dataset& data, std::vector<int64_t> indices, int64_t batch, uint64_t seed);
  // Fills x [b, C, H, W] and y (b labels), returns b (> 0).
  int64_t next(Tensor& x, std::vector<int32_t>& y);
  // Positions the iterator as a fresh one after `steps` calls of next()
  // (a resumed run continues with the batches it would have drawn), without
  // reading any samples. steps >= 0.
  void seek(int64_t steps);
  int64_t epoch() const { return epoch_; }
  int64_t steps_per_epoch() const;
  int64_t shard_size() const { return static_cast<int64_t>(indices_.size()); }
  // Data-set indices of the samples the last next() returned, in batch order
  // (a verifier rebuilds the batch from them).
  const std::vector<int64_t>& last_indices() const { return last_; }

 private:
  const Dataset& data_;
  std::vector<int64_t> indices_, order_, last_;
  int64_t batch_, pos_ = 0, epoch_ = 0;
  uint64_t seed_;
  void reshuffle();
};

}  // namespace murmur
