#include "model_io/onnx_export.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>

#include <onnx/onnx_pb.h>

#include "model_io/param_tensors.hpp"
#include "tensor/dataset.hpp"

namespace murmur {

namespace {

// What a rule gets: the layer's item arguments, its input value name, its
// parameter tensors' names, and the graph to add nodes to; it returns the
// name of the layer's output value.
struct onnx_layer {
  std::vector<int64_t> args;
  std::string input, prefix;  // prefix: "3." (the layer's number)
  onnx::GraphProto* graph = nullptr;
};
using onnx_rule = std::function<std::string(const onnx_layer&)>;

onnx::NodeProto* add_node(const onnx_layer& l, const std::string& op, std::vector<std::string> inputs) {
  onnx::NodeProto* n = l.graph->add_node();
  n->set_op_type(op);
  n->set_name(l.prefix + op);
  for (auto& i : inputs) n->add_input(i);
  n->add_output(l.prefix + "out");
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
         const int64_t k = l.args.at(1), s = l.args.size() > 2 ? l.args[2] : 1, p = l.args.size() > 3 ? l.args[3] : 0;
         auto* n = add_node(l, "Conv", {l.input, l.prefix + "weight", l.prefix + "bias"});
         ints(n, "kernel_shape", {k, k});
         ints(n, "strides", {s, s});
         ints(n, "pads", {p, p, p, p});
         return n->output(0);
       }},
      {"maxpool2d",
       [](const onnx_layer& l) {
         const int64_t k = l.args.at(0);
         auto* n = add_node(l, "MaxPool", {l.input});
         ints(n, "kernel_shape", {k, k});
         ints(n, "strides", {k, k});
         return n->output(0);
       }},
      {"relu", [](const onnx_layer& l) { return plain(l, "Relu"); }},
      {"sigmoid", [](const onnx_layer& l) { return plain(l, "Sigmoid"); }},
      {"tanh", [](const onnx_layer& l) { return plain(l, "Tanh"); }},
      {"flatten",
       [](const onnx_layer& l) {
         auto* n = add_node(l, "Flatten", {l.input});
         integer(n, "axis", 1);
         return n->output(0);
       }},
  };
  return table;
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
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string kind = layer_kind(items[i]);
    auto rule = rules().find(kind);
    if (rule == rules().end())
      throw std::invalid_argument("ONNX export: no ONNX form for layer kind '" + kind + "' (layer " +
                                  std::to_string(i) + " '" + items[i] + "')");
    value = rule->second({layer_int_args(items[i]), value, std::to_string(i) + ".", g});
  }
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
