#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/commands.hpp"
#include "cli/plot.hpp"
#include "sim/config_schema.hpp"
#include "sim/simulation.hpp"

namespace murmur {

int sweep_command(const std::vector<std::string>& a) {
  std::string config, param, out;
  std::vector<std::string> overrides;
  for (size_t i = 0; i < a.size(); ++i) {
    auto value = [&](const char* flag) {
      if (i + 1 >= a.size()) throw UsageError(std::string(flag) + " needs a value");
      return a[++i];
    };
    if (a[i] == "--param") param = value("--param");
    else if (a[i] == "--set") overrides.push_back(value("--set"));
    else if (a[i] == "--out") out = value("--out");
    else if (!a[i].empty() && a[i][0] == '-') throw UsageError("unknown option '" + a[i] + "'");
    else if (config.empty()) config = a[i];
    else throw UsageError("unexpected argument '" + a[i] + "'");
  }
  if (config.empty()) throw UsageError("missing <config.toml>");
  auto eq = param.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == param.size())
    throw UsageError("--param needs KEY=V1,V2,... (got '" + param + "')");
  const std::string key = param.substr(0, eq);
  std::vector<std::string> values;
  for (size_t p = eq + 1;;) {
    size_t q = param.find(',', p);
    values.push_back(param.substr(p, q == std::string::npos ? std::string::npos : q - p));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  if (out.empty()) out = "runs/" + std::filesystem::path(config).stem().string() + "-sweep";
  // Validate every value before the first (long) run starts.
  std::vector<RunConfig> runs;
  for (const auto& v : values) {
    auto ov = overrides;
    ov.push_back(key + "=" + v);
    runs.push_back(load_config(config, ov));
  }
  std::filesystem::create_directories(out);
  std::ofstream csv(out + "/sweep.csv");
  csv << key << ",final_test_accuracy,bytes_sent_total,virtual_time_s,min_test_accuracy,dense_allreduce_bytes,wall_time_s\n";
  std::printf("%-14s %10s %10s %14s %12s %10s\n", key.c_str(), "accuracy", "worst", "bytes sent", "vs all-red.", "virtual s");
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string dir = out + "/" + key + "=" + values[i];
    sim_summary s = run_simulation(runs[i], dir);
    std::printf("%-14s %9.2f%% %9.2f%% %14llu %11.1fx %10.2f\n", values[i].c_str(), 100 * s.final_test_accuracy,
                100 * s.min_test_accuracy, static_cast<unsigned long long>(s.bytes_sent_total),
                s.bytes_sent_total ? s.dense_allreduce_bytes / static_cast<double>(s.bytes_sent_total) : 0.0,
                s.virtual_time_s);
    std::fflush(stdout);
    csv << values[i] << ',' << s.final_test_accuracy << ',' << s.bytes_sent_total << ',' << s.virtual_time_s << ','
        << s.min_test_accuracy << ',' << s.dense_allreduce_bytes << ',' << s.wall_time_s << '\n';
    csv.flush();
  }
  std::string note;
  bool plotted = plot_sweep(out, key, &note);
  std::printf("wrote %s/sweep.csv%s\n", out.c_str(), plotted ? " and sweep.png" : "");
  if (!plotted) std::printf("note: %s\n", note.c_str());
  return 0;
}

}  // namespace murmur
