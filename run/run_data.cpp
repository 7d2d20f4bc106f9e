#include "run/run_data.hpp"

#include "run/slow_notice.hpp"

namespace murmur {

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
  slow_notice notice("loading Fashion-MNIST from " + c.data_dir, notices);
  Dataset tr = load_fashion_mnist(c.data_dir, true);
  Dataset te = load_fashion_mnist(c.data_dir, false);
  if (c.train_samples > 0 && c.train_samples < tr.size()) tr = take(tr, c.train_samples);
  if (c.test_samples > 0 && c.test_samples < te.size()) te = take(te, c.test_samples);
  d.train = std::make_shared<const Dataset>(std::move(tr));
  d.test = std::make_shared<const Dataset>(std::move(te));
  return d;
}

}  // namespace murmur
