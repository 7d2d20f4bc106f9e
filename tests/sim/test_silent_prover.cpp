// Deadlines in a whole simulated run: a prover that never answers its
// verifiers' challenges (attack.kind = silent_prover) is quarantined by its
// neighbours for missed answers, and no honest peer is charged a miss; with
// no attacker every challenge completes. Small (the synthetic smoke config,
// lossless, with 1 ms steps so that a run spans many deadlines).
#include <catch2/catch.hpp>
#include <algorithm>

#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run/verify_timing.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

sim_summary run(const std::string& attack, const std::string& name) {
  auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml",
                         // verify.scheme = step: segments have no deadlines yet (docs/trust.md).
                         {"sim.loss=0", "sim.step_ms=1", "verify.rate=0.1", "verify.scheme=step", "attack.fraction=0.25",
                          "attack.start_step=5", "attack.kind=" + attack});
  return run_simulation(cfg, scratch(name).string());
}

}  // namespace

TEST_CASE("a silent prover is quarantined for missed answers; honest peers are never charged", "[verify][sim][deadline]") {
  const auto s = run("silent_prover", "silent-prover");
  const auto& v = s.verification;
  INFO("challenges " << v.challenges << " completed " << v.challenges_completed << " missed " << v.challenges_missed
                     << " confirmed " << v.misses_confirmed << " deadline " << v.deadline_s << " s, keep "
                     << v.keep_steps);
  REQUIRE(s.attackers.size() == 1);
  const uint32_t attacker = s.attackers[0];
  CHECK(v.deadline_s < 0.05);  // 1 ms latency, small frames: a few ms
  CHECK(v.keep_steps > 2.5 * v.deadline_s / 0.001);
  CHECK(s.detection.tp == 1);
  CHECK(s.detection.fp == 0);
  CHECK(s.detection.honest_quarantined == 0);
  CHECK(s.quarantines_by_cause.at("missed_answers") == 2);  // both ring neighbours
  CHECK(s.quarantines_by_cause.count("evidence") == 0);
  CHECK(v.misses_by_prover.size() == 1);
  CHECK(v.misses_by_prover.count(attacker) == 1);
  CHECK(v.misses_announced > 0);
  CHECK(v.misses_rejected == 0);
  CHECK(v.checks_failed == 0);
  CHECK(v.challenges_completed > 0);  // the honest peers answered
}

TEST_CASE("with no attacker, every challenge of a lossless run completes", "[verify][sim][deadline]") {
  const auto s = run("none", "silent-prover-none");
  const auto& v = s.verification;
  CHECK(v.challenges > 20);
  CHECK(v.challenges_completed == v.challenges);
  CHECK(v.challenges_missed == 0);
  CHECK(v.misses_announced == 0);
  CHECK(v.max_answer_s < v.deadline_s);
  CHECK(s.quarantines_by_cause.empty());
}
