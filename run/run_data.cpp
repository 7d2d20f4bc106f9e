#include "run/run_data.hpp"

#include <algorithm>

#include "run/slow_notice.hpp"
#include "tensor/dataset_files.hpp"

namespace murmur {

namespace {

// data.dataset = files: the four files the config names. With data.classes
// = 0 the class count is max label + 1 over train and test together, so a
// class missing from one of them does not shrink the model's output.
std::pair<Dataset, Dataset> load_files(const RunConfig& c) {
  const auto classes = static_cast<int32_t>(c.classes);
  Dataset tr = load_dataset_files(c.train_features, c.train_labels, classes);
  Dataset te = load_dataset_files(c.test_features, c.test_labels, classes);
  if (tr.sample_shape() != te.sample_shape())
    throw DataError(c.test_features + ": test samples have shape " + shape_str(te.sample_shape()) +
                    " but training samples in " + c.train_features + " have " + shape_str(tr.sample_shape()));
  tr.num_classes = te.num_classes = std::max(tr.num_classes, te.num_classes);
  return {std::move(tr), std::move(te)};
}

}  // namespace

run_data load_run_data(const RunConfig& c, std::ostream* notices) {
  run_data d;
  if (c.dataset == "synthetic") {
    // One draw split in two, so train and test share the class prototypes.
    int64_t ntr = c.train_samples > 0 ? c.train_samples : 6000;
    int64_t nte = c.test_samples > 0 ? c.test_samples : 1000;
    Dataset all = make_synthetic(ntr + nte, 10, 12, c.seed);
    Dataset tr = take(all, ntr), te;
    te.num_classes = all.num_classes;
    te.images = all.images.rows(ntr, ntr + nte).clone();
    te.labels.assign(all.labels.begin() + ntr, all.labels.end());
    d.train = std::make_shared<const Dataset>(std::move(tr));
    d.test = std::make_shared<const Dataset>(std::move(te));
    return d;
  }
  Dataset tr, te;
  if (c.dataset == "files") {
    slow_notice notice("loading " + c.train_features + " and the other data files", notices);
    std::tie(tr, te) = load_files(c);
  } else {
    slow_notice notice("loading Fashion-MNIST from " + c.data_dir, notices);
    tr = load_fashion_mnist(c.data_dir, true);
    te = load_fashion_mnist(c.data_dir, false);
  }
  if (c.train_samples > 0 && c.train_samples < tr.size()) tr = take(tr, c.train_samples);
  if (c.test_samples > 0 && c.test_samples < te.size()) te = take(te, c.test_samples);
  d.train = std::make_shared<const Dataset>(std::move(tr));
  d.test = std::make_shared<const Dataset>(std::move(te));
  return d;
}

}  // namespace murmur
