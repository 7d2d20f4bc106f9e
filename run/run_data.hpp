// The train and test sets a run config names (Fashion-MNIST, synthetic, or
// the user's .npy / IDX files with data.dataset = files; optionally cut to a
// subset), loaded once and shared read-only by peers. Files: DataError naming
// the file for any bad file, and naming both when the test samples' shape
// differs from the training samples'.
#pragma once
#include <memory>
#include <ostream>

#include "run/run_config.hpp"
#include "tensor/dataset.hpp"

namespace murmur {

struct run_data {
  std::shared_ptr<const Dataset> train, test;
};

// notices: where to say so when loading takes more than a second (nullptr: quiet).
run_data load_run_data(const RunConfig& c, std::ostream* notices = nullptr);

}  // namespace murmur
