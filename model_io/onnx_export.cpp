#include "model_io/onnx_export.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>

#include <onnx/onnx_pb.h>

#include "model_io/param_tensors.hpp"
#include "tensor/residual.hpp"
#include "tensor/dataset.hpp"

namespace murmur {

namespace {

// What a rule gets: the layer's spec item and built layer, its per-sample
// input shape, its input value's name, the prefix of its names ("3." for
// layer 3, "4.body.0." inside a block: its parameters are prefix + "weight"),
// and the graph; it adds the layer's nodes and returns its output's name.
struct onnx_layer {
  std::string item;
  const Layer* layer = nullptr;
  Shape in;
  std::string input, prefix;
  onnx::GraphProto* graph = nullptr;
};
using onnx_rule = std::function<std::string(const onnx_layer&)>;

std::string add_layer(const onnx_layer& l);

onnx::NodeProto* add_node(const onnx_layer& l, const std::string& op, std::vector<std::string> inputs,
                          const std::string& tag = "") {
  onnx::NodeProto* n = l.graph->add_node();
  n->set_op_type(op);
  n->set_name(l.prefix + op + tag);
  for (auto& i : inputs) n->add_input(i);
  n->add_output(l.prefix + (tag.empty() ? "out" : tag));
  return n;
}

void ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

void integer(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void real(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

// A constant the graph needs beside the parameters (named under the layer's prefix).
std::string constant(const onnx_layer& l, const std::string& name, const Shape& dims, std::vector<float> f,
                     std::vector<int64_t> i = {}) {
  onnx::TensorProto* t = l.graph->add_initializer();
  t->set_name(l.prefix + name);
  for (auto d : dims) t->add_dims(d);
  if (i.empty()) {
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto x : f) t->add_float_data(x);
  } else {
    t->set_data_type(onnx::TensorProto::INT64);
    for (auto x : i) t->add_int64_data(x);
  }
  return t->name();
}

std::string plain(const onnx_layer& l, const char* op) { return add_node(l, op, {l.input})->output(0); }

// One entry per layer kind.
const std::map<std::string, onnx_rule>& rules() {
  static const std::map<std::string, onnx_rule> table = {
      {"linear",
       [](const onnx_layer& l) {
         auto* n = add_node(l, "Gemm", {l.input, l.prefix + "weight", l.prefix + "bias"});
         integer(n, "transB", 1);
         return n->output(0);
       }},
      {"conv2d",
       [](const onnx_layer& l) {
         const auto a = layer_int_args(l.item);
         const int64_t k = a.at(1), s = a.size() > 2 ? a[2] : 1, p = a.size() > 3 ? a[3] : 0;
         auto* n = add_node(l, "Conv", {l.input, l.prefix + "weight", l.prefix + "bias"});
         ints(n, "kernel_shape", {k, k});
         ints(n, "strides", {s, s});
         ints(n, "pads", {p, p, p, p});
         return n->output(0);
       }},
      {"maxpool2d",
       [](const onnx_layer& l) {
         const int64_t k = layer_int_args(l.item).at(0);
         auto* n = add_node(l, "MaxPool", {l.input});
         ints(n, "kernel_shape", {k, k});
         ints(n, "strides", {k, k});
         return n->output(0);
       }},
      {"relu", [](const onnx_layer& l) { return plain(l, "Relu"); }},
      {"sigmoid", [](const onnx_layer& l) { return plain(l, "Sigmoid"); }},
      {"tanh", [](const onnx_layer& l) { return plain(l, "Tanh"); }},
      {"dropout", [](const onnx_layer& l) { return plain(l, "Identity"); }},  // inference: the identity
      {"gap", [](const onnx_layer& l) { return plain(l, "GlobalAveragePool"); }},
      {"flatten",
       [](const onnx_layer& l) {
         auto* n = add_node(l, "Flatten", {l.input});
         integer(n, "axis", 1);
         return n->output(0);
       }},
      {"groupnorm",
       // Opset 13 has no GroupNormalization: as PyTorch exports it, the
       // input reshaped to [N, G, rest], InstanceNormalization (unit scale,
       // zero bias) over rest, reshaped back, then the per-channel affine.
       [](const onnx_layer& l) {
         const int64_t g = layer_int_args(l.item).at(0), c = l.in.at(0);
         Shape affine{c};
         for (size_t i = 1; i < l.in.size(); ++i) affine.push_back(1);
         const std::string grouped = constant(l, "groups_shape", {3}, {}, {0, g, -1});
         const std::string back = constant(l, "shape", {static_cast<int64_t>(l.in.size()) + 1}, {},
                                           [&] {
                                             std::vector<int64_t> v{0};
                                             v.insert(v.end(), l.in.begin(), l.in.end());
                                             return v;
                                           }());
         const std::string affine_shape = constant(l, "affine_shape", {static_cast<int64_t>(affine.size())}, {},
                                                   std::vector<int64_t>(affine.begin(), affine.end()));
         const std::string ones = constant(l, "unit_scale", {g}, std::vector<float>(static_cast<size_t>(g), 1.f));
         const std::string zeros = constant(l, "zero_bias", {g}, std::vector<float>(static_cast<size_t>(g), 0.f));
         auto* r1 = add_node(l, "Reshape", {l.input, grouped}, "grouped");
         auto* in = add_node(l, "InstanceNormalization", {r1->output(0), ones, zeros}, "normalised");
         real(in, "epsilon", 1e-5f);
         auto* r2 = add_node(l, "Reshape", {in->output(0), back}, "ungrouped");
         auto* w = add_node(l, "Reshape", {l.prefix + "weight", affine_shape}, "w");
         auto* b = add_node(l, "Reshape", {l.prefix + "bias", affine_shape}, "b");
         auto* mul = add_node(l, "Mul", {r2->output(0), w->output(0)}, "scaled");
         return add_node(l, "Add", {mul->output(0), b->output(0)})->output(0);
       }},
      {"res",  // y = x + body(x)
       [](const onnx_layer& l) {
         const auto& block = dynamic_cast<const Residual&>(*l.layer);
         const auto body = residual_body_items(l.item);
         std::string v = l.input;
         Shape s = l.in;
         for (size_t j = 0; j < body.size(); ++j) {
           v = add_layer({body[j], &block.body(j), s, v, l.prefix + "body." + std::to_string(j) + ".", l.graph});
           s = block.body(j).output_shape(s);
         }
         return add_node(l, "Add", {l.input, v})->output(0);
       }},
  };
  return table;
}

std::string add_layer(const onnx_layer& l) {
  const std::string kind = layer_kind(l.item);
  auto rule = rules().find(kind);
  if (rule == rules().end())
    throw std::invalid_argument("ONNX export: no ONNX form for layer kind '" + kind + "' ('" + l.item + "')");
  return rule->second(l);
}

void value_info(onnx::ValueInfoProto* v, const std::string& name, const Shape& per_sample) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (auto d : per_sample) shape->add_dim()->set_dim_value(d);
}

}  // namespace

void write_onnx(const std::string& path, const model_weights& w) {
  const model_description& d = w.model;
  if (!d.whole())
    throw std::invalid_argument("ONNX export needs a whole model; this holds layers [" +
                                std::to_string(d.layers.begin) + ", " + std::to_string(d.layers.end) + ") of " +
                                std::to_string(d.layer_count));
  auto model = build_model_from(w);
  const auto items = d.items();

  onnx::ModelProto m;
  m.set_ir_version(onnx::IR_VERSION);  // 8, which onnx 1.12 writes with opset 13
  m.set_producer_name("murmur");
  m.set_model_version(1);
  m.set_doc_string("murmur model '" + d.spec + "'");
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(onnx_opset);
  for (const auto& [k, v] : d.notes) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("murmur");
  value_info(g->add_input(), "input", d.input_shape);
  for (const auto& t : param_tensors(*model, items)) {
    onnx::TensorProto* init = g->add_initializer();
    init->set_name(t.name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (auto x : t.shape) init->add_dims(x);
    init->set_raw_data(std::string(reinterpret_cast<const char*>(model->params() + t.offset),
                                   static_cast<size_t>(t.numel()) * sizeof(float)));
  }
  std::string value = "input";
  for (size_t i = 0; i < items.size(); ++i)
    value = add_layer({items[i], &model->layer(i), model->layer_input_shape(i), value, std::to_string(i) + ".", g});
  // The last node's output is the graph's: renamed to "logits".
  g->mutable_node(g->node_size() - 1)->set_output(0, "logits");
  value_info(g->add_output(), "logits", model->output_shape());

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !m.SerializeToOstream(&out)) throw DataError(path + ": cannot write the ONNX file");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw DataError(path + ": cannot rename " + tmp + " into place: " + ec.message());
}

}  // namespace murmur
