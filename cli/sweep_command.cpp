// murmur sweep: one simulation per value of the swept keys, one table of them.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
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

struct sweep_args {
  std::string config, out;
  std::vector<std::string> params, overrides;
};

// "-" for a value that is undefined (NaN: no attackers, no detections).
std::string cell(double v, const char* format) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

std::string seconds(double s) {
  char b[32];
  if (s < 10) std::snprintf(b, sizeof b, "%.1f s", s);
  else if (s < 60) std::snprintf(b, sizeof b, "%.0f s", s);
  else std::snprintf(b, sizeof b, "%ld min %02ld s", std::lround(s) / 60, std::lround(s) % 60);
  return b;
}

int run_sweep(sweep_args a, const std::atomic<int>& stop);

}  // namespace

verb_run add_sweep_verb(CLI::App& murmur, const std::atomic<int>& stop) {
  auto a = std::make_shared<sweep_args>();
  CLI::App* v = murmur.add_subcommand(
      "sweep", "one simulation per value of a key (per combination of several --param); writes sweep.csv, sweep.md, sweep.png");
  v->add_option("config", a->config, "the config every run starts from")->type_name("CONFIG.toml");
  v->add_option("--param", a->params, "a swept key and its values; repeatable (their product is run)")
      ->type_name("KEY=V1,V2,...");
  v->add_option("--set", a->overrides, "override a config key in every run; repeatable")->type_name("KEY=VALUE");
  v->add_option("--out", a->out, "sweep directory, one run directory per run (default runs/<config name>-sweep)")
      ->type_name("DIR");
  v->footer("Ctrl-C (SIGINT) or SIGTERM: the run in progress stops as `murmur sim` does (its files written, marked\n"
            "interrupted); the table of the runs so far is written, marked interrupted; exits 130/143.\n"
            "Example:\n  murmur sweep configs/fmnist-gossip.toml --param gossip.threshold=0,0.001,0.01 --set train.epochs=2");
  return [a, &stop] { return run_sweep(*a, stop); };
}

namespace {

// Several --param give their Cartesian product, the first key varying
// slowest. Clean runs (attack.kind = none) go first so that every attacked
// run's row can show its accuracy against the clean one. A stop signal ends
// the run in progress (run_simulation writes it, marked interrupted) and
// the sweep: the table holds the runs done so far, that one last.
int run_sweep(sweep_args a, const std::atomic<int>& stop) {
  std::string& config = a.config;
  std::string& out = a.out;
  std::vector<std::string>& overrides = a.overrides;
  std::vector<swept_key> params;
  for (const auto& p : a.params) params.push_back(parse_param(p));
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
  // Progress after each run: the ETA is the mean time of the runs simulated
  // so far times those left (a shared clean run costs nothing).
  const auto t0 = std::chrono::steady_clock::now();
  size_t finished = 0, simulated = 0, to_simulate = 0;
  for (size_t i : order) {
    bool shared = false;
    if (runs[i].attack_kind == "none")
      for (size_t j = 0; j < i && !shared; ++j)
        shared = runs[j].attack_kind == "none" && same_but_attack_keys(keys, combos, i, j);
    to_simulate += shared ? 0 : 1;
  }
  bool interrupted = false;
  std::string partial;  // the run the signal stopped partway, if one was in progress
  for (size_t i : order) {
    if (stop.load() != 0) {  // between runs
      interrupted = true;
      break;
    }
    rows[i].values = combos[i];
    // A clean run does not depend on the attack keys: one per setting of
    // the other keys, shared by its rows.
    std::optional<size_t> same_clean;
    if (runs[i].attack_kind == "none")
      for (size_t j = 0; j < i && !same_clean; ++j)
        if (done[j] && runs[j].attack_kind == "none" && same_but_attack_keys(keys, combos, i, j)) same_clean = j;
    rows[i].summary = same_clean ? rows[*same_clean].summary
                                 : run_simulation(runs[i], out + "/" + names[i], {}, "", &stop);
    done[i] = true;
    const bool partway = rows[i].summary.interrupted;  // a stop signal ended it: not done
    finished += partway ? 0 : 1;
    simulated += same_clean || partway ? 0 : 1;
    if (auto c = clean_run_of(keys, combos, i); c && done[*c]) rows[i].clean_accuracy = rows[*c].summary.honest_test_accuracy;
    const sim_summary& s = rows[i].summary;
    const std::string shown = keys.size() == 1 ? combos[i][0] : names[i];
    std::printf("%-14s %10s %10s %14llu %11.1fx %10.2f %10s %6s\n", shown.c_str(),
                cell(100 * s.final_test_accuracy, "%.2f%%").c_str(), cell(100 * s.min_test_accuracy, "%.2f%%").c_str(),
                static_cast<unsigned long long>(s.bytes_sent_total),
                s.bytes_sent_total ? s.dense_allreduce_bytes / static_cast<double>(s.bytes_sent_total) : 0.0,
                s.virtual_time_s, cell(100 * s.honest_test_accuracy, "%.2f%%").c_str(),
                cell(s.detection.f1, "%.3f").c_str());
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string eta = simulated > 0 && finished < runs.size()
                                ? ", ETA " + seconds(elapsed / static_cast<double>(simulated) *
                                                     static_cast<double>(to_simulate - simulated))
                                : "";
    std::printf("  [%zu/%zu runs done, %s elapsed%s]\n", finished, runs.size(), seconds(elapsed).c_str(), eta.c_str());
    std::fflush(stdout);
    csv << sweep_csv_line(rows[i]);
    csv.flush();
    if (partway) {
      interrupted = true;
      partial = names[i];
      break;
    }
  }
  // The table: the runs done and the one stopped partway, in table order.
  std::vector<sweep_row> table;
  for (size_t i = 0; i < rows.size(); ++i)
    if (done[i]) table.push_back(rows[i]);
  bool pipelines = false;
  for (const auto& r : table) pipelines = pipelines || r.summary.pipeline.enabled;
  std::string md = pipelines ? pipeline_markdown(keys, table) : sweep_markdown(keys, table);
  const std::string stopped =
      "interrupted by a signal after " + std::to_string(finished) + " of " +
      std::to_string(runs.size()) + " runs" +
      (partial.empty() ? "" : "; " + partial + " stopped partway (its row is the partial run's, marked interrupted)");
  if (interrupted) md += "\n**Sweep " + stopped + ".**\n";
  std::ofstream(out + "/sweep.md") << md;
  std::string note;
  bool plotted = plot_sweep(out, label, &note, keys.size());
  std::printf("wrote %s/sweep.csv, sweep.md%s\n", out.c_str(), plotted ? " and sweep.png" : "");
  if (!plotted) std::printf("note: %s\n", note.c_str());
  if (interrupted) {
    std::printf("sweep %s\n", stopped.c_str());
    return 128 + stop.load();
  }
  return 0;
}

}  // namespace

}  // namespace murmur
