#include "lan/served_model.hpp"

#include <algorithm>
#include <stdexcept>

#include "model_io/model_source.hpp"

namespace murmur {

namespace {

// The cut balances a model of the machine, not a measurement: every stage
// process must compute the same one. A gigabit link prices the activations.
constexpr double modelled_gflops = 10.0;
constexpr double link_bytes_per_second = 125e6;

}  // namespace

served_model load_served_model(const served_model_source& src) {
  served_model m;
  if (!src.model.empty()) {
    const model_weights w = load_whole_model({src.model});
    m.spec = w.model.spec;
    m.input_shape = w.model.input_shape;
    m.num_classes = w.model.num_classes;
    m.whole = build_model_from(w);
    m.whole->set_training(false);
    return m;
  }
  m.spec = src.arch;
  m.input_shape = src.input_shape;
  m.num_classes = src.num_classes;
  m.whole = build_model(src.arch, src.input_shape, src.num_classes);
  m.whole->init(src.seed);
  m.whole->set_training(false);
  return m;
}

std::vector<stage_range> served_stage_ranges(const served_model& m, size_t stages, const std::string& split) {
  const size_t layers = m.whole->layer_count();
  if (stages == 0 || stages > layers)
    throw std::invalid_argument("--stages " + std::to_string(stages) + ": the model has " + std::to_string(layers) +
                                " layers, so 1.." + std::to_string(layers) + " stages");
  if (!split.empty()) return parse_stage_split(split, layers, stages);
  return balance_stages(modelled_layer_costs(*m.whole, modelled_gflops), stages, link_bytes_per_second);
}

std::unique_ptr<Sequential> served_stage(const served_model& m, stage_range r) {
  auto part = build_stage_layers(m.spec, m.input_shape, m.num_classes, r);
  const int64_t begin = m.whole->layer_param_offset(r.begin);
  const int64_t end = r.end < m.whole->layer_count() ? m.whole->layer_param_offset(r.end) : m.whole->param_count();
  if (end - begin != part->param_count())
    throw std::logic_error("served_stage: layers " + std::to_string(r.begin) + ".." + std::to_string(r.end) +
                           " hold " + std::to_string(end - begin) + " parameters in the whole model, " +
                           std::to_string(part->param_count()) + " alone");
  std::copy(m.whole->params() + begin, m.whole->params() + end, part->params());
  part->set_training(false);
  return part;
}

}  // namespace murmur
