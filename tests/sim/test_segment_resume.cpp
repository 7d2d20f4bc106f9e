// murmur sim --resume with verify.scheme = segment (issue 14): every peer
// restarts together, so each segment log opens at its resumed step (the
// first segment ends at the next multiple of K) and every verifier starts
// afresh. A resumed honest run passes its challenged segments and
// quarantines nobody; a cheater that starts cheating after the resume is
// caught by its honest neighbours.
#include <catch2/catch.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "protocols/checkpoint_file.hpp"
#include "run/config_schema.hpp"
#include "run/verification_choice.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

constexpr int K = 8;

// 8 peers on a ring, 1000 samples each: 32 steps. Checkpoints every 12
// steps and a stop after 14: the resumed run starts at step 12, not a
// multiple of K, so each peer's first segment is [12, 16).
std::vector<std::string> resumable_run(std::vector<std::string> more = {}) {
  std::vector<std::string> o = {"data.train_samples=8000", "data.test_samples=500", "train.epochs=2",
                                "gossip.robust=none",      "verify.scheme=segment", "verify.segment=" + std::to_string(K),
                                "verify.rate=1",           "checkpoint.every=12"};
  o.insert(o.end(), more.begin(), more.end());
  return o;
}

RunConfig config(std::vector<std::string> overrides) {
  return load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml", overrides);
}

// Stops the run after 14 steps, then resumes it from its step-12 checkpoints.
sim_summary stop_and_resume(const std::vector<std::string>& overrides, const std::string& name) {
  const auto dir = scratch(name).string();
  auto stop = overrides;
  stop.push_back("run.stop_after=14");
  const auto stopped = run_simulation(config(stop), dir);
  REQUIRE(stopped.steps == 14);
  for (uint32_t i = 0; i < 8; ++i)
    REQUIRE(read_checkpoint_file(dir + "/checkpoints/peer-" + std::to_string(i) + ".ckpt").step == 12);
  return run_simulation(config(overrides), dir, {}, dir);
}

}  // namespace

TEST_CASE("segments after --resume: an honest resumed run passes its challenged segments and quarantines nobody",
          "[segment][resume][sim]") {
  const auto s = stop_and_resume(resumable_run(), "segment-resume-honest");
  const auto& v = s.verification;
  INFO("segments challenged " << v.segments_challenged << " passed " << v.segments_passed << " failed "
                              << v.segments_failed << ", missed " << v.challenges_missed);
  CHECK(s.steps == 32);
  CHECK(v.segment_steps == K);
  CHECK(v.segment_commits > 0);
  CHECK(v.segments_challenged > 0);
  CHECK(v.segments_passed > 0);
  CHECK(v.segments_failed == 0);
  CHECK(v.challenges_missed == 0);
  CHECK(v.misses_by_prover.empty());
  CHECK(s.detection.fp == 0);
  CHECK(s.detection.honest_quarantined == 0);
}

TEST_CASE("segments after --resume: a cheater that starts after the resume is quarantined by its honest neighbours",
          "[segment][resume][sim]") {
  // Cheats from step 20 on: nothing before the stop at 14, every step after.
  const auto s = stop_and_resume(
      resumable_run({"attack.kind=perturb", "attack.fraction=0.25", "attack.eps=0.01", "attack.start_step=20",
                     "attack.every=1"}),
      "segment-resume-cheat");
  const auto& v = s.verification;
  INFO("tp " << s.detection.tp << " fn " << s.detection.fn << " fp " << s.detection.fp << ", segments failed "
             << v.segments_failed << " passed " << v.segments_passed);
  REQUIRE(s.attackers.size() == 2);
  CHECK(s.detection.tp == 2);  // every honest neighbour of each cheater quarantined it
  CHECK(s.detection.fp == 0);
  CHECK(s.detection.honest_quarantined == 0);
  CHECK(v.segments_failed > 0);
  CHECK(v.segments_passed > 0);
  for (const auto& [peer, step] : v.first_caught_step) {
    CHECK(std::find(s.attackers.begin(), s.attackers.end(), peer) != s.attackers.end());
    CHECK(step >= 20);
  }
}

TEST_CASE("segments after --resume: the default verification stays on for a resumed simulation",
          "[segment][resume][default]") {
  const auto resumed = choose_verification(config({"train.device=cpu"}));
  CHECK(resumed.on());
  CHECK(resumed.scheme == "segment");
  CHECK(resumed.by_default);
  CHECK(segment_obstacle_of(config({"train.device=cpu"})) == std::nullopt);
  // Asked for explicitly, it is not refused either.
  CHECK_NOTHROW(choose_verification(config({"train.device=cpu", "verify.scheme=segment", "verify.rate=0.01"})));
}
