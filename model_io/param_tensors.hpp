// Param tensors: a murmur model's flat parameter buffer seen as the named
// tensors of PyTorch's state dict for the equivalent torch.nn.Sequential
// (layer i of the spec is module i: "3.weight", "3.bias"; Linear weight
// [out, in], Conv2d weight [out, in, k, k], GroupNorm weight and bias [C];
// a res[...] block is a module whose .body is an nn.Sequential of its
// layers: "4.body.0.weight"), with where each lies in the buffer. Contract:
//  - One rule per layer kind (the spec item's first word) in the table in
//    param_tensors.cpp says a layer's tensors (name suffixes, shapes, in the
//    order the layer stores them); a kind without a rule must have no
//    parameters, or param_tensors throws std::invalid_argument naming it.
//  - The tensors of a layer tile its slice of the buffer exactly (checked
//    against Layer::param_count, std::logic_error otherwise).
//  - For a stage (layers [first, first + model.layer_count()) of a whole
//    model), names keep the whole model's layer numbers and offsets are into
//    the stage's own buffer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/sequential.hpp"

namespace murmur {

struct param_tensor {
  std::string name;    // "3.weight"
  Shape shape;         // PyTorch's
  int64_t offset = 0;  // first float in the model's params()
  int64_t numel() const { return shape_numel(shape); }
};

// items: the spec's layer items (model_spec_items) of the whole model;
// model: layers [first, ...) of it.
std::vector<param_tensor> param_tensors(const Sequential& model, const std::vector<std::string>& items,
                                        size_t first = 0);
// The same for unbound layers (build_layers), the first taking input_shape
// per sample: no parameter buffer is needed (nor allocated), so a file's
// claims can be checked before anything of their size exists.
std::vector<param_tensor> param_tensors(const std::vector<const Layer*>& layers, const Shape& input_shape,
                                        const std::vector<std::string>& items, size_t first = 0);

// The layer kind of a spec item: "conv2d:32:5" -> "conv2d", "res[...]" ->
// "res"; its arguments as integers ("conv2d:32:5" -> {32, 5}; one that is
// not an integer: -1); a res[...] block's body items.
std::string layer_kind(const std::string& item);
std::vector<int64_t> layer_int_args(const std::string& item);
std::vector<std::string> residual_body_items(const std::string& item);

}  // namespace murmur
