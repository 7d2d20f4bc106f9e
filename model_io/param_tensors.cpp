#include "model_io/param_tensors.hpp"

#include <charconv>
#include <functional>
#include <map>
#include <stdexcept>

namespace murmur {

namespace {

struct tensor_part {
  std::string suffix;  // "weight"
  Shape shape;
};

// What a rule sees: the item's arguments after the kind ("conv2d:32:5" ->
// {"32", "5"}), the layer's per-sample input shape and the built layer.
using tensor_rule = std::function<std::vector<tensor_part>(const std::vector<int64_t>& args, const Shape& in,
                                                           const Layer& layer)>;

// One entry per layer kind with parameters. A new layer kind with
// parameters adds its rule here, in PyTorch's naming of the module that
// matches it (a nested module names its tensors "conv.weight" and so on).
const std::map<std::string, tensor_rule>& rules() {
  static const std::map<std::string, tensor_rule> table = {
      {"linear",
       [](const std::vector<int64_t>& a, const Shape& in, const Layer&) {
         const int64_t out = a.at(0), n = shape_numel(in);
         return std::vector<tensor_part>{{"weight", {out, n}}, {"bias", {out}}};
       }},
      {"conv2d",
       [](const std::vector<int64_t>& a, const Shape& in, const Layer&) {
         const int64_t out = a.at(0), k = a.at(1);
         return std::vector<tensor_part>{{"weight", {out, in.at(0), k, k}}, {"bias", {out}}};
       }},
  };
  return table;
}

}  // namespace

std::vector<int64_t> layer_int_args(const std::string& item) {
  std::vector<int64_t> args;
  size_t at = item.find(':');
  while (at != std::string::npos) {
    const size_t next = item.find(':', at + 1);
    const std::string a = item.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), v);
    args.push_back(ec == std::errc() && p == a.data() + a.size() ? v : -1);
    at = next;
  }
  return args;
}

std::string layer_kind(const std::string& item) { return item.substr(0, item.find(':')); }

std::vector<param_tensor> param_tensors(const std::vector<const Layer*>& layers, const Shape& input_shape,
                                        const std::vector<std::string>& items, size_t first) {
  if (first + layers.size() > items.size())
    throw std::invalid_argument("param_tensors: layers [" + std::to_string(first) + ", " +
                                std::to_string(first + layers.size()) + ") of a spec of " +
                                std::to_string(items.size()) + " layers");
  std::vector<param_tensor> out;
  Shape in = input_shape;
  int64_t offset = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& layer = *layers[i];
    const std::string& item = items[first + i];
    const std::string kind = layer_kind(item);
    const int64_t layer_offset = offset;
    const auto rule = rules().find(kind);
    if (rule != rules().end()) {
      for (auto& part : rule->second(layer_int_args(item), in, layer)) {
        param_tensor t{std::to_string(first + i) + "." + part.suffix, std::move(part.shape), offset};
        offset += t.numel();
        out.push_back(std::move(t));
      }
    } else if (layer.param_count() != 0) {
      throw std::invalid_argument("param_tensors: no tensor names for layer kind '" + kind + "' (item " +
                                  std::to_string(first + i) + " '" + item + "'), which has parameters");
    }
    if (offset - layer_offset != layer.param_count())
      throw std::logic_error("param_tensors: the tensors of layer " + std::to_string(first + i) + " '" + item +
                             "' hold " + std::to_string(offset - layer_offset) + " floats, the layer " +
                             std::to_string(layer.param_count()));
    in = layer.output_shape(in);
  }
  return out;
}

std::vector<param_tensor> param_tensors(const Sequential& model, const std::vector<std::string>& items,
                                        size_t first) {
  std::vector<const Layer*> layers;
  for (size_t i = 0; i < model.layer_count(); ++i) layers.push_back(&model.layer(i));
  return param_tensors(layers, model.input_shape(), items, first);
}

}  // namespace murmur
