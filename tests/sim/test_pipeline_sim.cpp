// Pipeline runs in the simulation: they train, they are deterministic, the
// schedule's efficiency is near M/(M+S-1), a stage that dies mid-step is
// taken over by a spare from its checkpoint and the run ends with exactly
// the parameters of a run without the crash, a stopped run resumes from its
// checkpoints to the same end, damaged checkpoints are refused, and hybrid
// R x S runs gossip between the replicas of each stage.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "protocols/checkpoint_file.hpp"
#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
namespace fs = std::filesystem;
using murmur::test::scratch;
using murmur::test::slurp;

namespace {

// A small pipeline on synthetic data: 6 layers, batch 32, quick.
RunConfig pipe(std::vector<std::string> more = {}) {
  std::vector<std::string> o = {"data.dataset=synthetic", "data.train_samples=3000", "data.test_samples=600",
                                "model.arch=flatten,linear:64,relu,linear:48,relu,linear:32,relu,linear:10",
                                "train.epochs=2", "train.batch=32", "pipeline.stages=3", "pipeline.microbatches=4"};
  o.insert(o.end(), more.begin(), more.end());
  return parse_config("", "test", o);
}

// Final parameters, from the last checkpoint files of each stage.
std::vector<float> final_params(const fs::path& run, int stages) {
  std::vector<float> p;
  for (int s = 0; s < stages; ++s) {
    auto c = read_checkpoint_file((run / "checkpoints" / ("stage-0-" + std::to_string(s) + ".ckpt")).string());
    p.insert(p.end(), c.params.begin(), c.params.end());
  }
  return p;
}

std::string balanced_model() {
  std::string m = "flatten,linear:1024,relu";
  for (int i = 0; i < 8; ++i) m += ",linear:1024,relu";
  return m + ",linear:10";
}

}  // namespace

TEST_CASE("a pipeline run trains, with both schedules, deterministically", "[sim][pipeline]") {
  auto sched = GENERATE(std::string("gpipe"), std::string("1f1b"));
  INFO(sched);
  auto cfg = pipe({"pipeline.schedule=" + sched});
  auto a = scratch("pipe-a-" + sched), b = scratch("pipe-b-" + sched);
  auto s = run_simulation(cfg, a.string());
  CHECK(s.pipeline.enabled);
  CHECK(s.steps == 188);  // 2 epochs of ceil(3000 / 32)
  CHECK(s.final_test_accuracy > 0.8);
  CHECK(s.pipeline.per_stage.size() == 3);
  for (auto& q : s.pipeline.per_stage) CHECK(q.rejected == 0);
  run_simulation(cfg, b.string());
  CHECK(slurp(a / "metrics.jsonl") == slurp(b / "metrics.jsonl"));
  CHECK(slurp(a / "summary.json").find("\"efficiency\"") != std::string::npos);
}

TEST_CASE("pipeline efficiency is within 10% of M/(M+S-1) on balanced stages", "[sim][pipeline]") {
  // Eight equal layers between a small first and last one, fast links: the
  // bubble is what is left (the cut itself costs up to 5% at S = 4).
  for (const char* sched : {"gpipe", "1f1b"})
    for (int S : {2, 4})
      for (int M : {1, 4, 16}) {
        auto cfg = parse_config("", "test", {"data.dataset=synthetic", "data.train_samples=512", "data.test_samples=100",
                                             "model.arch=" + balanced_model(), "train.epochs=1", "train.batch=128",
                                             "pipeline.stages=" + std::to_string(S),
                                             "pipeline.microbatches=" + std::to_string(M),
                                             std::string("pipeline.schedule=") + sched, "sim.latency_ms=0.01",
                                             "sim.bandwidth_mbps=100000"});
        auto s = run_simulation(cfg, scratch("pipe-eff").string());
        INFO(sched << " S " << S << " M " << M << ": efficiency " << s.pipeline.efficiency << ", bound "
                   << s.pipeline.bound);
        CHECK(s.pipeline.efficiency >= 0.9 * s.pipeline.bound);
        // The bound is exact for equal stages; these differ by up to 5%.
        CHECK(s.pipeline.efficiency <= s.pipeline.bound * 1.02);
        for (auto& q : s.pipeline.per_stage)
          CHECK(q.peak_in_flight == (std::string(sched) == "gpipe" ? size_t(M) : std::min<size_t>(S - q.stage, M)));
      }
}

TEST_CASE("a dead stage is taken over by a spare and the run ends as if nothing happened", "[sim][pipeline]") {
  auto common = std::vector<std::string>{"checkpoint.every=20", "peer.heartbeat_ms=10", "peer.suspect_ms=30",
                                         "peer.dead_ms=30", "pipeline.spares=1"};
  auto clean_cfg = pipe(common);
  auto crash = common;
  crash.insert(crash.end(), {"pipeline.crash_stage=1", "pipeline.crash_step=57"});
  auto crash_cfg = pipe(crash);
  auto a = scratch("takeover-clean"), b = scratch("takeover-crash");
  auto clean = run_simulation(clean_cfg, a.string());
  auto s = run_simulation(crash_cfg, b.string());
  CHECK_FALSE(clean.pipeline.takeover.happened);
  const auto& t = s.pipeline.takeover;
  REQUIRE(t.happened);
  CHECK(s.pipeline.errors.empty());
  CHECK(t.stage == 1);
  CHECK(t.crash_step == 57);
  CHECK(t.resume_step == 40);
  CHECK(t.lost_steps == 16);
  CHECK(t.new_node == 3);  // the spare
  CHECK(t.detection_s > 0.03);
  CHECK(t.detection_s < 0.2);
  CHECK(t.time_to_resume_s > 0);
  CHECK(t.caught_up_s > t.takeover_s);
  CHECK(s.steps == clean.steps);
  // Deterministic replay from the checkpoint: the very same parameters.
  CHECK(final_params(b, 3) == final_params(a, 3));
  CHECK(s.final_test_accuracy == clean.final_test_accuracy);
  CHECK(s.virtual_time_s > clean.virtual_time_s);
  CHECK(slurp(b / "events.jsonl").find("\"takeover\"") != std::string::npos);
}

TEST_CASE("without a spare a dead stage stalls its pipeline, and the run still ends", "[sim][pipeline]") {
  auto s = run_simulation(pipe({"pipeline.crash_stage=2", "pipeline.crash_step=10"}), scratch("no-spare").string());
  CHECK_FALSE(s.pipeline.takeover.happened);
  CHECK(s.steps < 10);
}

TEST_CASE("a stopped pipeline run resumes from its checkpoints to the same end", "[sim][pipeline]") {
  auto full = scratch("resume-full"), part = scratch("resume-part");
  run_simulation(pipe({"checkpoint.every=25"}), full.string());
  auto stopped = run_simulation(pipe({"checkpoint.every=25", "run.stop_after=60"}), part.string());
  CHECK(stopped.steps < 188);
  auto resumed = run_simulation(pipe({"checkpoint.every=25"}), part.string(), {}, part.string());
  CHECK(resumed.steps == 188);
  CHECK(final_params(part, 3) == final_params(full, 3));

  SECTION("a damaged or truncated checkpoint is refused, never loaded") {
    const auto victim = part / "checkpoints" / "stage-0-1.ckpt";
    std::string bytes = slurp(victim);
    bytes[bytes.size() / 2] ^= 0x10;
    std::ofstream(victim, std::ios::binary | std::ios::trunc) << bytes;
    CHECK_THROWS_WITH(run_simulation(pipe({"checkpoint.every=25"}), part.string(), {}, part.string()),
                      Catch::Contains("stage-0-1.ckpt") && Catch::Contains("checksum"));
    std::ofstream(victim, std::ios::binary | std::ios::trunc) << bytes.substr(0, 100);
    CHECK_THROWS_WITH(run_simulation(pipe({"checkpoint.every=25"}), part.string(), {}, part.string()),
                      Catch::Contains("stage-0-1.ckpt") && Catch::Contains("truncated"));
    fs::remove(victim);
    CHECK_THROWS_WITH(run_simulation(pipe({"checkpoint.every=25"}), part.string(), {}, part.string()),
                      Catch::Contains("stage-0-1.ckpt"));
  }
}

TEST_CASE("hybrid replicas x stages gossip between the replicas of each stage", "[sim][pipeline]") {
  auto s = run_simulation(pipe({"pipeline.replicas=2", "pipeline.stages=2", "train.epochs=3"}),
                          scratch("hybrid").string());
  CHECK(s.pipeline.replicas == 2);
  CHECK(s.pipeline.per_stage.size() == 4);
  CHECK(s.final_test_accuracy > 0.8);
  CHECK(s.min_test_accuracy > 0.8);
  CHECK(s.steps == 141);  // 3 epochs of ceil(1500 / 32)
  CHECK(s.bytes_sent_total > 0);
}

TEST_CASE("in a hybrid run the spare that takes a stage over also takes over its gossip", "[sim][pipeline]") {
  auto s = run_simulation(pipe({"pipeline.replicas=2", "pipeline.stages=2", "train.epochs=3", "pipeline.spares=1",
                                "checkpoint.every=20", "peer.heartbeat_ms=10", "peer.suspect_ms=30",
                                "peer.dead_ms=30", "pipeline.crash_replica=1", "pipeline.crash_stage=0",
                                "pipeline.crash_step=50"}),
                          scratch("hybrid-takeover").string());
  const auto& t = s.pipeline.takeover;
  REQUIRE(t.happened);
  CHECK(s.pipeline.errors.empty());
  CHECK(t.replica == 1);
  CHECK(t.stage == 0);
  CHECK(t.new_node == 4);
  CHECK(s.steps == 141);
  bool found = false;
  for (const auto& q : s.pipeline.per_stage) {
    INFO("replica " << q.replica << " stage " << q.stage << " node " << q.node);
    CHECK(q.gossip_bytes_sent > 0);  // every stage gossips, the new host included
    if (q.replica == 1 && q.stage == 0) found = q.node == 4;
  }
  CHECK(found);
  CHECK(s.min_test_accuracy > 0.8);
}

TEST_CASE("pipeline layouts that cannot work are refused naming the key", "[sim][pipeline]") {
  CHECK_THROWS_WITH(run_simulation(pipe({"pipeline.split=2,2"}), scratch("bad").string()),
                    Catch::Contains("pipeline.split"));
  CHECK_THROWS_WITH(run_simulation(pipe({"pipeline.stages=9"}), scratch("bad").string()),
                    Catch::Contains("pipeline.stages"));
  CHECK_THROWS_WITH(run_simulation(pipe({"pipeline.crash_stage=5"}), scratch("bad").string()),
                    Catch::Contains("pipeline.crash_stage"));
  CHECK_THROWS_WITH(run_simulation(parse_config("", "test", {"pipeline.replicas=2"}), scratch("bad").string()),
                    Catch::Contains("pipeline.stages > 1"));
}
