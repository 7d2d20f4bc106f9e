// The train and test sets a run config names (Fashion-MNIST or synthetic,
// optionally cut to a subset), loaded once and shared read-only by peers.
#pragma once
#include <memory>

#include "run/run_config.hpp"
#include "tensor/dataset.hpp"

namespace murmur {

struct run_data {
  std::shared_ptr<const Dataset> train, test;
};

run_data load_run_data(const RunConfig& c);

}  // namespace murmur
