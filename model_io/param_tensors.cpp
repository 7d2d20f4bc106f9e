#include "model_io/param_tensors.hpp"

#include <charconv>
#include <functional>
#include <map>
#include <stdexcept>

#include "tensor/residual.hpp"

namespace murmur {

namespace {

struct tensor_part {
  std::string suffix;  // "weight", or "body.0.weight" inside a block
  Shape shape;
};

std::vector<tensor_part> layer_parts(const std::string& item, const Shape& in, const Layer& layer);

// What a rule sees: the spec item ("conv2d:32:5", "res[...]"), the layer's
// per-sample input shape and the built layer.
using tensor_rule = std::function<std::vector<tensor_part>(const std::string& item, const Shape& in, const Layer& layer)>;

// One entry per layer kind with parameters, in PyTorch's naming of the
// module that matches it (tests/fixtures' generator and
// scripts/check_model_export.py build those modules). Kinds without
// parameters (relu, maxpool2d, dropout, gap, ...) need none.
const std::map<std::string, tensor_rule>& rules() {
  static const std::map<std::string, tensor_rule> table = {
      {"linear",  // nn.Linear(in, out)
       [](const std::string& item, const Shape& in, const Layer&) {
         const int64_t out = layer_int_args(item).at(0), n = shape_numel(in);
         return std::vector<tensor_part>{{"weight", {out, n}}, {"bias", {out}}};
       }},
      {"conv2d",  // nn.Conv2d(in, out, k, stride, padding)
       [](const std::string& item, const Shape& in, const Layer&) {
         const auto a = layer_int_args(item);
         return std::vector<tensor_part>{{"weight", {a.at(0), in.at(0), a.at(1), a.at(1)}}, {"bias", {a.at(0)}}};
       }},
      {"groupnorm",  // nn.GroupNorm(G, C)
       [](const std::string&, const Shape& in, const Layer&) {
         return std::vector<tensor_part>{{"weight", {in.at(0)}}, {"bias", {in.at(0)}}};
       }},
      {"res",  // a module with .body = nn.Sequential(...): y = x + body(x)
       [](const std::string& item, const Shape& in, const Layer& layer) {
         const auto& block = dynamic_cast<const Residual&>(layer);
         const auto body = residual_body_items(item);
         if (body.size() != block.body_size())
           throw std::logic_error("param_tensors: '" + item + "' lists " + std::to_string(body.size()) +
                                  " layers, the block has " + std::to_string(block.body_size()));
         std::vector<tensor_part> parts;
         Shape s = in;
         for (size_t j = 0; j < body.size(); ++j) {
           for (auto& p : layer_parts(body[j], s, block.body(j)))
             parts.push_back({"body." + std::to_string(j) + "." + p.suffix, std::move(p.shape)});
           s = block.body(j).output_shape(s);
         }
         return parts;
       }},
  };
  return table;
}

std::vector<tensor_part> layer_parts(const std::string& item, const Shape& in, const Layer& layer) {
  const std::string kind = layer_kind(item);
  const auto rule = rules().find(kind);
  if (rule != rules().end()) return rule->second(item, in, layer);
  if (layer.param_count() != 0)
    throw std::invalid_argument("param_tensors: no tensor names for layer kind '" + kind + "' ('" + item +
                                "'), which has parameters");
  return {};
}

}  // namespace

std::string layer_kind(const std::string& item) {
  if (item.rfind("res[", 0) == 0) return "res";
  return item.substr(0, item.find(':'));
}

std::vector<std::string> residual_body_items(const std::string& item) {
  if (item.size() < 5 || item.rfind("res[", 0) != 0 || item.back() != ']')
    throw std::invalid_argument("'" + item + "' is not a res[...] block");
  return model_spec_items(item.substr(4, item.size() - 5), 0);
}

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
    const int64_t layer_offset = offset;
    for (auto& part : layer_parts(item, in, layer)) {
      param_tensor t{std::to_string(first + i) + "." + part.suffix, std::move(part.shape), offset};
      offset += t.numel();
      out.push_back(std::move(t));
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
