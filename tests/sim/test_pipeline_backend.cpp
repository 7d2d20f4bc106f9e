// Pipeline runs whose stages train on a compute backend (the CPU backend
// here, through the path train.device = cuda takes on a GPU) train as the
// host pipeline: the same loss and accuracy curve and final parameters
// within float rounding, for a 2-stage pipeline and a 2 x 2 hybrid whose
// stages gossip (the mix writes the host mirror, the backend picks it up);
// a stage on a backend that dies is taken over by a spare, which restores
// its checkpoint onto a backend of its own, and the run ends as without the
// crash.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "protocols/checkpoint_file.hpp"
#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "tensor/cpu_backend.hpp"
#include "tests/json_lines.hpp"
#include "run_dir.hpp"

using namespace murmur;
namespace fs = std::filesystem;
using murmur::test::json_lines;
using murmur::test::scratch;
using murmur::test::slurp;

namespace {

RunConfig pipe(std::vector<std::string> more) {
  std::vector<std::string> o = {"data.dataset=synthetic", "data.train_samples=3000", "data.test_samples=600",
                                "model.arch=flatten,linear:64,relu,linear:48,relu,linear:32,relu,linear:10",
                                "train.epochs=2", "train.batch=32", "pipeline.stages=2", "pipeline.microbatches=4",
                                "checkpoint.every=47"};  // 188 steps on 1 replica, 94 on each of 2
  o.insert(o.end(), more.begin(), more.end());
  return parse_config("", "test", o);
}

// The stages' parameters of `replica` from their last checkpoints (at the last step).
std::vector<float> final_params(const fs::path& run, int replica, int stages, uint64_t last_step) {
  std::vector<float> p;
  for (int s = 0; s < stages; ++s) {
    auto c = read_checkpoint_file(
        (run / "checkpoints" / ("stage-" + std::to_string(replica) + "-" + std::to_string(s) + ".ckpt")).string());
    CHECK(c.step == last_step);
    p.insert(p.end(), c.params.begin(), c.params.end());
  }
  return p;
}

}  // namespace

TEST_CASE("a pipeline whose stages train on a backend trains as the host pipeline", "[sim][pipeline][backend]") {
  auto [replicas, schedule] = GENERATE(table<int, std::string>({{1, "1f1b"}, {2, "gpipe"}}));
  INFO(replicas << " replica(s), " << schedule);
  const auto cfg = pipe({"pipeline.replicas=" + std::to_string(replicas), "pipeline.schedule=" + schedule});
  const auto host_dir = scratch("pipe-host-" + std::to_string(replicas));
  const auto be_dir = scratch("pipe-backend-" + std::to_string(replicas));
  const sim_summary host = run_simulation(cfg, host_dir.string());
  int made = 0;
  const sim_summary be = run_pipeline_simulation(cfg, be_dir.string(), {}, "", nullptr, [&made] {
    ++made;
    return make_cpu_backend();
  });
  CHECK(made == 2 * replicas);  // every stage, none twice
  CHECK(be.steps == host.steps);
  CHECK(host.steps == static_cast<uint64_t>(188 / replicas));
  CHECK(host.final_test_accuracy > 0.8);
  for (auto& q : be.pipeline.per_stage) CHECK(q.rejected == 0);

  // The curves: every evaluation of every replica.
  const auto h = json_lines(slurp(host_dir / "metrics.jsonl"));
  const auto b = json_lines(slurp(be_dir / "metrics.jsonl"));
  REQUIRE(h.size() == b.size());
  REQUIRE(h.size() >= 2);
  double worst_loss = 0, worst_acc = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    CHECK(b[i]["step"] == h[i]["step"]);
    CHECK(b[i]["bytes_sent"] == h[i]["bytes_sent"]);  // the same messages, the same gossip
    for (const char* k : {"train_loss", "test_loss"})
      worst_loss = std::max(worst_loss, std::fabs(b[i][k].get<double>() - h[i][k].get<double>()) /
                                            std::max(1e-3, std::fabs(h[i][k].get<double>())));
    worst_acc = std::max(worst_acc, std::fabs(b[i]["test_acc"].get<double>() - h[i]["test_acc"].get<double>()));
  }
  // And the final parameters of each replica's stages.
  double worst_param = 0;
  for (int r = 0; r < replicas; ++r) {
    const auto hp = final_params(host_dir, r, 2, host.steps), bp = final_params(be_dir, r, 2, host.steps);
    REQUIRE(hp.size() == bp.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < hp.size(); ++i) {
      num = std::max(num, std::fabs(double(bp[i]) - hp[i]));
      den = std::max(den, std::fabs(double(hp[i])));
    }
    worst_param = std::max(worst_param, num / den);
  }
  std::printf("pipeline on the CPU backend vs the host, %d replica(s), %s: worst relative difference: losses %.1e, "
              "test accuracy %.1e (absolute), final parameters %.1e\n",
              replicas, schedule.c_str(), worst_loss, worst_acc, worst_param);
  // The MLP's products are the same gemm calls on both paths; the bounds
  // leave room for summation order (a GPU's products) over 188 steps.
  CHECK(worst_loss < 1e-4);
  CHECK(worst_acc <= 0.005);
  CHECK(worst_param < 1e-4);
}

TEST_CASE("a dead stage on a backend is taken over by a spare on a backend; the run ends as without the crash",
          "[sim][pipeline][backend]") {
  const std::vector<std::string> common = {"pipeline.stages=3", "pipeline.spares=1", "peer.heartbeat_ms=10",
                                           "peer.suspect_ms=30", "peer.dead_ms=30"};
  auto crash = common;
  crash.insert(crash.end(), {"pipeline.crash_stage=1", "pipeline.crash_step=57"});
  const auto host_dir = scratch("pipe-host-clean"), be_dir = scratch("pipe-backend-crash");
  const sim_summary host = run_simulation(pipe(common), host_dir.string());
  int made = 0;
  const sim_summary be = run_pipeline_simulation(pipe(crash), be_dir.string(), {}, "", nullptr, [&made] {
    ++made;
    return make_cpu_backend();
  });
  const auto& t = be.pipeline.takeover;
  REQUIRE(t.happened);
  CHECK(be.pipeline.errors.empty());
  CHECK(t.resume_step == 47);  // the last checkpoint before the crash
  CHECK(made == 4);            // 3 stages, then the spare's
  CHECK(be.steps == host.steps);
  const auto hp = final_params(host_dir, 0, 3, 188), bp = final_params(be_dir, 0, 3, 188);
  REQUIRE(hp.size() == bp.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < hp.size(); ++i) {
    num = std::max(num, std::fabs(double(bp[i]) - hp[i]));
    den = std::max(den, std::fabs(double(hp[i])));
  }
  std::printf("pipeline on the CPU backend with a take-over vs the host without: worst relative difference of the "
              "final parameters %.1e\n", num / den);
  CHECK(num / den < 1e-4);
  CHECK(be.final_test_accuracy == Approx(host.final_test_accuracy).margin(0.005));
}
