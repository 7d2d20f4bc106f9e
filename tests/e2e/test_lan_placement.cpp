// Pipeline placement on loopback (run/pipeline_plan.hpp): three `murmur
// peer` processes of configs/pipeline-lan.toml (2 stages and a spare) where
// peer.index 0 is declared 8x slower (sim.slow_peers = 0). With
// pipeline.placement = index stage 0 (the heavy layer) runs on peer.index 0;
// with auto every process computes the same layout, which moves stage 0 off
// it, logs it at start and puts it in summary.json; the run trains to the
// index run's test accuracy. Then the auto run again with the process that
// hosts stage 1 (peer.index 0 there) SIGKILLed a third of the way through:
// the spare takes stage 1 over (stage ids, not peer indices, name the
// checkpoints) and the final parameters equal the fault-free auto run's bit
// for bit. Every process runs under a deadline.
#include <cmath>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include "lan_harness.hpp"
#include "model_io/model_evaluation.hpp"
#include "model_io/model_file.hpp"
#include "model_io/model_source.hpp"
#include "protocols/checkpoint_file.hpp"
#include "run/config_schema.hpp"
#include "run/run_data.hpp"

using namespace murmur_e2e;

namespace {

const std::string config = std::string(MURMUR_SOURCE_DIR) + "/configs/pipeline-lan.toml";
constexpr int64_t checkpoint_every = 20;
// As tests/e2e/test_lan_pipeline.cpp: only the node killed is taken over on
// a loaded 2-core machine.
const std::vector<std::string> declared = {"--set", "peer.suspect_ms=500", "--set", "peer.dead_ms=500",
                                           "--set", "sim.slow_peers=0",    "--set", "sim.slow_factor=8",
                                           "--set", "checkpoint.every=" + std::to_string(checkpoint_every),
                                           "--set", "train.eval_every=10"};

pid_t start_node(const lan& net, const std::string& run, int i, const std::string& placement) {
  std::vector<std::string> a = {"peer", "--config", config, "--listen", net.endpoint(i), "--out",
                                (net.dir / (run + std::to_string(i))).string(), "--set",
                                "peer.index=" + std::to_string(i), "--set",
                                "peer.keys=" + (net.dir / ("keys" + std::to_string(i))).string(), "--set",
                                "peer.authorized_peers=" + (net.dir / "authorized_peers").string(), "--set",
                                "pipeline.placement=" + placement};
  a.insert(a.end(), declared.begin(), declared.end());
  return spawn_murmur(a, net.dir / (run + std::to_string(i) + ".log"));
}

std::string log_of(const lan& net, const std::string& run, int i) {
  return slurp(net.dir / (run + std::to_string(i) + ".log"));
}
nlohmann::json summary_of(const lan& net, const std::string& run, int i) {
  const std::string s = slurp(net.dir / (run + std::to_string(i)) / "summary.json");
  INFO(run << i << " summary.json:\n" << s);
  REQUIRE(!s.empty());
  return nlohmann::json::parse(s);
}

// The line every process prints about the layout.
std::string placement_line(const std::string& log) {
  const auto p = log.find("murmur peer: pipeline placement ");
  if (p == std::string::npos) return "";
  return log.substr(p, log.find('\n', p) - p);
}

// The last "progress: ... step S/T" of a log, or -1.
int64_t last_step(const std::string& log) {
  int64_t r = -1;
  for (size_t p = log.find("progress: "); p != std::string::npos; p = log.find("progress: ", p + 1)) {
    auto q = log.find(" step ", p), nl = log.find('\n', p);
    if (q == std::string::npos || nl == std::string::npos || q > nl) continue;
    r = std::stoll(log.substr(q + 6));
  }
  return r;
}

struct reaper {
  std::vector<pid_t> pids;
  ~reaper() {
    for (pid_t p : pids)
      if (p > 0) terminate_and_reap(p);
  }
};

// Runs the three processes to the end; their summaries.
std::vector<nlohmann::json> run_all(const lan& net, const std::string& run, const std::string& placement) {
  reaper r;
  for (int i = 0; i < 3; ++i) r.pids.push_back(start_node(net, run, i, placement));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  for (int i = 0; i < 3; ++i) {
    INFO(run << i << " log:\n" << log_of(net, run, i));
    REQUIRE(wait_until(r.pids[static_cast<size_t>(i)], deadline) == 0);
    r.pids[static_cast<size_t>(i)] = -1;
  }
  std::vector<nlohmann::json> out;
  for (int i = 0; i < 3; ++i) out.push_back(summary_of(net, run, i));
  return out;
}

// Test accuracy of the model the stage hosts left in their run directories.
double accuracy_of(const std::vector<std::string>& dirs) {
  const auto w = murmur::load_whole_model(dirs);
  auto model = murmur::build_model_from(w);
  const auto data = murmur::load_run_data(murmur::load_config(config));
  return murmur::evaluate_model(*model, *data.test).accuracy;
}

fs::path final_ckpt(const lan& net, const std::string& run, int i, int stage) {
  return net.dir / (run + std::to_string(i)) / "checkpoints" / ("stage-0-" + std::to_string(stage) + ".ckpt");
}

}  // namespace

TEST_CASE("pipeline placement = auto on loopback: a declared slow peer loses the heavy stage, all agree, a spare "
          "still takes over",
          "[slow][e2e][lan][pipeline][placement]") {
  const auto t0 = std::chrono::steady_clock::now();
  lan net("lan-placement", 3);

  // Index: stage s on peer.index s.
  const auto idx = run_all(net, "index", "index");
  CHECK(idx[0]["placement"] == "index");
  CHECK(idx[0]["stage_machines"] == nlohmann::json::parse("[[0, 1]]"));
  CHECK(idx[0]["stage"] == 0);
  CHECK(idx[1]["stage"] == 1);
  const double index_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Auto: the same layout in every process, stage 0 off peer.index 0.
  const auto au = run_all(net, "auto", "auto");
  const std::string line = placement_line(log_of(net, "auto", 0));
  INFO("auto layout: " << line);
  REQUIRE(!line.empty());
  CHECK(line.find("placement auto") != std::string::npos);
  for (int i = 1; i < 3; ++i) CHECK(placement_line(log_of(net, "auto", i)) == line);
  const auto machines = au[0]["stage_machines"];
  for (const auto& s : au) {
    CHECK(s["placement"] == "auto");
    CHECK(s["stage_machines"] == machines);
    CHECK(s["split"] == au[0]["split"]);
    CHECK(s["predicted_batch_s"] == au[0]["predicted_batch_s"]);
    CHECK(s["outcome"] == "finished");
    CHECK(s["frames_rejected"] == 0);
    CHECK(s["took_over"] == false);
  }
  REQUIRE(machines.size() == 1);
  REQUIRE(machines[0].size() == 2);
  const int host0 = machines[0][0].get<int>(), host1 = machines[0][1].get<int>();
  CHECK(host0 != 0);  // the heavy stage left the slow peer
  CHECK(host1 != host0);
  CHECK(host1 != 2);  // the spare stays a spare
  CHECK(au[0]["predicted_batch_s"].get<double>() < au[0]["predicted_index_batch_s"].get<double>());
  CHECK(idx[0]["predicted_batch_s"].get<double>() == Approx(au[0]["predicted_index_batch_s"].get<double>()));
  // Each process hosts the stage the layout gives its peer.index.
  CHECK(au[static_cast<size_t>(host0)]["stage"] == 0);
  CHECK(au[static_cast<size_t>(host0)]["node"] == 0);
  CHECK(au[static_cast<size_t>(host1)]["stage"] == 1);
  CHECK(au[static_cast<size_t>(host1)]["node"] == 1);
  CHECK(au[2]["role"] == "spare");
  CHECK(au[static_cast<size_t>(host1)]["steps"] == idx[1]["steps"]);
  CHECK(log_of(net, "auto", host0).find("node 0 (peer.index " + std::to_string(host0)) != std::string::npos);

  // The same accuracy band: the layout changes the timing, not the arithmetic.
  const double acc_index = accuracy_of({(net.dir / "index0").string(), (net.dir / "index1").string()});
  const double acc_auto = accuracy_of({(net.dir / ("auto" + std::to_string(host0))).string(),
                                       (net.dir / ("auto" + std::to_string(host1))).string()});
  INFO("test accuracy: index " << acc_index << ", auto " << acc_auto);
  CHECK(acc_index > 0.5);
  CHECK(std::abs(acc_auto - acc_index) <= 0.02);
  // Closer still: the whole model's parameters agree (the same layers'
  // arithmetic, only cut elsewhere and computed elsewhere).
  const auto w_index = murmur::load_whole_model({(net.dir / "index0").string(), (net.dir / "index1").string()});
  const auto w_auto = murmur::load_whole_model({(net.dir / ("auto" + std::to_string(host0))).string(),
                                                (net.dir / ("auto" + std::to_string(host1))).string()});
  REQUIRE(w_index.params.size() == w_auto.params.size());
  double worst = 0;
  for (size_t i = 0; i < w_index.params.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(w_index.params[i]) - w_auto.params[i]) /
                                (1 + std::abs(static_cast<double>(w_index.params[i]))));
  INFO("largest |index - auto| / (1 + |index|) over the parameters: " << worst);
  CHECK(worst <= 1e-4);

  // Auto again, the process hosting stage 1 SIGKILLed a third of the way
  // through, half-way between two checkpoints.
  reaper k;
  for (int i = 0; i < 3; ++i) k.pids.push_back(start_node(net, "kill", i, "auto"));
  const int64_t total = idx[1]["total_steps"].get<int64_t>();
  const int64_t kill_step =
      (total / 3 + checkpoint_every - 1) / checkpoint_every * checkpoint_every + checkpoint_every / 2;
  int64_t killed_step = -1;
  const auto poll_until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < poll_until) {
    const int64_t s = last_step(log_of(net, "kill", host1));
    if (s >= kill_step) {
      killed_step = s;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(k.pids[static_cast<size_t>(host1)], SIGKILL);
  waitpid(k.pids[static_cast<size_t>(host1)], nullptr, 0);
  k.pids[static_cast<size_t>(host1)] = -1;
  INFO("killed peer.index " << host1 << " log:\n" << log_of(net, "kill", host1));
  REQUIRE(killed_step >= 0);
  CHECK(killed_step < total);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i : {host0, 2}) {
    INFO("kill run peer.index " << i << " log:\n" << log_of(net, "kill", i));
    REQUIRE(wait_until(k.pids[static_cast<size_t>(i)], deadline) == 0);
    k.pids[static_cast<size_t>(i)] = -1;
  }
  const auto spare = summary_of(net, "kill", 2), first = summary_of(net, "kill", host0);
  CHECK(spare["took_over"] == true);
  CHECK(spare["stage"] == 1);
  CHECK(spare["steps"] == total);
  CHECK(first["steps"] == total);
  CHECK(first["stage_machines"] == machines);
  CHECK(log_of(net, "kill", host0).find("rollback: ") != std::string::npos);
  same_final_state(final_ckpt(net, "auto", host0, 0), final_ckpt(net, "kill", host0, 0));
  same_final_state(final_ckpt(net, "auto", host1, 1), final_ckpt(net, "kill", 2, 1));

  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "pipeline placement on loopback: " << line << "; test accuracy index " << acc_index << ", auto "
            << acc_auto << ", parameters within " << worst << "; batch_s index " << idx[1]["batch_s"] << ", auto " << au[static_cast<size_t>(host1)]["batch_s"]
            << "; stage 1 (peer.index " << host1 << ") killed at step " << killed_step << ", taken over; index run "
            << index_s << " s, whole test " << total_s << " s" << std::endl;
  CHECK(total_s < 120);
}

TEST_CASE("hybrid placement = auto on loopback: 2 replicas x 2 stages, each replica's heavy stage off its slow "
          "peer, and the stages still gossip with their counterparts",
          "[slow][e2e][lan][pipeline][placement]") {
  const auto t0 = std::chrono::steady_clock::now();
  lan net("lan-placement-hybrid", 4);
  reaper r;
  for (int i = 0; i < 4; ++i) {
    std::vector<std::string> a = {"peer", "--config", config, "--listen", net.endpoint(i), "--out",
                                  (net.dir / ("hybrid" + std::to_string(i))).string(), "--set",
                                  "peer.index=" + std::to_string(i), "--set",
                                  "peer.keys=" + (net.dir / ("keys" + std::to_string(i))).string(), "--set",
                                  "peer.authorized_peers=" + (net.dir / "authorized_peers").string(), "--set",
                                  "pipeline.replicas=2", "--set", "pipeline.spares=0", "--set", "peer.count=4", "--set",
                                  "pipeline.placement=auto", "--set", "sim.slow_peers=0,2", "--set",
                                  "sim.slow_factor=8", "--set", "peer.suspect_ms=500", "--set", "peer.dead_ms=500"};
    r.pids.push_back(spawn_murmur(a, net.dir / ("hybrid" + std::to_string(i) + ".log")));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  for (int i = 0; i < 4; ++i) {
    INFO("peer.index " << i << " log:\n" << log_of(net, "hybrid", i));
    REQUIRE(wait_until(r.pids[static_cast<size_t>(i)], deadline) == 0);
    r.pids[static_cast<size_t>(i)] = -1;
  }
  // Replica r's machines are 2r and 2r + 1; the slow one (2r) gets stage 1.
  const auto want = nlohmann::json::parse("[[1, 0], [3, 2]]");
  for (int i = 0; i < 4; ++i) {
    const auto s = summary_of(net, "hybrid", i);
    INFO("peer.index " << i);
    CHECK(s["stage_machines"] == want);
    CHECK(s["outcome"] == "finished");
    CHECK(s["replica"] == i / 2);
    CHECK(s["stage"] == (i % 2 == 0 ? 1 : 0));
    CHECK(s["node"] == (i / 2) * 2 + (i % 2 == 0 ? 1 : 0));
    CHECK(s["frames_rejected"] == 0);
    CHECK(s["gossip_bytes_received"].get<double>() > 0);  // from its counterpart, on another peer.index than its node
  }
  // Gossip pulled the replicas together (tests/e2e/test_lan_pipeline.cpp
  // sees 0.04-0.09 with gossip, 0.33 without, on index layouts).
  for (int s = 0; s < 2; ++s) {
    const auto ck = [&](int replica) {
      const int host = replica * 2 + (s == 0 ? 1 : 0);
      return net.dir / ("hybrid" + std::to_string(host)) / "checkpoints" /
             ("stage-" + std::to_string(replica) + "-" + std::to_string(s) + ".ckpt");
    };
    const auto a = murmur::read_checkpoint_file(ck(0).string()), b = murmur::read_checkpoint_file(ck(1).string());
    REQUIRE(a.params.size() == b.params.size());
    double d = 0, n = 0;
    for (size_t i = 0; i < a.params.size(); ++i) {
      d += (a.params[i] - b.params[i]) * static_cast<double>(a.params[i] - b.params[i]);
      n += a.params[i] * static_cast<double>(a.params[i]);
    }
    INFO("stage " << s << " replica distance " << std::sqrt(d / n));
    CHECK(std::sqrt(d / n) < 0.2);
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "hybrid placement on loopback: " << placement_line(log_of(net, "hybrid", 0)) << "; whole test "
            << total_s << " s" << std::endl;
  CHECK(total_s < 60);
}
