// model.init_from: the parameters a run starts (or fine-tunes) from instead
// of its seeded initialisation. Contract:
//  - Reads c.init_from once: a model file, or a run directory / stage files
//    as murmur export takes them (model_io/model_source.hpp).
//  - The file must hold exactly this run's model (c.model on input_shape
//    with num_classes): the same tensors, names and shapes in order, the
//    same layer list and input shape. Otherwise ConfigError
//    "model.init_from = PATH: ..." naming the first tensor that differs (or
//    the layer or shape that does); a bad file is a DataError naming it.
//  - Returns null when model.init_from is empty.
//  - A resumed run (checkpoints) ignores it: the checkpoint holds the state.
#pragma once
#include <memory>
#include <vector>

#include "run/run_config.hpp"
#include "tensor/stage_split.hpp"
#include "tensor/tensor.hpp"

namespace murmur {

using initial_params = std::shared_ptr<const std::vector<float>>;

initial_params load_initial_parameters(const RunConfig& c, const Shape& input_shape, int64_t num_classes);

// The slice of a whole model's initial parameters that stage r holds (null
// for null).
initial_params stage_initial_parameters(const initial_params& whole, const RunConfig& c, const Shape& input_shape,
                                        int64_t num_classes, stage_range r);

}  // namespace murmur
