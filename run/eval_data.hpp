// murmur eval's data: the test set that a run config's data options name,
// loaded as runs load it (run/run_data.hpp). Starts from the defaults
// (Fashion-MNIST's test set in /usr/share/datasets/fashion-mnist); data_dir,
// when not empty, sets data.dir; overrides are "data.KEY=VALUE" (any other
// section is a ConfigError naming it), checked as a config's are.
#pragma once
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/dataset.hpp"

namespace murmur {

std::shared_ptr<const Dataset> load_eval_data(const std::string& data_dir, const std::vector<std::string>& overrides,
                                              std::ostream* notices = nullptr);

}  // namespace murmur
