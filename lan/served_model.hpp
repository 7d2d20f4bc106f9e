// served_model: the model `murmur serve` answers with, and the part of it
// one stage hosts. Where the weights come from is decided in one place,
// load_served_model: a model file (model_io/model_file.hpp: safetensors
// whose metadata gives the spec, input shape and classes), a run directory
// or the stage files of a pipeline run (model_io/model_source.hpp); or,
// without one, a model.arch spec initialised from a seed, as a run's peers
// start. Every stage process loads the same whole model and keeps its own
// layers. Stages run in evaluation mode (dropout is the identity).
// Errors: DataError naming the model file; std::invalid_argument naming the
// spec item or the split.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/sequential.hpp"
#include "tensor/stage_split.hpp"

namespace murmur {

struct served_model_source {
  std::string model;                  // a model file or run directory; empty: arch and seed
  std::string arch = "mlp";           // model.arch spec
  uint64_t seed = 1;                  // train.init_seed
  Shape input_shape{1, 28, 28};       // per sample
  int64_t num_classes = 10;
};

struct served_model {
  std::string spec;
  Shape input_shape;
  int64_t num_classes = 0;
  std::unique_ptr<Sequential> whole;  // evaluation mode, with the weights
};

served_model load_served_model(const served_model_source& src);

// The cut into `stages` contiguous layer ranges: `split` as pipeline.split
// ("4,7": cuts before layers 4 and 7), or, when empty, the balanced cut of
// the model's modelled per-layer costs (tensor/stage_split.hpp), the same in
// every process.
std::vector<stage_range> served_stage_ranges(const served_model& m, size_t stages, const std::string& split);

// Layers r of the model with its weights, in evaluation mode.
std::unique_ptr<Sequential> served_stage(const served_model& m, stage_range r);

}  // namespace murmur
