// Ctrl-C and SIGTERM on `murmur sim`, by real signals to a real process:
// it exits 130/143 with every evaluation made so far in metrics.jsonl (a
// prefix of an uninterrupted run's), summary.json marked interrupted and a
// checkpoint; `murmur sim --resume` then completes the curves (nothing
// missing, nothing repeated) with the byte counters continuing.
#include <catch2/catch.hpp>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "../e2e/lan_harness.hpp"
#include "../json_lines.hpp"
#include "murmur_process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace murmur::test;

namespace {

// Long enough that a signal sent after the first evaluations finds it mid-run
// even when the machine is slow (the run only gets slower then, never
// faster than the test): 100 evaluations a peer.
std::vector<json> jsonl(const fs::path& p) { return json_lines(file_text(p)); }
size_t line_count(const fs::path& p) { return non_empty_lines(file_text(p)); }

std::vector<std::string> sim_args(int peers, const fs::path& out) {
  std::vector<std::string> a{"sim", source_path("configs/synthetic-smoke.toml"), "--quiet", "--out", out.string()};
  for (std::string s : {"data.train_samples=4000", "data.test_samples=300", "model.arch=flatten,linear:128,relu,linear:10",
                        "train.batch=32", "train.eval_every=50", "train.lr=0.003", "sim.step_ms=2", "sim.loss=0"})
    a.insert(a.end(), {"--set", s});
  a.insert(a.end(), {"--set", "sim.peers=" + std::to_string(peers)});
  // One peer: 125 steps an epoch; two: 63 each. A few seconds on a quiet machine.
  a.insert(a.end(), {"--set", peers == 1 ? "train.epochs=60" : "train.epochs=100"});
  return a;
}



int run_to_end(const std::vector<std::string>& args, const fs::path& log) {
  return murmur_e2e::wait_until(murmur_e2e::spawn_murmur(args, log),
                                std::chrono::steady_clock::now() + std::chrono::minutes(5));
}

// Starts the run, waits until metrics.jsonl has `lines` lines, sends `sig`,
// and returns the exit code (-2: killed by a signal, -1: past the deadline).
int interrupt_after(const std::vector<std::string>& args, const fs::path& out, size_t lines, int sig,
                    const fs::path& log) {
  const pid_t pid = murmur_e2e::spawn_murmur(args, log);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (std::chrono::steady_clock::now() < deadline && line_count(out / "metrics.jsonl") < lines) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      FAIL_CHECK("murmur sim ended before the signal was sent:\n" << file_text(log));
      return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, sig);
  return murmur_e2e::wait_until(pid, std::chrono::steady_clock::now() + std::chrono::minutes(2));
}

}  // namespace

TEST_CASE("Ctrl-C on a one-peer murmur sim, then --resume: the same files as an uninterrupted run", "[cli][signals]") {
  const auto full = scratch_path("signals-sim1-full"), part = scratch_path("signals-sim1-part");
  REQUIRE(run_to_end(sim_args(1, full), full.string() + ".log") == 0);
  const size_t full_lines = line_count(full / "metrics.jsonl");
  REQUIRE(full_lines > 100);  // 7500 steps, an evaluation every 50 of the mean peer speed

  const int rc = interrupt_after(sim_args(1, part), part, 4, SIGINT, part.string() + ".log");
  INFO(file_text(part.string() + ".log"));
  CHECK(rc == 130);
  // Every evaluation made is on disk: a prefix of the uninterrupted run's lines.
  const std::string measured = file_text(part / "metrics.jsonl"), whole = file_text(full / "metrics.jsonl");
  const size_t n = line_count(part / "metrics.jsonl");
  CHECK(n >= 4);
  CHECK(n < full_lines);
  CHECK(whole.rfind(measured, 0) == 0);
  const json s = json::parse(file_text(part / "summary.json"));
  CHECK(s.at("interrupted") == true);
  CHECK(s.at("steps").get<uint64_t>() < 7500);
  CHECK(fs::exists(part / "checkpoints" / "peer-0.ckpt"));
  CHECK(json::parse(file_text(full / "summary.json")).at("interrupted") == false);

  // One peer: nothing but the trainer's state and the clock matter, and the
  // checkpoint is from the moment of the signal, so the resumed run's files
  // are the uninterrupted run's, byte for byte.
  REQUIRE(run_to_end({"sim", "--resume", part.string(), "--quiet"}, part.string() + "-resume.log") == 0);
  CHECK(file_text(part / "metrics.jsonl") == whole);
  CHECK(file_text(part / "curve.tsv") == file_text(full / "curve.tsv"));
  const json a = json::parse(file_text(full / "summary.json")), b = json::parse(file_text(part / "summary.json"));
  CHECK(b.at("interrupted") == false);
  CHECK(b.at("final_test_accuracy") == a.at("final_test_accuracy"));
  CHECK(b.at("final_test_loss") == a.at("final_test_loss"));
  CHECK(b.at("steps") == a.at("steps"));
}

TEST_CASE("SIGTERM on a gossiping murmur sim, then --resume: curves complete, byte counters continue",
          "[cli][signals]") {
  const auto full = scratch_path("signals-sim2-full"), part = scratch_path("signals-sim2-part");
  REQUIRE(run_to_end(sim_args(2, full), full.string() + ".log") == 0);
  const auto whole = jsonl(full / "metrics.jsonl");
  REQUIRE(whole.size() > 200);  // 2 peers x 6300 steps, an evaluation every 50 of the mean peer speed

  const int rc = interrupt_after(sim_args(2, part), part, 6, SIGTERM, part.string() + ".log");
  INFO(file_text(part.string() + ".log"));
  CHECK(rc == 143);
  const std::string measured = file_text(part / "metrics.jsonl");
  CHECK(file_text(full / "metrics.jsonl").rfind(measured, 0) == 0);
  const size_t n = jsonl(part / "metrics.jsonl").size();
  const json stopped = json::parse(file_text(part / "summary.json"));
  CHECK(stopped.at("interrupted") == true);
  for (int i = 0; i < 2; ++i) CHECK(fs::exists(part / "checkpoints" / ("peer-" + std::to_string(i) + ".ckpt")));

  REQUIRE(run_to_end({"sim", "--resume", part.string(), "--quiet"}, part.string() + "-resume.log") == 0);
  const auto resumed = jsonl(part / "metrics.jsonl");
  // The curve is complete: the same evaluations (time, peer, step) as the
  // uninterrupted run's, none missing, none twice. (The final evaluation is
  // at the time of the run's last event, a frame's arrival, which differs.)
  REQUIRE(resumed.size() == whole.size());
  for (size_t k = 0; k < whole.size(); ++k) {
    INFO("line " << k + 1);
    if (k + 2 < whole.size()) CHECK(resumed[k].at("t") == whole[k].at("t"));
    CHECK(resumed[k].at("peer") == whole[k].at("peer"));
    CHECK(resumed[k].at("step") == whole[k].at("step"));
  }
  // Byte and message counters go on from where they stopped: each peer's
  // never fall back across the resume (they would restart at 0 otherwise).
  for (int peer = 0; peer < 2; ++peer) {
    uint64_t bytes = 0, msgs = 0;
    for (size_t k = 0; k < resumed.size(); ++k) {
      if (resumed[k].at("peer") != peer) continue;
      INFO("peer " << peer << ", line " << k + 1 << " (the resume starts at line " << n + 1 << ")");
      CHECK(resumed[k].at("bytes_sent").get<uint64_t>() >= bytes);
      CHECK(resumed[k].at("msgs_sent").get<uint64_t>() >= msgs);
      bytes = resumed[k].at("bytes_sent").get<uint64_t>();
      msgs = resumed[k].at("msgs_sent").get<uint64_t>();
    }
  }
  const json a = json::parse(file_text(full / "summary.json")), b = json::parse(file_text(part / "summary.json"));
  CHECK(b.at("bytes_sent_total").get<uint64_t>() > stopped.at("bytes_sent_total").get<uint64_t>());
  CHECK(b.at("msgs_sent_total").get<uint64_t>() > stopped.at("msgs_sent_total").get<uint64_t>());
  CHECK(b.at("steps") == a.at("steps"));
  // Close, not equal: the gossip state (neighbours' estimates, frames in
  // flight) is not in a checkpoint; each peer resyncs with a complete frame
  // after the resume, so the trajectories differ in the last bits.
  INFO("uninterrupted " << a.at("final_test_accuracy") << ", resumed " << b.at("final_test_accuracy"));
  CHECK(std::fabs(b.at("final_test_accuracy").get<double>() - a.at("final_test_accuracy").get<double>()) <= 0.03);
}

TEST_CASE("Ctrl-C on murmur sweep: the run in progress ends as murmur sim's does, the table of the runs so far is "
          "written marked interrupted",
          "[cli][signals]") {
  const auto out = scratch_path("signals-sweep");
  // Three one-peer runs of the length above (train.lr swept; seconds each).
  auto args = sim_args(1, out);
  args[0] = "sweep";
  args.erase(args.begin() + 2, args.begin() + 5);  // no --quiet, and --out goes last
  args.insert(args.end(), {"--param", "train.lr=0.003,0.002,0.001", "--out", out.string()});
  const fs::path log = out.string() + ".log";
  const pid_t pid = murmur_e2e::spawn_murmur(args, log);
  // Until the second run has made a few evaluations (bounded).
  const fs::path second = out / "train.lr=0.002";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  bool ended = false;
  while (std::chrono::steady_clock::now() < deadline && line_count(second / "metrics.jsonl") < 4) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      ended = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  INFO(file_text(log));
  REQUIRE_FALSE(ended);
  kill(pid, SIGINT);
  CHECK(murmur_e2e::wait_until(pid, std::chrono::steady_clock::now() + std::chrono::minutes(2)) == 130);
  // The run in progress: written as murmur sim writes an interrupted run.
  const json s = json::parse(file_text(second / "summary.json"));
  CHECK(s.at("interrupted") == true);
  CHECK(s.at("steps").get<uint64_t>() < 7500);
  CHECK(line_count(second / "metrics.jsonl") >= 4);
  CHECK(fs::exists(second / "checkpoints" / "peer-0.ckpt"));
  CHECK(json::parse(file_text(out / "train.lr=0.003" / "summary.json")).at("interrupted") == false);
  CHECK_FALSE(fs::exists(out / "train.lr=0.001"));  // never started
  // The table: the first run complete, the second marked interrupted.
  std::istringstream csv(file_text(out / "sweep.csv"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[0], Catch::EndsWith(",interrupted"));
  CHECK_THAT(lines[1], Catch::StartsWith("0.003,") && Catch::EndsWith(",0"));
  CHECK_THAT(lines[2], Catch::StartsWith("0.002,") && Catch::EndsWith(",1"));
  const std::string md = file_text(out / "sweep.md");
  CHECK_THAT(md, Catch::Contains("| 0.002 (interrupted) |") && Catch::Contains("| 0.003 |") &&
                     !Catch::Contains("| 0.001"));
  CHECK_THAT(md, Catch::Contains("interrupted by a signal after 1 of 3 runs"));
  CHECK_THAT(file_text(log), Catch::Contains("interrupted by a signal after 1 of 3 runs"));
}
