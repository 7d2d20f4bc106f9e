#include "run/eval_data.hpp"

#include "run/config_schema.hpp"
#include "run/run_data.hpp"

namespace murmur {

std::shared_ptr<const Dataset> load_eval_data(const std::string& data_dir, const std::vector<std::string>& overrides,
                                              std::ostream* notices) {
  std::vector<std::string> keys;
  if (!data_dir.empty()) keys.push_back("data.dir=" + data_dir);
  for (const auto& o : overrides) {
    if (o.rfind("data.", 0) != 0)
      throw ConfigError("--set " + o + ": murmur eval takes data.* keys only (the data to evaluate on)");
    keys.push_back(o);
  }
  const RunConfig c = parse_config("", "--data/--set", keys);
  return load_run_data(c, notices).test;
}

}  // namespace murmur
