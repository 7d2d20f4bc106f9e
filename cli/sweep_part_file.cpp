#include "cli/sweep_part_file.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "run/sweep_plan.hpp"

namespace murmur {

namespace {

using nlohmann::json;

// NaN and infinities have no JSON form: null, read back as NaN.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

struct reader {
  std::string where;  // "FILE line N"

  const json& at(const json& j, const char* key) const {
    const auto f = j.find(key);
    if (f == j.end()) throw std::runtime_error(where + ": no field '" + key + "'");
    return *f;
  }
  double real(const json& j, const char* key) const {
    const json& v = at(j, key);
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) throw std::runtime_error(where + ": field '" + key + "' is not a number");
    return v.get<double>();
  }
  uint64_t count(const json& j, const char* key) const {
    const json& v = at(j, key);
    if (!v.is_number_unsigned()) throw std::runtime_error(where + ": field '" + key + "' is not a count");
    return v.get<uint64_t>();
  }
  bool flag(const json& j, const char* key) const {
    const json& v = at(j, key);
    if (!v.is_boolean()) throw std::runtime_error(where + ": field '" + key + "' is not true or false");
    return v.get<bool>();
  }
  std::vector<std::string> strings(const json& j, const char* key) const {
    const json& v = at(j, key);
    if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); }))
      throw std::runtime_error(where + ": field '" + key + "' is not a list of strings");
    return v.get<std::vector<std::string>>();
  }
  std::vector<uint64_t> counts(const json& j, const char* key) const {
    const json& v = at(j, key);
    if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number_unsigned(); }))
      throw std::runtime_error(where + ": field '" + key + "' is not a list of counts");
    return v.get<std::vector<uint64_t>>();
  }
};

sweep_part_header read_header(const json& j, const reader& r) {
  sweep_part_header h;
  if (r.at(j, "murmur_sweep_part") != 1) throw std::runtime_error(r.where + ": not a murmur sweep part (version 1)");
  const json& c = r.at(j, "command");
  if (!c.is_string()) throw std::runtime_error(r.where + ": field 'command' is not a string");
  h.command = c.get<std::string>();
  h.keys = r.strings(j, "keys");
  h.configs = r.count(j, "configs");
  for (uint64_t p : r.counts(j, "order")) h.order.push_back(static_cast<size_t>(p));
  h.part = r.count(j, "part");
  h.parts = r.count(j, "parts");
  std::vector<size_t> sorted = h.order;
  std::sort(sorted.begin(), sorted.end());
  bool permutation = sorted.size() == h.configs;
  for (size_t i = 0; i < sorted.size() && permutation; ++i) permutation = sorted[i] == i;
  if (!permutation || h.parts < 1 || h.part >= h.parts)
    throw std::runtime_error(r.where + ": the header's order, part or parts do not fit its configs");
  return h;
}

sweep_row read_row(const json& j, const reader& r, size_t keys) {
  sweep_row row;
  row.values = r.strings(j, "values");
  if (row.values.size() != keys) throw std::runtime_error(r.where + ": not one value per swept key");
  const json& s = r.at(j, "summary");
  sim_summary& m = row.summary;
  m.final_test_accuracy = r.real(s, "final_test_accuracy");
  m.min_test_accuracy = r.real(s, "min_test_accuracy");
  m.bytes_sent_total = r.count(s, "bytes_sent_total");
  m.dense_allreduce_bytes = r.real(s, "dense_allreduce_bytes");
  m.virtual_time_s = r.real(s, "virtual_time_s");
  m.wall_time_s = r.real(s, "wall_time_s");
  m.honest_test_accuracy = r.real(s, "honest_test_accuracy");
  for (uint64_t a : r.counts(s, "attackers")) m.attackers.push_back(static_cast<uint32_t>(a));
  m.detect_overhead_pct = r.real(s, "detect_overhead_pct");
  m.samples_per_s = r.real(s, "samples_per_s");
  m.interrupted = r.flag(s, "interrupted");
  const json& d = r.at(s, "detection");
  m.detection.fp = r.count(d, "fp");
  m.detection.precision = r.real(d, "precision");
  m.detection.recall = r.real(d, "recall");
  m.detection.f1 = r.real(d, "f1");
  m.detection.honest_quarantined = r.count(d, "honest_quarantined");
  m.detection.steps_to_quarantine_median = r.real(d, "steps_to_quarantine_median");
  m.detection.steps_to_quarantine_p95 = r.real(d, "steps_to_quarantine_p95");
  const json& v = r.at(s, "verification");
  m.verification.enabled = r.flag(v, "enabled");
  m.verification.step_seconds = r.real(v, "step_seconds");
  m.verification.check_seconds = r.real(v, "check_seconds");
  m.verification.commit_seconds = r.real(v, "commit_seconds");
  const json& p = r.at(s, "pipeline");
  m.pipeline.enabled = r.flag(p, "enabled");
  m.pipeline.efficiency = r.real(p, "efficiency");
  m.pipeline.bound = r.real(p, "bound");
  const json& stages = r.at(p, "per_stage");
  if (!stages.is_array()) throw std::runtime_error(r.where + ": field 'per_stage' is not a list");
  for (const json& q : stages) {
    stage_summary st;
    st.replica = static_cast<uint16_t>(r.count(q, "replica"));
    st.peak_in_flight = static_cast<decltype(st.peak_in_flight)>(r.count(q, "peak_in_flight"));
    st.peak_activation_mb = r.real(q, "peak_activation_mb");
    m.pipeline.per_stage.push_back(st);
  }
  return row;
}

std::vector<std::string> part_files(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path)) return {path};
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(path)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("sweep-part-", 0) == 0 && e.path().extension() == ".jsonl") files.push_back(e.path().string());
  }
  if (files.empty()) throw std::runtime_error(path + ": no sweep-part-*.jsonl in it (murmur sweep --part K/M writes one)");
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::string sweep_part_file_name(size_t part, size_t parts) {
  return "sweep-part-" + std::to_string(part) + "-of-" + std::to_string(parts) + ".jsonl";
}

std::string sweep_part_header_line(const sweep_part_header& h) {
  json j{{"murmur_sweep_part", 1}, {"command", h.command}, {"keys", h.keys}, {"configs", h.configs},
         {"order", h.order}, {"part", h.part},  {"parts", h.parts}};
  return j.dump() + "\n";
}

std::string sweep_part_row_line(size_t index, const sweep_row& r) {
  const sim_summary& s = r.summary;
  const auto& d = s.detection;
  const auto& v = s.verification;
  json stages = json::array();
  for (const auto& q : s.pipeline.per_stage)
    stages.push_back({{"replica", q.replica}, {"peak_in_flight", q.peak_in_flight},
                      {"peak_activation_mb", number(q.peak_activation_mb)}});
  json summary{
      {"final_test_accuracy", number(s.final_test_accuracy)},
      {"min_test_accuracy", number(s.min_test_accuracy)},
      {"bytes_sent_total", s.bytes_sent_total},
      {"dense_allreduce_bytes", number(s.dense_allreduce_bytes)},
      {"virtual_time_s", number(s.virtual_time_s)},
      {"wall_time_s", number(s.wall_time_s)},
      {"honest_test_accuracy", number(s.honest_test_accuracy)},
      {"attackers", s.attackers},
      {"detect_overhead_pct", number(s.detect_overhead_pct)},
      {"samples_per_s", number(s.samples_per_s)},
      {"interrupted", s.interrupted},
      {"detection",
       {{"fp", d.fp}, {"precision", number(d.precision)}, {"recall", number(d.recall)}, {"f1", number(d.f1)},
        {"honest_quarantined", d.honest_quarantined},
        {"steps_to_quarantine_median", number(d.steps_to_quarantine_median)},
        {"steps_to_quarantine_p95", number(d.steps_to_quarantine_p95)}}},
      {"verification",
       {{"enabled", v.enabled}, {"step_seconds", number(v.step_seconds)}, {"check_seconds", number(v.check_seconds)},
        {"commit_seconds", number(v.commit_seconds)}}},
      {"pipeline",
       {{"enabled", s.pipeline.enabled}, {"efficiency", number(s.pipeline.efficiency)},
        {"bound", number(s.pipeline.bound)}, {"per_stage", stages}}}};
  return json{{"index", index}, {"values", r.values}, {"summary", summary}}.dump() + "\n";
}

merged_sweep merge_sweep_parts(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& p : paths)
    for (auto& f : part_files(p)) files.push_back(std::move(f));
  merged_sweep m;
  std::map<size_t, std::string> part_from;    // part -> its file
  std::map<size_t, std::string> row_from;     // configuration -> the file that has it
  std::vector<std::optional<sweep_row>> rows;
  for (const auto& file : files) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file + ": cannot read");
    std::string line;
    size_t n = 0;
    sweep_part_header h;
    while (std::getline(in, line)) {
      reader r{file + " line " + std::to_string(++n)};
      json j;
      try {
        j = json::parse(line);
      } catch (const json::parse_error& e) {
        throw std::runtime_error(r.where + ": not JSON (" + e.what() + ")");
      }
      if (!j.is_object()) throw std::runtime_error(r.where + ": not a JSON object");
      if (n == 1) {
        h = read_header(j, r);
        if (part_from.empty()) {
          m.header = h;
          rows.resize(h.configs);
        } else if (h.command != m.header.command || h.keys != m.header.keys || h.configs != m.header.configs ||
                   h.order != m.header.order || h.parts != m.header.parts) {
          throw std::runtime_error(file + ": part of another sweep than " + part_from.begin()->second + " ('" +
                                   h.command + "', " + std::to_string(h.parts) + " parts, against '" +
                                   m.header.command + "', " + std::to_string(m.header.parts) + " parts)");
        }
        if (const auto [it, fresh] = part_from.emplace(h.part, file); !fresh)
          throw std::runtime_error(file + ": part " + std::to_string(h.part) + " again (also " + it->second + ")");
        continue;
      }
      const uint64_t index = r.count(j, "index");
      if (index >= h.configs) throw std::runtime_error(r.where + ": configuration index past the sweep's");
      sweep_row row = read_row(j, r, h.keys.size());
      if (row.summary.interrupted)
        throw std::runtime_error(r.where + ": a stop signal ended this run partway; run part " +
                                 std::to_string(h.part) + " again");
      if (const auto [it, fresh] = row_from.emplace(index, file); !fresh)
        throw std::runtime_error(r.where + ": configuration " + std::to_string(index) + " again (also in " +
                                 it->second + ")");
      rows[index] = std::move(row);
    }
    if (n == 0) throw std::runtime_error(file + ": empty (not a murmur sweep part)");
  }
  std::string missing_parts;
  for (size_t k = 0; k < m.header.parts; ++k)
    if (!part_from.count(k)) missing_parts += (missing_parts.empty() ? "" : ", ") + std::to_string(k);
  if (!missing_parts.empty())
    throw std::runtime_error("part " + missing_parts + " of " + std::to_string(m.header.parts) +
                             " missing (expected " + sweep_part_file_name(0, m.header.parts) + " and the others)");
  std::vector<std::vector<std::string>> values;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i])
      throw std::runtime_error("configuration " + std::to_string(i) +
                               " in no part (a part stopped early or failed: run it again)");
    values.push_back(rows[i]->values);
    m.rows.push_back(std::move(*rows[i]));
  }
  for (size_t i = 0; i < m.rows.size(); ++i)
    if (auto c = clean_run_of(m.header.keys, values, i)) m.rows[i].clean_accuracy = m.rows[*c].summary.honest_test_accuracy;
  return m;
}

}  // namespace murmur
