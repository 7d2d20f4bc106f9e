// murmur merge: one summary and one plot for a LAN run, from the run
// directories of its peer processes (copied to one machine).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/plot.hpp"
#include "actors/reputation.hpp"
#include "run/json_text.hpp"
#include "run/rewards_json.hpp"

namespace murmur {

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read (is this a murmur peer run directory?)");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(where + ": not JSON (" + e.what() + ")");
  }
}

// A number field of a summary or metrics line; null (a value that was not
// finite when written) reads as NaN.
double field(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto f = j.find(key);
  if (f == j.end()) throw std::runtime_error(where + ": no field '" + key + "'");
  if (f->is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!f->is_number()) throw std::runtime_error(where + ": field '" + key + "' is not a number");
  return f->get<double>();
}

// The same directory given twice would count its peer twice.
void refuse_repeats(const std::vector<std::string>& runs) {
  std::map<std::filesystem::path, std::string> seen;
  for (const auto& r : runs) {
    std::error_code ec;
    auto p = std::filesystem::weakly_canonical(r, ec);
    if (ec) p = std::filesystem::absolute(r).lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
    const auto [it, fresh] = seen.emplace(p, r);
    if (!fresh)
      throw UsageError("run directory " + r + " is given twice" + (it->second == r ? "" : " (also as " + it->second + ")"));
  }
}

// A peer summary's "rewards" object (run/rewards_json.hpp): what that peer's
// checks credited each other peer with. Standings are not read: merge
// recomputes them from the combined evidence.
std::map<uint32_t, peer_evidence> read_rewards(const nlohmann::json& rewards, const std::string& where) {
  if (!rewards.is_object()) throw std::runtime_error(where + ": field 'rewards' is not an object");
  std::map<uint32_t, peer_evidence> out;
  for (const auto& [key, entry] : rewards.items()) {
    const std::string at = where + " rewards." + key;
    uint32_t peer = 0;
    try {
      size_t used = 0;
      const unsigned long v = std::stoul(key, &used);
      if (used != key.size() || v > std::numeric_limits<uint32_t>::max()) throw std::invalid_argument(key);
      peer = static_cast<uint32_t>(v);
    } catch (const std::exception&) {
      throw std::runtime_error(where + ": rewards key '" + key + "' is not a peer index");
    }
    auto count = [&](const char* name) {
      const double x = field(entry, name, at);
      if (!(x >= 0) || x != std::floor(x)) throw std::runtime_error(at + ": field '" + name + "' is not a count");
      return static_cast<uint64_t>(x);
    };
    const double gflop = field(entry, "verified_gflop", at);
    if (!(gflop >= 0)) throw std::runtime_error(at + ": field 'verified_gflop' is not a number >= 0");
    out[peer] = peer_evidence{count("checks_passed"), count("checks_failed"), count("misses"), gflop * 1e9};
  }
  return out;
}

struct merge_args {
  std::vector<std::string> runs;
  std::string out = "runs/merged";
};

int run_merge(const merge_args& a) {
  const auto& runs = a.runs;
  const auto& out = a.out;
  if (runs.empty()) throw UsageError("merge needs the run directories of the peers");
  refuse_repeats(runs);
  std::filesystem::create_directories(out);
  double acc_sum = 0, acc_min = 1, bytes = 0, allreduce = 0, wall = 0, steps = 0, rejected = 0;
  std::ofstream curve(out + "/peers.tsv");
  curve << "# peer\twall_s\tbytes_sent\ttest_acc\n";
  // Each peer's view of the others, combined (docs/trust.md, "Reputation").
  std::map<uint32_t, std::map<uint32_t, peer_evidence>> testimony;
  std::set<uint32_t> peers_seen;
  for (const auto& r : runs) {
    const std::string sp = r + "/summary.json", mp = r + "/metrics.jsonl";
    const nlohmann::json s = parse_json(slurp(sp), sp);
    const double acc = field(s, "final_test_accuracy", sp);
    acc_sum += acc;
    acc_min = std::min(acc_min, acc);
    bytes += field(s, "bytes_sent_total", sp);
    allreduce += field(s, "dense_allreduce_bytes", sp);
    wall = std::max(wall, field(s, "wall_time_s", sp));
    steps += field(s, "steps", sp);
    rejected += field(s, "frames_rejected", sp);
    if (const auto rw = s.find("rewards"); rw != s.end()) {
      const double who = field(s, "peer", sp);
      if (!(who >= 0) || who != std::floor(who) || who > std::numeric_limits<uint32_t>::max())
        throw std::runtime_error(sp + ": field 'peer' is not a peer index");
      const auto observer = static_cast<uint32_t>(who);
      if (testimony.count(observer))
        throw std::runtime_error(sp + ": a second summary of peer " + std::to_string(observer) +
                                 " (its rewards would count twice)");
      auto about = read_rewards(*rw, sp);
      peers_seen.insert(observer);
      for (const auto& [p, e] : about) peers_seen.insert(p);
      testimony[observer] = std::move(about);
    }
    std::istringstream m(slurp(mp));
    size_t n = 0;
    for (std::string text; std::getline(m, text);) {
      ++n;
      if (text.empty()) continue;
      const std::string where = mp + " line " + std::to_string(n);
      const nlohmann::json line = parse_json(text, where);
      curve << field(line, "peer", where) << '\t' << field(line, "wall_s", where) << '\t' << field(line, "bytes_sent", where)
        << '\t' << field(line, "test_acc", where) << '\n';
    }
    curve << "\n\n";  // one gnuplot data block per peer
  }
  const double n = static_cast<double>(runs.size());
  std::ofstream(out + "/summary.json") << "{\n  \"peers\": " << runs.size() << ",\n  \"final_test_accuracy\": "
                                       << json_number(acc_sum / n) << ",\n  \"min_test_accuracy\": " << json_number(acc_min)
                                       << ",\n  \"bytes_sent_total\": " << static_cast<uint64_t>(bytes)
                                       << ",\n  \"dense_allreduce_bytes\": " << static_cast<uint64_t>(allreduce)
                                       << ",\n  \"steps_mean\": " << json_number(steps / n) << ",\n  \"frames_rejected\": "
                                       << static_cast<uint64_t>(rejected) << ",\n  \"wall_time_s\": " << json_number(wall)
                                       << (testimony.empty() ? std::string()
                                                             : ",\n  \"rewards\": " +
                                                                   rewards_json(combine_testimony(testimony),
                                                                                {peers_seen.begin(), peers_seen.end()}))
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

}  // namespace

verb_run add_merge_verb(CLI::App& murmur) {
  auto a = std::make_shared<merge_args>();
  CLI::App* v = murmur.add_subcommand(
      "merge", "one summary.json and accuracy.png from the run directories of a LAN run's peers");
  v->add_option("run_dirs", a->runs, "the peers' run directories (each once)")->type_name("RUN_DIR...");
  v->add_option("--out", a->out, "where to write the merged summary (default runs/merged)")->type_name("DIR");
  v->footer("Example:\n  murmur merge runs/peer-0 runs/peer-1 runs/peer-2 --out runs/lan");
  return [a] { return run_merge(*a); };
}

}  // namespace murmur
