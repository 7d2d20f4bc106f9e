// The model a run leaves behind (every host writes one): a whole model, or
// a pipeline node's stage, as a model file (model_io/model_file.hpp) with
// the run's provenance in its metadata (source, step, seed, and for a
// whole model its test accuracy and loss, measured here).
#pragma once
#include <cstdint>
#include <string>

#include "run/run_config.hpp"
#include "tensor/dataset.hpp"
#include "tensor/sequential.hpp"
#include "tensor/stage_split.hpp"

namespace murmur {

struct final_model_info {
  bool written = false;
  std::string file;          // where
  std::string source;        // which parameters, in words
  uint64_t step = 0;         // steps trained (per peer / replica)
  bool evaluated = false;    // whole models: measured on the test set
  double test_accuracy = 0, test_loss = 0;
};

// Evaluates `whole` (c.model on test's sample shape) on test and writes it
// to path. Throws DataError when the file cannot be written.
final_model_info write_final_model(const std::string& path, const RunConfig& c, Sequential& whole,
                                   const Dataset& test, const std::string& source, uint64_t step);

// A pipeline stage: layers r of c.model, as replica `replica`'s stage
// `stage` of `stages` (metadata replica, stage, stages; see model_io/model_source.hpp).
final_model_info write_stage_model(const std::string& path, const RunConfig& c, const Sequential& part,
                                   const Shape& input_shape, int64_t num_classes, stage_range r, uint32_t replica,
                                   uint32_t stage, uint32_t stages, uint64_t step);

// summary.json's "final_model" value: {"file", "source", "step",
// "test_accuracy", "test_loss"} (the last two for whole models), or null.
std::string final_model_json(const final_model_info& m);

}  // namespace murmur
