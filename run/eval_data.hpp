// murmur eval's data: a labelled test set, loaded by the readers runs use.
//  - data a directory: Fashion-MNIST-named IDX files in it (as data.dir);
//  - data a file: features (.npy or IDX, by content), with labels_path its
//    labels (required then), as data.dataset = files reads them;
//  - data empty: the test set a run config's data options name (defaults:
//    Fashion-MNIST's test set in /usr/share/datasets/fashion-mnist), set
//    by overrides "data.KEY=VALUE" (any other section is a ConfigError), e.g.
//    data.dataset=files with data.test_features / data.test_labels.
// Labels from files are checked against num_classes (the model's); the set
// is cut to data.test_samples when that is set. Errors: DataError naming the
// file, ConfigError naming the key.
#pragma once
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/dataset.hpp"

namespace murmur {

std::shared_ptr<const Dataset> load_eval_data(const std::string& data, const std::string& labels_path,
                                              const std::vector<std::string>& overrides, int64_t num_classes,
                                              std::ostream* notices = nullptr);

}  // namespace murmur
