#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "cli/commands.hpp"
#include "cli/plot.hpp"
#include "cli/sweep_table.hpp"
#include "run/config_schema.hpp"
#include "run/key_usage.hpp"
#include "sim/simulation.hpp"

namespace murmur {

namespace {

struct swept_key {
  std::string key;
  std::vector<std::string> values;
};

swept_key parse_param(const std::string& param) {
  auto eq = param.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == param.size())
    throw UsageError("--param needs KEY=V1,V2,... (got '" + param + "')");
  swept_key s{param.substr(0, eq), {}};
  for (size_t p = eq + 1;;) {
    size_t q = param.find(',', p);
    s.values.push_back(param.substr(p, q == std::string::npos ? std::string::npos : q - p));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return s;
}

}  // namespace

// Several --param give their Cartesian product, the first key varying
// slowest. Clean runs (attack.kind = none) go first so that every attacked
// run's row can show its accuracy against the clean one.
int sweep_command(const std::vector<std::string>& a) {
  std::string config, out;
  std::vector<swept_key> params;
  std::vector<std::string> overrides;
  for (size_t i = 0; i < a.size(); ++i) {
    auto value = [&](const char* flag) {
      if (i + 1 >= a.size()) throw UsageError(std::string(flag) + " needs a value");
      return a[++i];
    };
    if (a[i] == "--param") params.push_back(parse_param(value("--param")));
    else if (a[i] == "--set") overrides.push_back(value("--set"));
    else if (a[i] == "--out") out = value("--out");
    else if (!a[i].empty() && a[i][0] == '-') throw UsageError("unknown option '" + a[i] + "'");
    else if (config.empty()) config = a[i];
    else throw UsageError("unexpected argument '" + a[i] + "'");
  }
  if (config.empty()) throw UsageError("missing <config.toml>");
  if (params.empty()) throw UsageError("--param needs KEY=V1,V2,... (got '')");
  std::vector<std::string> keys;
  for (const auto& p : params) keys.push_back(p.key);
  // The Cartesian product, in table order.
  std::vector<std::vector<std::string>> combos{{}};
  for (const auto& p : params) {
    std::vector<std::vector<std::string>> next;
    for (const auto& c : combos)
      for (const auto& v : p.values) {
        next.push_back(c);
        next.back().push_back(v);
      }
    combos = std::move(next);
  }
  if (out.empty()) out = "runs/" + std::filesystem::path(config).stem().string() + "-sweep";
  // Validate every run before the first (long) one starts.
  std::vector<RunConfig> runs;
  std::vector<std::string> names;
  std::set<std::string> warned;  // each warning once, not once per run
  for (const auto& c : combos) {
    auto ov = overrides;
    std::string name;
    for (size_t k = 0; k < keys.size(); ++k) {
      ov.push_back(keys[k] + "=" + c[k]);
      name += (k ? "," : "") + keys[k] + "=" + c[k];
    }
    runs.push_back(load_config(config, ov));
    const std::string unused = check_key_usage(runs.back(), run_host::sim, config + " and --param/--set");
    if (!unused.empty() && warned.insert(unused).second)
      std::fprintf(stderr, "murmur sweep: warning: %s\n", unused.c_str());
    names.push_back(name);
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < runs.size(); ++i)
    if (runs[i].attack_kind == "none") order.push_back(i);
  for (size_t i = 0; i < runs.size(); ++i)
    if (runs[i].attack_kind != "none") order.push_back(i);

  std::filesystem::create_directories(out);
  std::ofstream csv(out + "/sweep.csv");
  csv << sweep_csv_header(keys);
  const std::string label = keys.size() == 1 ? keys[0] : "run";
  std::printf("%-14s %10s %10s %14s %12s %10s %10s %6s\n", label.c_str(), "accuracy", "worst", "bytes sent",
              "vs all-red.", "virtual s", "honest", "F1");
  std::vector<sweep_row> rows(runs.size());
  std::vector<bool> done(runs.size(), false);
  for (size_t i : order) {
    rows[i].values = combos[i];
    // A clean run does not depend on the attack keys: one per setting of
    // the other keys, shared by its rows.
    std::optional<size_t> same_clean;
    if (runs[i].attack_kind == "none")
      for (size_t j = 0; j < i && !same_clean; ++j)
        if (done[j] && runs[j].attack_kind == "none" && same_but_attack_keys(keys, combos, i, j)) same_clean = j;
    rows[i].summary = same_clean ? rows[*same_clean].summary : run_simulation(runs[i], out + "/" + names[i]);
    done[i] = true;
    if (auto c = clean_run_of(keys, combos, i); c && done[*c]) rows[i].clean_accuracy = rows[*c].summary.honest_test_accuracy;
    const sim_summary& s = rows[i].summary;
    const std::string shown = keys.size() == 1 ? combos[i][0] : names[i];
    std::printf("%-14s %9.2f%% %9.2f%% %14llu %11.1fx %10.2f %9.2f%% %6.3f\n", shown.c_str(),
                100 * s.final_test_accuracy, 100 * s.min_test_accuracy,
                static_cast<unsigned long long>(s.bytes_sent_total),
                s.bytes_sent_total ? s.dense_allreduce_bytes / static_cast<double>(s.bytes_sent_total) : 0.0,
                s.virtual_time_s, 100 * s.honest_test_accuracy, s.detection.f1);
    std::fflush(stdout);
    csv << sweep_csv_line(rows[i]);
    csv.flush();
  }
  bool pipelines = false;
  for (const auto& r : rows) pipelines = pipelines || r.summary.pipeline.enabled;
  std::ofstream(out + "/sweep.md") << (pipelines ? pipeline_markdown(keys, rows) : sweep_markdown(keys, rows));
  std::string note;
  bool plotted = plot_sweep(out, label, &note, keys.size());
  std::printf("wrote %s/sweep.csv, sweep.md%s\n", out.c_str(), plotted ? " and sweep.png" : "");
  if (!plotted) std::printf("note: %s\n", note.c_str());
  return 0;
}

}  // namespace murmur
