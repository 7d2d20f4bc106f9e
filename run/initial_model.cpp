#include "run/initial_model.hpp"

#include "model_io/model_file.hpp"
#include "model_io/model_source.hpp"
#include "model_io/param_tensors.hpp"
#include "run/config_schema.hpp"
#include "tensor/dataset.hpp"

namespace murmur {

initial_params load_initial_parameters(const RunConfig& c, const Shape& input_shape, int64_t num_classes) {
  if (c.init_from.empty()) return nullptr;
  const std::string who = "model.init_from = " + c.init_from + ": ";
  model_weights w;
  try {
    w = load_whole_model({c.init_from});
  } catch (const DataError& e) {
    throw DataError("model.init_from: " + std::string(e.what()));
  }
  auto mine = build_model(c.model, input_shape, num_classes);
  auto theirs = build_model_from(w);
  const auto want = param_tensors(*mine, model_spec_items(c.model, num_classes));
  const auto have = param_tensors(*theirs, w.model.items());
  const std::string run_model = "this run's model '" + c.model + "'";
  for (size_t i = 0; i < std::max(want.size(), have.size()); ++i) {
    if (i >= have.size())
      throw ConfigError(who + "the file has no tensor '" + want[i].name + "' (" + shape_str(want[i].shape) + "), which " +
                        run_model + " needs");
    if (i >= want.size())
      throw ConfigError(who + "the file's tensor '" + have[i].name + "' is not in " + run_model);
    if (have[i].name != want[i].name || have[i].shape != want[i].shape)
      throw ConfigError(who + "tensor '" + have[i].name + "' " + shape_str(have[i].shape) + " in the file, " +
                        run_model + " has '" + want[i].name + "' " + shape_str(want[i].shape) + " there");
  }
  const auto a = model_spec_items(c.model, num_classes), b = w.model.items();
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i)
    if (i >= a.size() || i >= b.size() || a[i] != b[i])
      throw ConfigError(who + "layer " + std::to_string(i) + " is '" + (i < b.size() ? b[i] : "(none)") +
                        "' in the file ('" + w.model.spec + "'), '" + (i < a.size() ? a[i] : "(none)") + "' in " +
                        run_model);
  if (w.model.input_shape != input_shape)
    throw ConfigError(who + "the file's model takes " + shape_str(w.model.input_shape) + ", this run's data " +
                      shape_str(input_shape));
  return std::make_shared<const std::vector<float>>(std::move(w.params));
}

initial_params stage_initial_parameters(const initial_params& whole, const RunConfig& c, const Shape& input_shape,
                                        int64_t num_classes, stage_range r) {
  if (!whole) return nullptr;
  auto model = build_model(c.model, input_shape, num_classes);
  const auto [b, e] = stage_param_span(*model, r);
  return std::make_shared<const std::vector<float>>(whole->begin() + b, whole->begin() + e);
}

}  // namespace murmur
