// murmur sweep: one simulation per value of the swept keys, one table of them.
// What runs, in which order and on how many threads is run/sweep_plan and
// run/sweep_runner; this file parses the command line and prints.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "cli/commands.hpp"
#include "cli/plot.hpp"
#include "cli/sweep_part_file.hpp"
#include "cli/sweep_table.hpp"
#include "run/sweep_plan.hpp"
#include "run/sweep_runner.hpp"
#include "sim/simulation.hpp"

namespace murmur {

namespace {

struct sweep_args {
  std::string config, out, part;
  std::vector<std::string> params, overrides, merge;
  int jobs = 1;
  CLI::Option* jobs_given = nullptr;
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
  a->jobs_given = v->add_option("--jobs", a->jobs,
                                "runs at once, each on a thread of its own (default 1; 0: one per core; at most the "
                                "cores this process may use); same sweep.csv as one at a time")
                      ->type_name("N");
  v->add_option("--part", a->part,
                "run part K of M of the sweep (one process per machine), written to DIR/sweep-part-K-of-M.jsonl "
                "for --merge")
      ->type_name("K/M");
  v->add_option("--merge", a->merge,
                "combine the parts' files (or directories holding them) into the sweep.csv, sweep.md and sweep.png "
                "of one whole sweep, in --out")
      ->type_name("PART...");
  v->footer("Ctrl-C (SIGINT) or SIGTERM: the runs in progress stop as `murmur sim` does (their files written, marked\n"
            "interrupted); the table of the runs so far is written, marked interrupted; exits 130/143.\n"
            "Over several machines: `murmur sweep ... --part K/M` on machine K (0 <= K < M), then, with the parts'\n"
            "directories copied to one machine, `murmur sweep --merge DIR... --out DIR`.\n"
            "Example:\n  murmur sweep configs/fmnist-gossip.toml --param gossip.threshold=0,0.001,0.01 --set train.epochs=2 --jobs 0");
  return [a, &stop] { return run_sweep(*a, stop); };
}

namespace {

// One row of the table printed as runs finish.
void print_row(const std::string& shown, const sim_summary& s) {
  std::printf("%-14s %10s %10s %14llu %11.1fx %10.2f %10s %6s\n", shown.c_str(),
              cell(100 * s.final_test_accuracy, "%.2f%%").c_str(), cell(100 * s.min_test_accuracy, "%.2f%%").c_str(),
              static_cast<unsigned long long>(s.bytes_sent_total),
              s.bytes_sent_total ? s.dense_allreduce_bytes / static_cast<double>(s.bytes_sent_total) : 0.0,
              s.virtual_time_s, cell(100 * s.honest_test_accuracy, "%.2f%%").c_str(), cell(s.detection.f1, "%.3f").c_str());
}

// sweep.md (a note appended when given) and sweep.png, from the rows in
// table order; says what it wrote.
void write_md_and_plot(const std::string& out, const std::vector<std::string>& keys, const std::vector<sweep_row>& table,
                       const std::string& note_md) {
  bool pipelines = false;
  for (const auto& r : table) pipelines = pipelines || r.summary.pipeline.enabled;
  std::string md = pipelines ? pipeline_markdown(keys, table) : sweep_markdown(keys, table);
  std::ofstream(out + "/sweep.md") << md << note_md;
  std::string note;
  const std::string label = keys.size() == 1 ? keys[0] : "run";
  bool plotted = plot_sweep(out, label, &note, keys.size());
  std::printf("wrote %s/sweep.csv, sweep.md%s\n", out.c_str(), plotted ? " and sweep.png" : "");
  if (!plotted) std::printf("note: %s\n", note.c_str());
}

// murmur sweep --merge: the parts' rows, one sweep's files.
int merge_parts(const sweep_args& a) {
  if (!a.config.empty() || !a.params.empty() || !a.overrides.empty() || !a.part.empty() || a.jobs_given->count())
    throw UsageError("--merge takes the parts' files or directories alone (no config, --param, --set, --part or --jobs)");
  std::string out = a.out;
  if (out.empty()) {
    if (a.merge.size() != 1 || !std::filesystem::is_directory(a.merge[0]))
      throw UsageError("--merge of several directories or files needs --out DIR");
    out = a.merge[0];
  }
  const merged_sweep m = merge_sweep_parts(a.merge);
  std::filesystem::create_directories(out);
  {
    std::ofstream csv(out + "/sweep.csv");
    csv << sweep_csv_header(m.header.keys);
    for (size_t i : m.header.order) csv << sweep_csv_line(m.rows[i]);
    if (!csv.flush()) throw std::runtime_error(out + "/sweep.csv: cannot write");
  }
  std::printf("merged %zu parts, %zu runs\n", m.header.parts, m.rows.size());
  write_md_and_plot(out, m.header.keys, m.rows, "");
  return 0;
}

// Several --param give their Cartesian product, the first key varying
// slowest. Clean runs (attack.kind = none) go first so that every attacked
// run's row can show its accuracy against the clean one. A stop signal ends
// the runs in progress (run_simulation writes them, marked interrupted) and
// the sweep: the table holds the runs done so far, those last.
int run_sweep(sweep_args a, const std::atomic<int>& stop) {
  if (!a.merge.empty()) return merge_parts(a);
  if (a.config.empty()) throw UsageError("missing <config.toml>");
  if (a.jobs < 0) throw UsageError("--jobs needs N >= 0 (0: one per core; got " + std::to_string(a.jobs) + ")");
  std::vector<swept_key> params;
  sweep_part part;
  try {
    for (const auto& p : a.params) params.push_back(parse_swept_key(p));
    if (params.empty()) throw std::invalid_argument("--param needs KEY=V1,V2,... (got '')");
    if (!a.part.empty()) part = parse_sweep_part(a.part);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  std::string& out = a.out;
  if (out.empty()) out = "runs/" + std::filesystem::path(a.config).stem().string() + "-sweep";
  // Every run is checked before the first (long) one starts.
  const sweep_plan plan = [&] {
    try {
      return make_sweep_plan(a.config, params, a.overrides, part);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
  }();
  for (const auto& w : plan.warnings) std::fprintf(stderr, "murmur sweep: warning: %s\n", w.c_str());
  const std::vector<std::string>& keys = plan.keys;
  const size_t n = plan.runs.size();
  size_t rows_here = 0, to_simulate = 0;
  for (size_t i = 0; i < n; ++i) {
    rows_here += plan.mine[i] ? 1 : 0;
    to_simulate += plan.mine[i] && plan.same_as[i] == i ? 1 : 0;
  }
  const size_t cores = cores_given();
  const size_t jobs = sweep_jobs(static_cast<size_t>(a.jobs), cores, to_simulate);
  if (part.m > 1)
    std::printf("part %zu of %zu: %zu of the sweep's %zu runs\n", part.k, part.m, rows_here, n);
  if (a.jobs != 1) {
    const std::string capped =
        static_cast<size_t>(a.jobs) > cores ? "; --jobs " + std::to_string(a.jobs) + " would share cores" : "";
    std::printf("%zu runs at once (%zu cores given%s)\n", jobs, cores, capped.c_str());
  }

  std::filesystem::create_directories(out);
  const std::string table_file = part.m > 1 ? out + "/" + sweep_part_file_name(part.k, part.m) : out + "/sweep.csv";
  std::ofstream table_out(table_file);
  if (part.m > 1) {
    std::string command = std::filesystem::path(a.config).filename().string();  // machines may keep it elsewhere
    for (const auto& p : a.params) command += " --param " + p;
    for (const auto& s : a.overrides) command += " --set " + s;
    table_out << sweep_part_header_line({command, keys, n, plan.order, part.k, part.m});
  } else {
    table_out << sweep_csv_header(keys);
  }
  table_out.flush();
  const std::string label = keys.size() == 1 ? keys[0] : "run";
  std::printf("%-14s %10s %10s %14s %12s %10s %10s %6s\n", label.c_str(), "accuracy", "worst", "bytes sent",
              "vs all-red.", "virtual s", "honest", "F1");
  std::vector<sweep_row> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i].values = plan.values[i];
  std::vector<bool> done(n, false);
  // Progress as runs finish: the ETA is the time per run simulated so far
  // (wall time over runs done, so N at once count) times those left; a
  // shared clean run costs nothing.
  const auto t0 = std::chrono::steady_clock::now();
  size_t finished = 0, simulated = 0;
  sweep_job_hooks hooks;
  hooks.run = [&](size_t i, const std::atomic<int>& run_stop) {
    rows[i].summary =
        run_simulation(plan.runs[i], out + "/" + plan.names[i], {}, "", &run_stop, cores_per_job(cores, jobs));
    return rows[i].summary.interrupted;
  };
  hooks.finished = [&](size_t i) {
    const bool shared = plan.same_as[i] != i;
    if (shared) rows[i].summary = rows[plan.same_as[i]].summary;
    done[i] = true;
    const bool partway = rows[i].summary.interrupted;  // a stop signal ended it: not done
    finished += partway ? 0 : 1;
    simulated += shared || partway ? 0 : 1;
    print_row(keys.size() == 1 ? plan.values[i][0] : plan.names[i], rows[i].summary);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string eta = simulated > 0 && finished < rows_here
                                ? ", ETA " + seconds(elapsed / static_cast<double>(simulated) *
                                                     static_cast<double>(to_simulate - simulated))
                                : "";
    std::printf("  [%zu/%zu runs done, %s elapsed%s]\n", finished, rows_here, seconds(elapsed).c_str(), eta.c_str());
    std::fflush(stdout);
  };
  hooks.in_order = [&](size_t i) {
    if (auto c = clean_run_of(keys, plan.values, i); c && done[*c])
      rows[i].clean_accuracy = rows[*c].summary.honest_test_accuracy;
    table_out << (part.m > 1 ? sweep_part_row_line(i, rows[i]) : sweep_csv_line(rows[i]));
    table_out.flush();
  };
  const sweep_outcome result = run_sweep_jobs(plan, jobs, stop, hooks);

  std::string partial;  // the runs the signal stopped partway
  for (size_t i : result.partway) partial += (partial.empty() ? "" : ", ") + plan.names[i];
  const std::string stopped =
      "interrupted by a signal after " + std::to_string(finished) + " of " + std::to_string(rows_here) + " runs" +
      (partial.empty() ? ""
       : result.partway.size() == 1
           ? "; " + partial + " stopped partway (its row is the partial run's, marked interrupted)"
           : "; " + partial + " stopped partway (their rows are the partial runs', marked interrupted)");
  if (part.m > 1) {
    std::printf("wrote %s (part %zu of %zu); murmur sweep --merge combines the parts\n", table_file.c_str(), part.k,
                part.m);
  } else {
    // The table: the runs done and those stopped partway, in table order.
    std::vector<sweep_row> table;
    for (size_t i = 0; i < n; ++i)
      if (done[i]) table.push_back(rows[i]);
    write_md_and_plot(out, keys, table, result.interrupted ? "\n**Sweep " + stopped + ".**\n" : "");
  }
  if (result.interrupted) {
    std::printf("sweep %s\n", stopped.c_str());
    return 128 + stop.load();
  }
  return 0;
}

}  // namespace

}  // namespace murmur
