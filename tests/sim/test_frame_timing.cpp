// When a simulated peer's frames enter its uplink (sim.frames_leave): once
// the step that made them has taken its modelled time, as on a real machine
// (the default), or at the start of the cycle that published them (frames
// made after the step then leave a step early). With gossip.publish =
// before_step (the default) the frames are made before the step and leave
// at the start either way.
#include <catch2/catch.hpp>

#include <cmath>

#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

// Dense gossip on the complete graph, full pull, no latency, no bandwidth
// limit: if each frame arrives when its step ends, every peer's next mix
// averages all peers' post-step parameters, which is the all-reduce.
sim_summary exact_mix_run(const std::string& name, std::vector<std::string> overrides) {
  std::vector<std::string> common = {"data.train_samples=8000", "data.test_samples=1000", "train.epochs=1",
                                     "sim.peers=4",           "gossip.topology=complete", "gossip.gamma=1",
                                     "gossip.robust=none",    "sim.latency_ms=0",        "sim.bandwidth_mbps=0",
                                     "verify.rate=0"};
  common.insert(common.end(), overrides.begin(), overrides.end());
  auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml", common);
  return run_simulation(cfg, scratch("frame-timing-" + name).string());
}

}  // namespace

TEST_CASE("frames that leave when their step ends make zero-latency dense gossip the all-reduce; at the step's start "
          "they are read a step early",
          "[sim][network][timing]") {
  const auto allreduce = exact_mix_run("allreduce", {"gossip.mode=allreduce"});
  const auto at_end = exact_mix_run("end", {"gossip.mode=dense", "sim.frames_leave=step_end", "gossip.publish=after_step"});
  const auto at_start =
      exact_mix_run("start", {"gossip.mode=dense", "sim.frames_leave=step_start", "gossip.publish=after_step"});
  INFO("test loss: all-reduce " << allreduce.final_test_loss << ", step_end " << at_end.final_test_loss
                                << ", step_start " << at_start.final_test_loss);
  REQUIRE(std::isfinite(allreduce.final_test_loss));
  // Summation order differs (the ring's chunks against each peer's mix), so
  // close, not bit-equal; the step_start run mixes some peers' post-step
  // and others' pre-step values in the same instant, which counts part of
  // every update twice.
  CHECK(std::abs(at_end.final_test_loss - allreduce.final_test_loss) < 2e-3);
  CHECK(std::abs(at_start.final_test_loss - allreduce.final_test_loss) > 10 * std::abs(at_end.final_test_loss - allreduce.final_test_loss));
  // The same steps and bytes either way: only when frames leave moves.
  CHECK(at_end.steps == at_start.steps);
  CHECK(at_end.bytes_sent_total == at_start.bytes_sent_total);
}

TEST_CASE("gossip.publish = before_step: frames made before the step leave at the cycle's start whatever "
          "sim.frames_leave says",
          "[sim][network][timing]") {
  // The publish comes after the mix and before the step, so there is no
  // step to wait for: step_start and step_end give the same run.
  const auto at_end = exact_mix_run("before-end", {"gossip.mode=dense", "sim.frames_leave=step_end",
                                                   "gossip.publish=before_step"});
  const auto at_start = exact_mix_run("before-start", {"gossip.mode=dense", "sim.frames_leave=step_start",
                                                       "gossip.publish=before_step"});
  const auto after =
      exact_mix_run("after-end", {"gossip.mode=dense", "sim.frames_leave=step_end", "gossip.publish=after_step"});
  INFO("test loss: before_step " << at_end.final_test_loss << " / " << at_start.final_test_loss << ", after_step "
                                 << after.final_test_loss);
  REQUIRE(std::isfinite(at_end.final_test_loss));
  CHECK(at_end.final_test_loss == at_start.final_test_loss);
  CHECK(at_end.final_test_accuracy == at_start.final_test_accuracy);
  CHECK(at_end.bytes_sent_total == at_start.bytes_sent_total);
  // The frames carry other parameters: each peer's own last update is not
  // in what it publishes (a different run), while the steps and bytes are the same.
  CHECK(at_end.final_test_loss != after.final_test_loss);
  CHECK(at_end.steps == after.steps);
  CHECK(at_end.bytes_sent_total == after.bytes_sent_total);
}
