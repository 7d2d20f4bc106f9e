// murmur sweep --jobs N (runs at once) and --part K/M + --merge (a sweep over
// machines) give the table one process running one run at a time gives:
// sweep.csv byte for byte but for the wall-time columns, sweep.md (its
// overhead cells are wall time too, all zero in this short sweep), and each
// run's metrics.jsonl and summary.json (but for its fields measured in wall
// time: wall_time_s, detect_overhead_pct, and verification's
// commit_overhead_pct, check_overhead_pct, segment_replay_s).
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "murmur_process.hpp"

using namespace murmur::test;
namespace fs = std::filesystem;

namespace {

// Four configurations, three simulations: the two clean rows share one (a
// clean run does not depend on attack.fraction), the attacked rows compare
// with it. A second or so each.
const std::string kSweep = "sweep " + source_path("configs/synthetic-smoke.toml") +
                           " --param attack.kind=none,sign_flip --param attack.fraction=0.25,0.5";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(s);
  while (std::getline(in, cell, sep)) out.push_back(cell);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

// sweep.csv with the cells measured in wall time (they differ run to run,
// one at a time as well) replaced by "*".
std::string without_wall_time(const std::string& csv) {
  const auto lines = split(csv, '\n');
  REQUIRE(!lines.empty());
  const auto header = split(lines[0], ',');
  std::ostringstream out;
  out << lines[0] << '\n';
  for (size_t l = 1; l < lines.size(); ++l) {
    if (lines[l].empty()) continue;
    auto cells = split(lines[l], ',');
    REQUIRE(cells.size() == header.size());
    for (size_t c = 0; c < cells.size(); ++c)
      if (header[c] == "wall_time_s" || header[c] == "detect_overhead_pct" || header[c] == "check_overhead_pct" ||
          header[c] == "commit_overhead_pct")
        cells[c].assign(1, '*');  // not = "*": GCC 12 warns (-Wrestrict) on that, falsely
    for (size_t c = 0; c < cells.size(); ++c) out << cells[c] << (c + 1 < cells.size() ? ',' : '\n');
  }
  return out.str();
}

// summary.json without the fields measured in wall time.
nlohmann::json summary_without_wall_time(const fs::path& p) {
  auto j = nlohmann::json::parse(file_text(p));
  j.erase("wall_time_s");
  j.erase("detect_overhead_pct");
  if (j.contains("verification"))
    for (const char* k : {"commit_overhead_pct", "check_overhead_pct", "segment_replay_s"}) j["verification"].erase(k);
  return j;
}

}  // namespace

TEST_CASE("murmur sweep --jobs 2 writes the sweep.csv, sweep.md and run files of --jobs 1", "[cli][sweep_jobs]") {
  const auto one = scratch_path("sweep-jobs-1"), two = scratch_path("sweep-jobs-2");
  auto r = murmur_run(kSweep + " --out " + one.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  r = murmur_run(kSweep + " --jobs 2 --out " + two.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("runs at once") && Catch::Contains("[4/4 runs done"));
  const std::string csv = file_text(one / "sweep.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);  // the header and four rows
  CHECK(without_wall_time(file_text(two / "sweep.csv")) == without_wall_time(csv));
  // The attacked rows against the shared clean run: accuracy_vs_clean filled in.
  CHECK_THAT(csv, Catch::Contains("\nsign_flip,0.25,") && Catch::Contains("\nnone,0.5,"));
  CHECK(file_text(two / "sweep.md") == file_text(one / "sweep.md"));
  size_t runs = 0;
  for (const auto& d : fs::directory_iterator(one)) {
    if (!d.is_directory()) continue;
    ++runs;
    const fs::path other = two / d.path().filename();
    INFO(d.path().filename());
    CHECK(file_text(other / "metrics.jsonl") == file_text(d.path() / "metrics.jsonl"));
    CHECK(!file_text(d.path() / "metrics.jsonl").empty());
    CHECK(summary_without_wall_time(other / "summary.json") == summary_without_wall_time(d.path() / "summary.json"));
  }
  CHECK(runs == 3);  // attack.kind=none,attack.fraction=0.5 shares the first clean run: no directory
  CHECK_FALSE(fs::exists(two / "attack.kind=none,attack.fraction=0.5"));
}

TEST_CASE("murmur sweep --part K/M on each machine, then --merge: the sweep.csv and sweep.md of one process",
          "[cli][sweep_jobs]") {
  const auto whole = scratch_path("sweep-parts-whole"), p0 = scratch_path("sweep-parts-0"),
             p1 = scratch_path("sweep-parts-1"), merged = scratch_path("sweep-parts-merged");
  REQUIRE(murmur_run(kSweep + " --out " + whole.string()).code == 0);
  auto r = murmur_run(kSweep + " --part 0/2 --out " + p0.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("part 0 of 2: 3 of the sweep's 4 runs"));
  r = murmur_run(kSweep + " --part 1/2 --jobs 2 --out " + p1.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("part 1 of 2: 1 of the sweep's 4 runs"));
  CHECK(fs::exists(p0 / "sweep-part-0-of-2.jsonl"));
  CHECK(fs::exists(p1 / "sweep-part-1-of-2.jsonl"));
  CHECK_FALSE(fs::exists(p0 / "sweep.csv"));  // a part is not the sweep
  r = murmur_run("sweep --merge " + p1.string() + " " + p0.string() + " --out " + merged.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(without_wall_time(file_text(merged / "sweep.csv")) == without_wall_time(file_text(whole / "sweep.csv")));
  CHECK(file_text(merged / "sweep.md") == file_text(whole / "sweep.md"));

  // One part alone, a part twice, parts of another sweep: refused, naming it.
  r = murmur_run("sweep --merge " + p0.string() + " --out " + merged.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("part 1 of 2 missing"));
  r = murmur_run("sweep --merge " + p0.string() + " " + p0.string() + " " + p1.string() + " --out " + merged.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("part 0 again"));
  const auto other = scratch_path("sweep-parts-other");
  REQUIRE(murmur_run(kSweep + " --set train.lr=0.02 --part 1/2 --out " + other.string()).code == 0);
  r = murmur_run("sweep --merge " + p0.string() + " " + other.string() + " --out " + merged.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("part of another sweep"));
}

TEST_CASE("a run that fails ends murmur sweep --jobs 2 as it ends --jobs 1", "[cli][sweep_jobs]") {
  // data.dataset = files with files that do not exist: the third configuration fails as it loads its data.
  const std::string none = "/nonexistent/murmur-sweep-test.npy";
  const std::string sweep = "sweep " + source_path("configs/synthetic-smoke.toml") +
                            " --param data.dataset=synthetic,files --param train.batch=32,16 --set data.train_features=" +
                            none + " --set data.train_labels=" + none + " --set data.test_features=" + none +
                            " --set data.test_labels=" + none;
  std::vector<std::string> csvs;
  for (const char* jobs : {"1", "2"}) {
    const auto out = scratch_path(std::string("sweep-fails-") + jobs);
    const auto r = murmur_stderr(sweep + " --jobs " + jobs + " --out " + out.string());
    INFO("--jobs " << jobs << ": " << r.output);
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Catch::Contains("murmur sweep: data error: " + none));
    csvs.push_back(without_wall_time(file_text(out / "sweep.csv")));
    CHECK_FALSE(fs::exists(out / "sweep.md"));
  }
  // The two runs before it, in order.
  CHECK(std::count(csvs[0].begin(), csvs[0].end(), '\n') == 3);
  CHECK(csvs[1] == csvs[0]);
}

TEST_CASE("murmur sweep refuses a bad --jobs, --part or --merge in one line", "[cli][sweep_jobs]") {
  const std::string smoke = "sweep " + source_path("configs/synthetic-smoke.toml") + " --param gossip.threshold=0,0.1";
  const auto out = scratch_path("sweep-bad-options");
  const std::vector<std::pair<std::string, std::string>> bad{
      {smoke + " --jobs -1", "--jobs needs N >= 0"},
      {smoke + " --jobs two", "--jobs"},
      {smoke + " --part 2/2", "--part needs K/M"},
      {smoke + " --part 1", "--part needs K/M"},
      {smoke + " --part 0/0", "--part needs K/M"},
      {smoke + " --part -1/2", "--part needs K/M"},
      {smoke + " --part a/b", "--part needs K/M"},
      {"sweep " + source_path("configs/synthetic-smoke.toml") + " --param gossip.threshold=0,0.1,0", "'0' twice"},
      {"sweep --merge " + out.string() + " --param gossip.threshold=0,1", "--merge takes the parts' files"},
      {"sweep --merge " + out.string() + " --jobs 2", "--merge takes the parts' files"},
  };
  for (const auto& [args, says] : bad) {
    const auto r = murmur_stderr(args + " --out " + out.string());
    INFO(args << "\n" << r.output);
    CHECK(r.code == 2);
    CHECK_THAT(r.output, Catch::Contains(says) && Catch::Contains("see murmur sweep --help"));
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
  CHECK_FALSE(fs::exists(out / "sweep.csv"));
  auto r = murmur_stderr("sweep --merge " + out.string() + " " + out.string() + "-b");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("needs --out DIR"));
  // Not a part file: an error naming it.
  fs::create_directories(out);
  std::ofstream(out / "sweep-part-0-of-1.jsonl") << "{\"murmur_sweep_part\": 2}\n";
  r = murmur_stderr("sweep --merge " + out.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("sweep-part-0-of-1.jsonl line 1: not a murmur sweep part"));
}
