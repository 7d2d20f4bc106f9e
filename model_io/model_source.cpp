#include "model_io/model_source.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>

#include "tensor/dataset.hpp"

namespace murmur {

namespace fs = std::filesystem;

std::string stage_model_file_name(uint32_t replica, uint32_t stage) {
  return "stage-" + std::to_string(replica) + "-" + std::to_string(stage) + ".safetensors";
}

namespace {

std::vector<std::string> files_of(const std::string& input) {
  std::error_code ec;
  if (!fs::is_directory(input, ec)) {
    if (!fs::exists(input, ec)) throw DataError(input + ": no such file or directory");
    return {input};
  }
  const fs::path whole = fs::path(input) / run_model_file_name;
  if (fs::exists(whole, ec)) return {whole.string()};
  static const std::regex stage_name(R"(stage-[0-9]+-[0-9]+\.safetensors)");
  std::vector<std::string> stages;
  for (const auto& f : fs::directory_iterator(input, ec))
    if (std::regex_match(f.path().filename().string(), stage_name)) stages.push_back(f.path().string());
  std::sort(stages.begin(), stages.end());
  return stages;
}

std::string list(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

uint32_t note_int(const model_weights& w, const std::string& key, const std::string& path) {
  auto it = w.model.notes.find(key);
  if (it == w.model.notes.end()) throw DataError(path + ": a pipeline stage's file without '" + key + "' metadata");
  try {
    size_t used = 0;
    const unsigned long v = std::stoul(it->second, &used);
    if (used == it->second.size() && v < (1u << 20)) return static_cast<uint32_t>(v);
  } catch (const std::exception&) {
  }
  throw DataError(path + ": metadata '" + key + "' = '" + it->second + "' is not a small integer");
}

}  // namespace

model_weights load_whole_model(const std::vector<std::string>& inputs) {
  if (inputs.empty()) throw DataError("no model given");
  std::vector<std::string> paths;
  for (const auto& in : inputs)
    for (auto& f : files_of(in)) paths.push_back(std::move(f));
  if (paths.empty())
    throw DataError((inputs.size() == 1 ? inputs[0] + ": holds" : list(inputs) + ": hold") + " neither " +
                    run_model_file_name +
                    " nor stage-R-S.safetensors files (a run still going, one from before runs wrote models, or a "
                    "pipeline spare that hosted no stage)");
  std::vector<model_weights> parts;
  std::vector<std::string> whole_paths;
  for (const auto& p : paths) {
    parts.push_back(read_model_file(p));
    if (parts.back().model.whole()) whole_paths.push_back(p);
  }
  if (!whole_paths.empty()) {
    if (paths.size() > 1)
      throw DataError("give one model: " + list(paths) + " hold " + std::to_string(paths.size()) +
                      " (whole models: " + list(whole_paths) + ")");
    return std::move(parts.front());
  }
  // Stage files: one model, assembled from one replica's stages.
  const model_description& first = parts.front().model;
  std::map<uint32_t, std::map<size_t, size_t>> by_replica;  // replica -> layer_begin -> part
  uint32_t stages = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const model_description& d = parts[i].model;
    if (d.spec != first.spec || d.input_shape != first.input_shape || d.num_classes != first.num_classes)
      throw DataError(paths[i] + ": a different model ('" + d.spec + "', input " + shape_str(d.input_shape) +
                      ") from " + paths[0] + " ('" + first.spec + "', input " + shape_str(first.input_shape) + ")");
    const uint32_t r = note_int(parts[i], "replica", paths[i]);
    const uint32_t s = note_int(parts[i], "stages", paths[i]);
    note_int(parts[i], "stage", paths[i]);
    if (stages && s != stages)
      throw DataError(paths[i] + ": from a pipeline of " + std::to_string(s) + " stages, " + paths[0] + " of " +
                      std::to_string(stages));
    stages = s;
    auto [it, fresh] = by_replica[r].emplace(d.layers.begin, i);
    if (!fresh)
      throw DataError(paths[i] + " and " + paths[it->second] + ": both hold layers from " +
                      std::to_string(d.layers.begin) + " of replica " + std::to_string(r));
  }
  std::string missing;
  for (const auto& [r, by_begin] : by_replica) {
    size_t at = 0;
    std::string gaps;
    for (const auto& [begin, i] : by_begin) {
      const model_description& d = parts[i].model;
      if (begin > at) gaps += std::string(gaps.empty() ? "" : ", ") + "layers [" + std::to_string(at) + ", " +
                              std::to_string(begin) + ")";
      if (begin < at)
        throw DataError(paths[i] + ": layers [" + std::to_string(begin) + ", " + std::to_string(d.layers.end) +
                        ") overlap another stage of replica " + std::to_string(r));
      at = d.layers.end;
    }
    if (at < first.layer_count)
      gaps += std::string(gaps.empty() ? "" : ", ") + "layers [" + std::to_string(at) + ", " +
              std::to_string(first.layer_count) + ")";
    if (!gaps.empty()) {
      std::string want;
      for (uint32_t s = 0; s < stages; ++s) {
        bool have = false;
        for (const auto& [begin, i] : by_begin) have = have || note_int(parts[i], "stage", paths[i]) == s;
        if (!have) want += (want.empty() ? "" : ", ") + stage_model_file_name(r, s);
      }
      missing += "; replica " + std::to_string(r) + " lacks " + gaps + " (" + want +
                 ", in the run directory of the node that hosted that stage last)";
      continue;
    }
    model_weights w;
    w.model = first;
    w.model.layers = {0, first.layer_count};
    w.model.notes.clear();
    w.model.notes["source"] = "stages of replica " + std::to_string(r) + " assembled";
    for (const auto& [begin, i] : by_begin) {
      w.params.insert(w.params.end(), parts[i].params.begin(), parts[i].params.end());
      if (auto st = parts[i].model.notes.find("step"); st != parts[i].model.notes.end())
        w.model.notes["step"] = st->second;
    }
    return w;
  }
  throw DataError("no whole model in " + list(paths) + missing);
}

}  // namespace murmur
