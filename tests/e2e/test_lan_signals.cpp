// A data-parallel `murmur peer` honours run.stop_after and checkpoint.every,
// winds down on SIGINT/SIGTERM (real signals to real processes: exit
// 130/143, summary marked interrupted, a checkpoint) and --resume continues
// from its checkpoint, alone or rejoining a running peer without taking a
// donor's state.
#include <catch2/catch.hpp>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "lan_harness.hpp"
#include "protocols/checkpoint_file.hpp"
#include "../json_lines.hpp"

using namespace murmur_e2e;
using nlohmann::json;

namespace {

// Synthetic data, a small MLP: 125 steps an epoch for one peer, 63 for each of two.
std::vector<std::string> small_run(std::vector<std::string> more) {
  std::vector<std::string> a;
  for (std::string s : {"data.dataset=synthetic", "data.train_samples=4000", "data.test_samples=300",
                        "model.arch=flatten,linear:64,relu,linear:10", "train.batch=32", "train.eval_every=50"})
    a.insert(a.end(), {"--set", s});
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

size_t lines_of(const fs::path& p) { return murmur::test::non_empty_lines(slurp(p)); }

std::vector<json> jsonl(const fs::path& p) { return murmur::test::json_lines(slurp(p)); }

// Waits (bounded) until `file` has at least `n` lines while pid runs; false
// if the process ended first or the deadline passed.
bool wait_for_lines(pid_t pid, const fs::path& file, size_t n, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (lines_of(file) >= n) return true;
    if (kill(pid, 0) != 0) return false;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

auto minutes(int m) { return std::chrono::steady_clock::now() + std::chrono::minutes(m); }

}  // namespace

TEST_CASE("murmur peer: run.stop_after, checkpoint.every, SIGINT and --resume", "[slow][e2e][lan][signals]") {
  lan l("signals-peer1", 1);
  const fs::path run = l.dir / "run0", ckpt = run / "checkpoints" / "peer-0.ckpt";
  const auto common = small_run({"--set", "train.epochs=60"});  // 7500 steps
  auto with = [&](std::vector<std::string> more) {
    auto a = common;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };

  // run.stop_after = 120 with checkpoint.every = 50: stops at step 120; its
  // last checkpoint is the step-100 one.
  REQUIRE(wait_until(l.start(0, 1, with({"--set", "run.stop_after=120", "--set", "checkpoint.every=50"})), minutes(3)) ==
          0);
  {
    INFO(l.log(0));
    const json s = json::parse(l.summary(0));
    CHECK(s.at("steps") == 120);
    CHECK(s.at("outcome") == "stopped");
    CHECK(s.at("interrupted") == false);
    CHECK(murmur::read_checkpoint_file(ckpt.string()).step == 100);
    CHECK(lines_of(run / "metrics.jsonl") == 3);  // steps 50, 100 and the final 120
  }

  // --resume from step 100; SIGINT a few evaluations later.
  const pid_t p = l.start(0, 1, with({"--resume", run.string()}));
  REQUIRE(wait_for_lines(p, run / "metrics.jsonl", 6, std::chrono::minutes(3)));
  kill(p, SIGINT);
  CHECK(wait_until(p, minutes(2)) == 130);
  uint64_t stopped_at = 0;
  {
    INFO(l.log(0));
    const json s = json::parse(l.summary(0));
    CHECK(s.at("interrupted") == true);
    CHECK(s.at("outcome") == "interrupted");
    CHECK(s.at("resumed_from_step") == 100);
    stopped_at = s.at("steps").get<uint64_t>();
    CHECK(stopped_at > 200);
    CHECK(stopped_at < 7500);
    // The checkpoint is from the moment of the signal.
    CHECK(murmur::read_checkpoint_file(ckpt.string()).step == stopped_at);
  }

  // --resume again: it finishes, from exactly there.
  REQUIRE(wait_until(l.start(0, 1, with({"--resume", run.string()})), minutes(5)) == 0);
  INFO(l.log(0));
  const json s = json::parse(l.summary(0));
  CHECK(s.at("outcome") == "finished");
  CHECK(s.at("steps") == 7500);
  CHECK(s.at("resumed_from_step") == stopped_at);
  // metrics.jsonl kept every earlier line and goes on: its wall_s never
  // falls back (training time continues), and it ends at the last step.
  const auto m = jsonl(run / "metrics.jsonl");
  REQUIRE(m.size() > 150);
  for (size_t k = 1; k < m.size(); ++k) CHECK(m[k].at("wall_s").get<double>() >= m[k - 1].at("wall_s").get<double>());
  CHECK(m.back().at("step") == 7500);
}

TEST_CASE("murmur peer: SIGTERM, then --resume rejoins a running peer with its own state", "[slow][e2e][lan][signals]") {
  lan l("signals-peer2", 2);
  // Peer 0 trains far longer than peer 1 needs; the test stops it.
  const pid_t p0 = l.start(0, 2, small_run({"--set", "train.epochs=1000"}));
  const auto one = small_run({"--set", "train.epochs=60", "--set", "checkpoint.every=100"});  // 3780 steps
  const fs::path run1 = l.dir / "run1";
  const pid_t p1 = l.start(1, 2, one);
  REQUIRE(wait_for_lines(p1, run1 / "metrics.jsonl", 4, std::chrono::minutes(3)));
  kill(p1, SIGTERM);
  CHECK(wait_until(p1, minutes(2)) == 143);
  const json stopped = json::parse(l.summary(1));
  {
    INFO(l.log(1));
    CHECK(stopped.at("interrupted") == true);
    CHECK(murmur::read_checkpoint_file((run1 / "checkpoints" / "peer-1.ckpt").string()).step ==
          stopped.at("steps").get<uint64_t>());
  }

  auto again = one;
  again.insert(again.end(), {"--resume", run1.string()});
  REQUIRE(wait_until(l.start(1, 2, again), minutes(5)) == 0);
  {
    INFO(l.log(1));
    const json s = json::parse(l.summary(1));
    CHECK(s.at("outcome") == "finished");
    CHECK(s.at("steps") == 3780);
    CHECK(s.at("resumed_from_step") == stopped.at("steps"));
    // It kept its own model: no state transfer from peer 0.
    CHECK_THAT(l.log(1), Catch::Contains("no state transfer") && !Catch::Contains("state transfer: "));
    // Its counters went on from the interrupted run's.
    CHECK(s.at("bytes_sent_total").get<uint64_t>() >= stopped.at("bytes_sent_total").get<uint64_t>());
    CHECK(s.at("bytes_received_total").get<uint64_t>() >= stopped.at("bytes_received_total").get<uint64_t>());
  }

  // Ctrl-C on peer 0, still training: 130, a summary marked interrupted.
  kill(p0, SIGINT);
  CHECK(wait_until(p0, minutes(2)) == 130);
  INFO(l.log(0));
  const json s0 = json::parse(l.summary(0));
  CHECK(s0.at("interrupted") == true);
  CHECK(fs::exists(l.dir / "run0" / "checkpoints" / "peer-0.ckpt"));
}

TEST_CASE("murmur peer: a signal during the start-up wait exits 128 + the signal, having trained nothing",
          "[slow][e2e][lan][signals][startup]") {
  // Until `text` is in peer i's log while pid runs (bounded).
  auto wait_for_text = [](const lan& net, int i, pid_t pid, const std::string& text) {
    const auto deadline = minutes(2);
    while (std::chrono::steady_clock::now() < deadline) {
      if (net.log(i).find(text) != std::string::npos) return true;
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  lan net("lan-signal-start-up", 3);
  // Peer 0 of 3 waits for peer.min_peers (all three); SIGTERM while it does.
  pid_t p = net.start(0, 3, small_run({"--set", "peer.start_timeout_ms=120000"}));
  {
    INFO("peer 0 log:\n" << net.log(0));
    REQUIRE(wait_for_text(net, 0, p, "waiting for peers: 1 of 3 live"));
  }
  kill(p, SIGTERM);
  const int rc0 = wait_until(p, minutes(2));
  INFO("peer 0 log:\n" << net.log(0));
  CHECK(rc0 == 143);
  CHECK(!fs::exists(net.dir / "run0" / "summary.json"));
  // Peer 1 waits for its --join contact (peer 0, not running) to listen; SIGINT while it does.
  p = net.start(1, 3, small_run({"--set", "peer.start_timeout_ms=120000"}));
  {
    INFO("peer 1 log:\n" << net.log(1));
    REQUIRE(wait_for_text(net, 1, p, "waiting for a --join contact to listen: " + net.endpoint(0)));
  }
  kill(p, SIGINT);
  const int rc1 = wait_until(p, minutes(2));
  INFO("peer 1 log:\n" << net.log(1));
  CHECK(rc1 == 130);
  CHECK(!fs::exists(net.dir / "run1" / "summary.json"));
}

TEST_CASE("murmur peer as a pipeline node: SIGINT and SIGTERM write a summary marked interrupted and a checkpoint "
          "of the last step done",
          "[slow][e2e][lan][signals][pipeline]") {
  // Two stages, no spare; checkpoint.every beyond the run, so the only
  // checkpoint a node writes is the one at its stop.
  lan net("signals-pipeline", 2);
  auto start_node = [&](int i) {
    const std::string run = "node" + std::to_string(i);
    return spawn_murmur({"peer", "--config", std::string(MURMUR_SOURCE_DIR) + "/configs/pipeline-lan.toml",
                         "--listen", net.endpoint(i), "--out", (net.dir / run).string(), "--set",
                         "peer.index=" + std::to_string(i), "--set", "peer.count=2", "--set", "pipeline.spares=0",
                         "--set", "peer.keys=" + (net.dir / ("keys" + std::to_string(i))).string(), "--set",
                         "peer.authorized_peers=" + (net.dir / "authorized_peers").string(), "--set",
                         "peer.suspect_ms=500", "--set", "peer.dead_ms=500", "--set", "train.epochs=100", "--set",
                         "checkpoint.every=1000000", "--set", "train.eval_every=10"},
                        net.dir / (run + ".log"));
  };
  auto log = [&](int i) { return slurp(net.dir / ("node" + std::to_string(i) + ".log")); };
  const pid_t p0 = start_node(0), p1 = start_node(1);
  // Until node 1 has done 50 steps (bounded).
  bool running = false;
  for (const auto deadline = minutes(3); !running && std::chrono::steady_clock::now() < deadline;) {
    running = log(1).find("step 50/15000") != std::string::npos;
    int status = 0;
    if (!running && (waitpid(p1, &status, WNOHANG) == p1 || waitpid(p0, &status, WNOHANG) == p0)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!running) {
    kill(p0, SIGKILL), kill(p1, SIGKILL);
    waitpid(p0, nullptr, 0), waitpid(p1, nullptr, 0);
  }
  INFO("node 0 log:\n" << log(0) << "\nnode 1 log:\n" << log(1));
  REQUIRE(running);
  kill(p1, SIGINT);
  const int rc1 = wait_until(p1, minutes(2));
  kill(p0, SIGTERM);
  const int rc0 = wait_until(p0, minutes(2));
  INFO("node 0 log:\n" << log(0) << "\nnode 1 log:\n" << log(1));
  CHECK(rc1 == 130);
  CHECK(rc0 == 143);
  for (int i = 0; i < 2; ++i) {
    const fs::path run = net.dir / ("node" + std::to_string(i));
    const json s = json::parse(slurp(run / "summary.json"));
    INFO("node " << i << " summary:\n" << s.dump(2));
    CHECK(s.at("interrupted") == true);
    CHECK(s.at("outcome") == "interrupted");
    const auto steps = s.at("steps").get<uint64_t>();
    CHECK(steps >= 50);
    CHECK(steps < 15000);
    // The checkpoint is the stage at its last step done, not a periodic one.
    const fs::path ckpt = run / "checkpoints" / ("stage-0-" + std::to_string(i) + ".ckpt");
    CHECK(s.at("final_checkpoint") == ckpt.string());
    CHECK(murmur::read_checkpoint_file(ckpt.string()).step == steps);
    CHECK_NOTHROW(jsonl(run / "events.jsonl"));
    // Its log names it by its authorized_peers label.
    CHECK_THAT(log(i), Catch::Contains("node " + std::to_string(i) + " (host-" + static_cast<char>('a' + i) +
                                       "): interrupted: interrupted by a signal, after step " + std::to_string(steps)));
  }
  CHECK_THAT(log(1), Catch::Contains("node 1 (host-b): progress: replica 0 stage 1 step 50/15000"));
}
