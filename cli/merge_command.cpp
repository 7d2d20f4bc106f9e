// murmur merge: one summary and one plot for a LAN run, from the run
// directories of its peer processes (copied to one machine).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/plot.hpp"
#include "run/json_text.hpp"

namespace murmur {

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read (is this a murmur peer run directory?)");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A number field of one of our own flat JSON objects; null (a value that
// was not finite) reads as NaN.
double field(const std::string& json, const std::string& key, const std::string& where) {
  auto p = json.find("\"" + key + "\":");
  if (p == std::string::npos) throw std::runtime_error(where + ": no field '" + key + "'");
  p = json.find_first_not_of(" \t\r\n", p + key.size() + 3);
  if (p != std::string::npos && json.compare(p, 4, "null") == 0) return std::numeric_limits<double>::quiet_NaN();
  try {
    return std::stod(json.substr(p == std::string::npos ? json.size() : p));
  } catch (const std::exception&) {
    throw std::runtime_error(where + ": field '" + key + "' is not a number");
  }
}

}  // namespace

int merge_command(const std::vector<std::string>& a) {
  std::vector<std::string> runs;
  std::string out = "runs/merged";
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--out" && i + 1 < a.size()) out = a[++i];
    else if (!a[i].empty() && a[i][0] == '-') throw UsageError("unknown option '" + a[i] + "'");
    else runs.push_back(a[i]);
  }
  if (runs.empty()) throw UsageError("merge needs the run directories of the peers");
  std::filesystem::create_directories(out);
  double acc_sum = 0, acc_min = 1, bytes = 0, allreduce = 0, wall = 0, steps = 0, rejected = 0;
  std::ofstream curve(out + "/peers.tsv");
  curve << "# peer\twall_s\tbytes_sent\ttest_acc\n";
  for (const auto& r : runs) {
    const std::string sp = r + "/summary.json", mp = r + "/metrics.jsonl";
    const std::string s = slurp(sp);
    const double acc = field(s, "final_test_accuracy", sp);
    acc_sum += acc;
    acc_min = std::min(acc_min, acc);
    bytes += field(s, "bytes_sent_total", sp);
    allreduce += field(s, "dense_allreduce_bytes", sp);
    wall = std::max(wall, field(s, "wall_time_s", sp));
    steps += field(s, "steps", sp);
    rejected += field(s, "frames_rejected", sp);
    std::istringstream m(slurp(mp));
    for (std::string line; std::getline(m, line);)
      if (!line.empty())
        curve << field(line, "peer", mp) << '\t' << field(line, "wall_s", mp) << '\t' << field(line, "bytes_sent", mp)
              << '\t' << field(line, "test_acc", mp) << '\n';
    curve << "\n\n";  // one gnuplot data block per peer
  }
  const double n = static_cast<double>(runs.size());
  std::ofstream(out + "/summary.json") << "{\n  \"peers\": " << runs.size() << ",\n  \"final_test_accuracy\": "
                                       << json_number(acc_sum / n) << ",\n  \"min_test_accuracy\": " << json_number(acc_min)
                                       << ",\n  \"bytes_sent_total\": " << static_cast<uint64_t>(bytes)
                                       << ",\n  \"dense_allreduce_bytes\": " << static_cast<uint64_t>(allreduce)
                                       << ",\n  \"steps_mean\": " << json_number(steps / n) << ",\n  \"frames_rejected\": "
                                       << static_cast<uint64_t>(rejected) << ",\n  \"wall_time_s\": " << json_number(wall)
                                       << "\n}\n";
  curve.close();
  std::string note;
  bool plotted = plot_peers(out, static_cast<int>(runs.size()), &note);
  std::printf("%zu peers: final test accuracy mean %.2f%%, worst %.2f%%; sent %.3f MB in all (a ring all-reduce: %.3f MB, "
              "%.1fx more); wrote %s/summary.json%s\n",
              runs.size(), 100 * acc_sum / n, 100 * acc_min, bytes / 1e6, allreduce / 1e6,
              bytes > 0 ? allreduce / bytes : 0.0, out.c_str(), plotted ? " and accuracy.png" : "");
  if (!plotted) std::printf("note: %s\n", note.c_str());
  return 0;
}

}  // namespace murmur
