#include "run/final_model.hpp"

#include <filesystem>

#include "model_io/model_evaluation.hpp"
#include "model_io/model_file.hpp"
#include "run/json_text.hpp"

namespace murmur {

final_model_info write_final_model(const std::string& path, const RunConfig& c, Sequential& whole,
                                   const Dataset& test, const std::string& source, uint64_t step) {
  final_model_info info;
  const model_evaluation e = evaluate_model(whole, test);
  info.file = path;
  info.source = source;
  info.step = step;
  info.test_accuracy = e.accuracy;
  info.test_loss = e.mean_loss;
  info.evaluated = true;
  model_description d = describe_model(c.model, whole.input_shape(), test.num_classes);
  d.notes = {{"source", source},
             {"step", std::to_string(step)},
             {"seed", std::to_string(c.seed)},
             {"test_accuracy", json_number(e.accuracy)},
             {"test_loss", json_number(e.mean_loss)},
             {"test_samples", std::to_string(e.samples)}};
  write_model_file(path, d, whole);
  info.written = true;
  return info;
}

final_model_info write_stage_model(const std::string& path, const RunConfig& c, const Sequential& part,
                                   const Shape& input_shape, int64_t num_classes, stage_range r, uint32_t replica,
                                   uint32_t stage, uint32_t stages, uint64_t step) {
  final_model_info info;
  info.file = path;
  info.step = step;
  info.source = "stage " + std::to_string(stage) + " of " + std::to_string(stages) + " (layers [" +
                std::to_string(r.begin) + ", " + std::to_string(r.end) + ")) of replica " + std::to_string(replica);
  model_description d = describe_model(c.model, input_shape, num_classes, r);
  d.notes = {{"source", info.source},
             {"step", std::to_string(step)},
             {"seed", std::to_string(c.seed)},
             {"replica", std::to_string(replica)},
             {"stage", std::to_string(stage)},
             {"stages", std::to_string(stages)}};
  write_model_file(path, d, part);
  info.written = true;
  return info;
}

std::string final_model_json(const final_model_info& m) {
  if (!m.written) return "null";
  std::string j = "{\"file\": " + json_string(std::filesystem::path(m.file).filename().string()) +
                  ", \"source\": " + json_string(m.source) + ", \"step\": " + std::to_string(m.step);
  if (m.evaluated)
    j += ", \"test_accuracy\": " + json_number(m.test_accuracy) + ", \"test_loss\": " + json_number(m.test_loss);
  return j + "}";
}

}  // namespace murmur
