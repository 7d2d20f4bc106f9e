// A pipeline on loopback: three `murmur peer` processes (stage 0, stage 1
// of a 2-stage pipeline, one spare) over ZeroMQ with CurveZMQ, run twice:
// without a fault, and with the process hosting stage 1 killed (SIGKILL)
// a third of the way through. The spare must take stage 1 over from its
// checkpoint, stage 0 must roll back to the same step, and the run must
// complete. The schedule and the data order are fixed, so the final
// parameters of both stages must equal the fault-free run's bit for bit.
// Every process runs under a deadline. Two more tests run a hybrid: 2
// replicas x 2 stages, stage s of each replica gossiping with the other's
// (with gossip and with a threshold nothing crosses: the replicas' final
// parameters must be much closer with it), and the same with a spare that
// takes over a SIGKILLed stage of replica 1 and gossips in its place.
#include <cmath>
#include <cstring>
#include <iostream>

#include "lan_harness.hpp"
#include "model_io/model_source.hpp"
#include "protocols/checkpoint_file.hpp"

using namespace murmur_e2e;

namespace {

const std::string config = std::string(MURMUR_SOURCE_DIR) + "/configs/pipeline-lan.toml";
constexpr int64_t checkpoint_every = 20, progress_every = 10;
// The config declares a node dead after 350 ms of silence; a loaded 2-core
// CI machine (ctest -j2 beside other multi-process tests) starves a process
// that long at times, and a spare then took over a live node. These tests
// wait 1.05 s (50 ms heartbeats, suspect and dead 500 ms each), so that only
// the node they kill is taken over.
const std::vector<std::string> patient = {"--set", "peer.suspect_ms=500", "--set", "peer.dead_ms=500"};

pid_t start_node(const lan& net, int i) {
  const std::string run = "node" + std::to_string(i);
  std::vector<std::string> a = {"peer", "--config", config, "--listen", net.endpoint(i), "--out",
                                (net.dir / run).string(), "--set", "peer.index=" + std::to_string(i), "--set",
                                "peer.keys=" + (net.dir / ("keys" + std::to_string(i))).string(), "--set",
                                "peer.authorized_peers=" + (net.dir / "authorized_peers").string(), "--set",
                                "checkpoint.every=" + std::to_string(checkpoint_every), "--set",
                                "train.eval_every=" + std::to_string(progress_every)};
  a.insert(a.end(), patient.begin(), patient.end());
  return spawn_murmur(a, net.dir / (run + ".log"));
}

std::string node_log(const lan& net, int i) { return slurp(net.dir / ("node" + std::to_string(i) + ".log")); }
std::string node_summary(const lan& net, int i) {
  return slurp(net.dir / ("node" + std::to_string(i)) / "summary.json");
}

// The last "progress: ... step S/T" line of a log: {S, T}, or {-1, -1}.
std::pair<int64_t, int64_t> last_progress(const std::string& log) {
  std::pair<int64_t, int64_t> r{-1, -1};
  for (size_t p = log.find("progress: "); p != std::string::npos; p = log.find("progress: ", p + 1)) {
    auto q = log.find(" step ", p);
    auto nl = log.find('\n', p);
    if (q == std::string::npos || nl == std::string::npos || q > nl) continue;  // a line still being written
    auto slash = log.find('/', q);
    r = {std::stoll(log.substr(q + 6, slash - q - 6)), std::stoll(log.substr(slash + 1))};
  }
  return r;
}

// unix_ms of the first log line containing `what`, or -1.
int64_t event_ms(const std::string& log, const std::string& what) {
  auto p = log.find(what);
  if (p == std::string::npos) return -1;
  auto u = log.find("unix_ms ", p);
  return u == std::string::npos ? -1 : std::stoll(log.substr(u + 8));
}

// The number in "(N steps ...)" on the first line containing `what`.
int64_t steps_in_parens(const std::string& log, const std::string& what) {
  auto p = log.find(what);
  if (p == std::string::npos) return -1;
  auto q = log.find(" steps ", p);
  auto b = log.rfind('(', q);
  return std::stoll(log.substr(b + 1, q - b - 1));
}

// Ends (terminate_and_reap) whatever a failed check left running.
struct reaper {
  std::vector<pid_t> pids;
  int wait(size_t i, std::chrono::steady_clock::time_point deadline) {
    const int rc = wait_until(pids[i], deadline);
    pids[i] = -1;
    return rc;
  }
  ~reaper() {
    for (pid_t p : pids)
      if (p > 0) terminate_and_reap(p);
  }
};

}  // namespace

TEST_CASE("pipeline on loopback: a spare takes over a SIGKILLed stage and the run ends as without the fault",
          "[slow][e2e][lan][pipeline]") {
  const auto t0 = std::chrono::steady_clock::now();
  // Run A: no fault.
  lan a("lan-pipe-a", 3);
  reaper pa;
  for (int i = 0; i < 3; ++i) pa.pids.push_back(start_node(a, i));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < 3; ++i) {
    INFO("run A node " << i << " log:\n" << node_log(a, i));
    REQUIRE(pa.wait(static_cast<size_t>(i), deadline) == 0);
  }
  const double run_a_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t total = last_progress(node_log(a, 1)).second;
  REQUIRE(total >= 100);
  for (int i = 0; i < 2; ++i) {
    const auto s = node_summary(a, i);
    INFO("run A node " << i << " summary:\n" << s);
    CHECK(json_number(s, "steps") == static_cast<double>(total));
    CHECK(s.find("\"took_over\": false") != std::string::npos);
    CHECK(json_number(s, "frames_rejected") == 0);
  }
  CHECK(node_summary(a, 2).find("\"outcome\": \"finished\"") != std::string::npos);
  CHECK(node_summary(a, 2).find("\"took_over\": false") != std::string::npos);
  CHECK(node_summary(a, 1).find("\"final_loss\": null") == std::string::npos);
  // Each stage node leaves its layers; together they are the whole model,
  // its stages' final parameters; one alone names the file missing.
  {
    const auto whole = murmur::load_whole_model({(a.dir / "node0").string(), (a.dir / "node1").string()});
    CHECK(whole.model.whole());
    std::vector<float> want;
    for (int s = 0; s < 2; ++s) {
      const auto ck = murmur::read_checkpoint_file(
          (a.dir / ("node" + std::to_string(s)) / "checkpoints" / ("stage-0-" + std::to_string(s) + ".ckpt")).string());
      want.insert(want.end(), ck.params.begin(), ck.params.end());
    }
    CHECK(whole.params == want);
    CHECK_THROWS_WITH(murmur::load_whole_model({(a.dir / "node0").string()}),
                      Catch::Contains("replica 0 lacks layers") && Catch::Contains("stage-0-1.safetensors"));
  }

  // Run B: kill the process hosting stage 1 a third of the way through,
  // half-way between two checkpoints, so that steps are lost and recomputed.
  lan b("lan-pipe-b", 3);
  reaper pb;
  for (int i = 0; i < 3; ++i) pb.pids.push_back(start_node(b, i));
  const int64_t kill_step =
      (total / 3 + checkpoint_every - 1) / checkpoint_every * checkpoint_every + checkpoint_every / 2;
  int64_t killed_step = -1;
  const auto poll_until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < poll_until) {
    const auto p = last_progress(node_log(b, 1));
    if (p.first >= kill_step) {
      killed_step = p.first;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const int64_t killed_at = unix_ms();
  kill(pb.pids[1], SIGKILL);
  waitpid(pb.pids[1], nullptr, 0);
  pb.pids[1] = -1;
  INFO("run B node 1 log:\n" << node_log(b, 1));
  REQUIRE(killed_step >= 0);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(25);
  for (int i : {0, 2}) {
    INFO("run B node " << i << " log:\n" << node_log(b, i));
    REQUIRE(pb.wait(static_cast<size_t>(i), deadline) == 0);
  }
  const std::string log0 = node_log(b, 0), log2 = node_log(b, 2), s0 = node_summary(b, 0), s2 = node_summary(b, 2);
  INFO("run B node 0 log:\n" << log0 << "\nsummary:\n" << s0 << "\nnode 2 log:\n" << log2 << "\nsummary:\n" << s2);
  // The killed process really was mid-run: its last checkpoint is short of the end.
  const auto killed_ckpt = murmur::read_checkpoint_file((b.dir / "node1" / "checkpoints" / "stage-0-1.ckpt").string());
  CHECK(static_cast<int64_t>(killed_ckpt.step) < total);
  CHECK(!fs::exists(b.dir / "node1" / "summary.json"));
  // The spare took stage 1 over and finished it; stage 0 rolled back and finished.
  CHECK(s2.find("\"took_over\": true") != std::string::npos);
  CHECK(json_number(s2, "stage") == 1);
  CHECK(json_number(s2, "steps") == static_cast<double>(total));
  CHECK(json_number(s0, "steps") == static_cast<double>(total));
  const int64_t takeover_ms = event_ms(log2, "takeover: "), resumed_ms = event_ms(log2, "resumed: ");
  const int64_t rollback_ms = event_ms(log0, "rollback: ");
  REQUIRE(takeover_ms > 0);
  REQUIRE(rollback_ms > 0);
  REQUIRE(resumed_ms > 0);
  CHECK(takeover_ms > killed_at);
  const int64_t recomputed = steps_in_parens(log0, "rollback: ");
  const auto from = log2.find("from its step-");
  REQUIRE(from != std::string::npos);
  const int64_t resume_step = std::stoll(log2.substr(from + 14));
  CHECK(resume_step % checkpoint_every == 0);
  CHECK(resume_step <= static_cast<int64_t>(killed_ckpt.step));  // the last one it wrote may not have left
  CHECK(recomputed > 0);
  CHECK(json_number(s0, "frames_rejected") == 0);
  // The same final state as without the fault, bit for bit.
  const auto final_of = [](const lan& net, int node, int stage) {
    return net.dir / ("node" + std::to_string(node)) / "checkpoints" / ("stage-0-" + std::to_string(stage) + ".ckpt");
  };
  same_final_state(final_of(a, 0, 0), final_of(b, 0, 0));
  same_final_state(final_of(a, 1, 1), final_of(b, 2, 1));  // stage 1: on node 2 since the take-over
  const auto loss_at = [](const std::string& s) {
    auto p = s.find("\"final_loss\": ");
    return s.substr(p + 14, s.find(',', p) - p - 14);
  };
  CHECK(loss_at(node_summary(a, 1)) == loss_at(s2));
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "pipeline kill -9 timeline: " << total << " steps; run A " << run_a_s << " s; stage 1 killed at step "
            << killed_step << " (its last checkpoint: step " << killed_ckpt.step << "); take-over after "
            << (takeover_ms - killed_at) << " ms, from the step-" << resume_step << " checkpoint; stage 0 rolled back "
            << (rollback_ms - killed_at) << " ms after the kill, " << recomputed << " steps recomputed; stage 1 "
            << "resumed " << (resumed_ms - takeover_ms) << " ms after the take-over; final loss "
            << loss_at(s2) << " in both runs; whole test " << total_s << " s" << std::endl;
  CHECK(total_s < 60);
}

namespace {

// Hybrid: node r * 2 + s hosts stage s of replica r; node 4 is the spare.
pid_t start_hybrid_node(const lan& net, int i, const std::vector<std::string>& extra, int spares = 0) {
  const std::string run = "node" + std::to_string(i);
  std::vector<std::string> a = {"peer", "--config", config, "--listen", net.endpoint(i), "--out",
                                (net.dir / run).string(), "--set", "peer.index=" + std::to_string(i),
                                "--set", "peer.keys=" + (net.dir / ("keys" + std::to_string(i))).string(), "--set",
                                "peer.authorized_peers=" + (net.dir / "authorized_peers").string(), "--set",
                                "pipeline.replicas=2", "--set", "pipeline.spares=" + std::to_string(spares), "--set",
                                "peer.count=" + std::to_string(4 + spares)};
  a.insert(a.end(), patient.begin(), patient.end());
  a.insert(a.end(), extra.begin(), extra.end());
  return spawn_murmur(a, net.dir / (run + ".log"));
}

// ||a - b|| / ||a|| over two checkpoints' parameters.
double relative_distance(const fs::path& a, const fs::path& b) {
  const auto ca = murmur::read_checkpoint_file(a.string()), cb = murmur::read_checkpoint_file(b.string());
  REQUIRE(ca.params.size() == cb.params.size());
  double d = 0, n = 0;
  for (size_t i = 0; i < ca.params.size(); ++i) {
    const double x = ca.params[i], y = cb.params[i];
    d += (x - y) * (x - y);
    n += x * x;
  }
  return n > 0 ? std::sqrt(d / n) : 0;
}

struct hybrid_run {
  double dist[2] = {0, 0};            // per stage, replica 0 vs replica 1
  double gossip_sent[4] = {0, 0, 0, 0}, gossip_received[4] = {0, 0, 0, 0};
};

hybrid_run run_hybrid(const std::string& name, const std::vector<std::string>& extra) {
  lan net(name, 4);
  reaper p;
  for (int i = 0; i < 4; ++i) p.pids.push_back(start_hybrid_node(net, i, extra));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  for (int i = 0; i < 4; ++i) {
    INFO(name << " node " << i << " log:\n" << node_log(net, i));
    REQUIRE(p.wait(static_cast<size_t>(i), deadline) == 0);
  }
  hybrid_run r;
  for (int i = 0; i < 4; ++i) {
    const auto s = node_summary(net, i);
    INFO(name << " node " << i << " summary:\n" << s);
    CHECK(s.find("\"outcome\": \"finished\"") != std::string::npos);
    CHECK(json_number(s, "replica") == i / 2);
    CHECK(json_number(s, "stage") == i % 2);
    CHECK(json_number(s, "steps") == json_number(s, "total_steps"));
    CHECK(s.find("\"gossip\": true") != std::string::npos);
    CHECK(json_number(s, "frames_rejected") == 0);
    r.gossip_sent[i] = json_number(s, "gossip_bytes_sent");
    r.gossip_received[i] = json_number(s, "gossip_bytes_received");
  }
  for (int s = 0; s < 2; ++s) {
    const auto ck = [&](int replica) {
      return net.dir / ("node" + std::to_string(replica * 2 + s)) / "checkpoints" /
             ("stage-" + std::to_string(replica) + "-" + std::to_string(s) + ".ckpt");
    };
    r.dist[s] = relative_distance(ck(0), ck(1));
  }
  return r;
}

}  // namespace

TEST_CASE("pipeline on loopback: 2 replicas x 2 stages, stage s of each replica gossips with the other's",
          "[slow][e2e][lan][pipeline]") {
  const auto t0 = std::chrono::steady_clock::now();
  // With gossip (threshold, the config's defaults), then with a threshold
  // nothing crosses: the replicas train on different shards and drift apart.
  const auto on = run_hybrid("lan-hybrid-gossip", {});
  const auto off = run_hybrid("lan-hybrid-silent", {"--set", "gossip.threshold=1e9"});
  for (int i = 0; i < 4; ++i) {
    INFO("node " << i);
    CHECK(on.gossip_sent[i] > 0);
    CHECK(on.gossip_received[i] > 0);
    CHECK(off.gossip_sent[i] < 0.05 * on.gossip_sent[i]);  // headers of rounds with nothing above tau
  }
  for (int s = 0; s < 2; ++s) {
    INFO("stage " << s << ": replica distance " << on.dist[s] << " with gossip, " << off.dist[s] << " without");
    CHECK(off.dist[s] > 0);
    // Gossip rounds on real sockets depend on timing: on a quiet machine
    // stage 0 ends at 0.04, with both cores busy at 0.04-0.09 (CI saw 0.085),
    // against 0.33 without gossip. 0.4x still shows the replicas being pulled
    // together, not drifting.
    CHECK(on.dist[s] < 0.4 * off.dist[s]);
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "pipeline hybrid 2x2: gossip bytes sent per node " << on.gossip_sent[0] << ", " << on.gossip_sent[1]
            << ", " << on.gossip_sent[2] << ", " << on.gossip_sent[3] << " (received " << on.gossip_received[0] << ", "
            << on.gossip_received[1] << ", " << on.gossip_received[2] << ", " << on.gossip_received[3]
            << "); replica distance ||x0 - x1|| / ||x0|| stage 0: " << on.dist[0] << " with gossip vs " << off.dist[0]
            << " without; stage 1: " << on.dist[1] << " vs " << off.dist[1] << "; whole test " << total_s << " s"
            << std::endl;
  CHECK(total_s < 90);
}

TEST_CASE("pipeline on loopback: 2 replicas x 2 stages and a spare, which takes over a SIGKILLed stage and gossips "
          "in its place",
          "[slow][e2e][lan][pipeline]") {
  lan net("lan-hybrid-kill", 5);
  reaper p;
  // 6 epochs (450 steps), not 2: replica 0 must still be training when the
  // spare takes over (about 1 s after the kill at step 60), to gossip with it.
  for (int i = 0; i < 5; ++i) p.pids.push_back(start_hybrid_node(net, i, {"--set", "train.epochs=6"}, 1));
  // Kill node 3 (replica 1, stage 1) at step 60 or later.
  int64_t killed_step = -1;
  const auto poll_until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < poll_until) {
    const auto pr = last_progress(node_log(net, 3));
    if (pr.first >= 60) {
      killed_step = pr.first;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(p.pids[3], SIGKILL);
  waitpid(p.pids[3], nullptr, 0);
  p.pids[3] = -1;
  INFO("node 3 log:\n" << node_log(net, 3));
  REQUIRE(killed_step >= 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  for (int i : {0, 1, 2, 4}) {
    INFO("node " << i << " log:\n" << node_log(net, i));
    REQUIRE(p.wait(static_cast<size_t>(i), deadline) == 0);
  }
  const auto s4 = node_summary(net, 4);
  INFO("spare summary:\n" << s4 << "\nlog:\n" << node_log(net, 4));
  CHECK(s4.find("\"took_over\": true") != std::string::npos);
  CHECK(json_number(s4, "replica") == 1);
  CHECK(json_number(s4, "stage") == 1);
  CHECK(json_number(s4, "steps") == json_number(s4, "total_steps"));
  CHECK(s4.find("\"gossip\": true") != std::string::npos);
  const double spare_sent = json_number(s4, "gossip_bytes_sent"), spare_received = json_number(s4, "gossip_bytes_received");
  CHECK(spare_sent > 0);
  CHECK(spare_received > 0);  // replica 0's stage 1 swapped node 3 for the spare
  for (int i : {0, 1, 2}) {
    const auto s = node_summary(net, i);
    INFO("node " << i << " summary:\n" << s);
    CHECK(s.find("\"outcome\": \"finished\"") != std::string::npos);
    CHECK(json_number(s, "steps") == json_number(s, "total_steps"));
  }
  const double d1 = relative_distance(net.dir / "node1" / "checkpoints" / "stage-0-1.ckpt",
                                      net.dir / "node4" / "checkpoints" / "stage-1-1.ckpt");
  const double d0 = relative_distance(net.dir / "node0" / "checkpoints" / "stage-0-0.ckpt",
                                      net.dir / "node2" / "checkpoints" / "stage-1-0.ckpt");
  std::cout << "pipeline hybrid 2x2 + spare: node 3 (replica 1 stage 1) killed at step " << killed_step
            << "; the spare sent " << spare_sent << " and received " << spare_received
            << " gossip bytes; replica distance stage 0: " << d0 << ", stage 1: " << d1 << std::endl;
  CHECK(d0 < 0.15);
  CHECK(d1 < 0.15);
}
