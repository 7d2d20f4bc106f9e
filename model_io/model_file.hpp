// Model files: murmur's native format for trained weights, a safetensors
// file (model_io/safetensors_file.hpp) that says by itself what model it
// holds. Tensors are named as PyTorch names the equivalent nn.Sequential's
// state dict (model_io/param_tensors.hpp), all F32. String metadata:
//   format       "murmur-model/1"
//   spec         model.arch as the run gave it ("cnn", or a layer list)
//   layers       the layer list, shorthands expanded ("conv2d:32:5,relu,...")
//   input_shape  per sample, "1,28,28";  num_classes  "10"
//   layer_begin, layer_end, layer_count: the file holds layers
//                [layer_begin, layer_end) of layer_count (a pipeline stage
//                holds a part; a whole model 0..layer_count)
//   anything else: provenance (source, step, replica, stage, ...), free text.
// Contract: read_model_file refuses, with DataError "PATH: what", a file
// that is not safetensors (see there), not this format, whose metadata does
// not build a model, or whose tensors differ from what that model needs
// (a missing, extra, non-F32 or wrongly shaped tensor, named).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tensor/sequential.hpp"
#include "tensor/stage_split.hpp"

namespace murmur {

inline constexpr const char* model_file_format = "murmur-model/1";

struct model_description {
  std::string spec;                 // model.arch as given
  Shape input_shape;                // per sample
  int64_t num_classes = 0;
  stage_range layers;               // the layers this file (or part) holds
  size_t layer_count = 0;           // of the whole model
  std::map<std::string, std::string> notes;  // provenance metadata
  bool whole() const { return layers.begin == 0 && layers.end == layer_count; }
  std::vector<std::string> items() const { return model_spec_items(spec, num_classes); }
};

struct model_weights {
  model_description model;
  std::vector<float> params;        // the flat buffer of layers [begin, end)
};

// A description of layers r of model spec (the whole model when r is
// {0, 0}); checks the spec builds (std::invalid_argument otherwise).
model_description describe_model(const std::string& spec, const Shape& input_shape, int64_t num_classes,
                                 stage_range r = {});

// part: the layers d.layers of d's model, as a Sequential (params() is read).
void write_model_file(const std::string& path, const model_description& d, const Sequential& part);
model_weights read_model_file(const std::string& path);

// The layers of w as a Sequential holding w's parameters, in evaluation
// mode (dropout off; set_training(true) to train it).
std::unique_ptr<Sequential> build_model_from(const model_weights& w);

// Where to copy the stage r of a whole model out of its flat buffer: layer
// offsets of the whole model. r must be within the model.
std::pair<int64_t, int64_t> stage_param_span(const Sequential& whole, stage_range r);

}  // namespace murmur
