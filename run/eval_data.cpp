#include "run/eval_data.hpp"

#include <filesystem>

#include "run/config_schema.hpp"
#include "run/run_data.hpp"
#include "run/slow_notice.hpp"
#include "tensor/dataset_files.hpp"

namespace murmur {

std::shared_ptr<const Dataset> load_eval_data(const std::string& data, const std::string& labels_path,
                                              const std::vector<std::string>& overrides, int64_t num_classes,
                                              std::ostream* notices) {
  std::vector<std::string> keys;
  std::error_code ec;
  const bool is_file = !data.empty() && !std::filesystem::is_directory(data, ec);
  if (!data.empty() && !is_file) keys.push_back("data.dir=" + data);
  if (is_file && labels_path.empty())
    throw ConfigError("--data " + data + " is a features file: give its labels with --labels FILE");
  if (!is_file && !labels_path.empty())
    throw ConfigError("--labels " + labels_path + " goes with --data FEATURES_FILE");
  for (const auto& o : overrides) {
    if (o.rfind("data.", 0) != 0)
      throw ConfigError("--set " + o + ": murmur eval takes data.* keys only (the data to evaluate on)");
    keys.push_back(o);
  }
  const RunConfig c = parse_config("", "--data/--set", keys);
  const auto classes = static_cast<int32_t>(c.classes > 0 ? c.classes : num_classes);
  Dataset test;
  if (is_file || c.dataset == "files") {
    const std::string f = is_file ? data : c.test_features, l = is_file ? labels_path : c.test_labels;
    slow_notice notice("loading " + f, notices);
    test = load_dataset_files(f, l, classes);
  } else {
    test = std::move(*std::const_pointer_cast<Dataset>(load_run_data(c, notices).test));
  }
  if (c.test_samples > 0 && c.test_samples < test.size()) test = take(test, c.test_samples);
  return std::make_shared<const Dataset>(std::move(test));
}

}  // namespace murmur
