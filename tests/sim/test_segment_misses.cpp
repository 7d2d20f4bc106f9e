// Deadlines and misses under verify.scheme = segment (docs/trust.md,
// "Amortised commitments"): a prover that never answers its segment
// challenges (attack.kind = silent_prover) is quarantined by its verifiers
// for missed answers, as under the step scheme; honest peers are never
// charged a miss, on a fast link or on one that segment replies overload.
#include <catch2/catch.hpp>
#include <algorithm>

#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

// 8 peers on a ring, 2000 samples each: 64 steps, 16 segments of 4 steps
// a peer. 10 ms steps on a 100 Gbit/s link: the derived deadline (a few ms)
// is well inside a segment, so a silence shows as a miss within the run.
std::vector<std::string> fast_link_run(const std::string& attack) {
  return {"data.train_samples=16000", "data.test_samples=500", "train.epochs=2", "gossip.robust=none",
          "verify.scheme=segment",    "verify.segment=4",      "verify.rate=1",  "sim.step_ms=10",
          "sim.bandwidth_mbps=100000", "attack.fraction=0.25", "attack.start_step=5", "attack.kind=" + attack};
}

sim_summary run(std::vector<std::string> overrides, const std::string& name) {
  auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml", overrides);
  return run_simulation(cfg, scratch(name).string());
}

}  // namespace

TEST_CASE("segments: a silent prover is quarantined for missed answers by every honest neighbour",
          "[segment][verify][sim][deadline]") {
  const auto s = run(fast_link_run("silent_prover"), "segment-silent");
  const auto& v = s.verification;
  INFO("challenges " << v.challenges << " completed " << v.challenges_completed << " missed " << v.challenges_missed
                     << " expired " << v.challenges_expired << " abandoned " << v.challenges_abandoned
                     << " confirmed " << v.misses_confirmed << " deadline " << v.deadline_s << " s");
  REQUIRE(s.attackers.size() == 2);
  CHECK(v.deadline_s < 0.04);  // inside one 4-step segment of 10 ms steps
  CHECK(s.detection.tp == 2);
  CHECK(s.detection.fp == 0);
  CHECK(s.detection.honest_quarantined == 0);
  CHECK(s.quarantines_by_cause.at("missed_answers") == 4);  // both ring neighbours of each
  CHECK(s.quarantines_by_cause.count("evidence") == 0);
  for (const auto& [peer, n] : v.misses_by_prover) {
    INFO("peer " << peer << " misses " << n);
    CHECK(std::find(s.attackers.begin(), s.attackers.end(), peer) != s.attackers.end());
  }
  CHECK(v.misses_by_prover.size() == 2);
  CHECK(v.misses_announced > 0);
  CHECK(v.misses_rejected == 0);
  CHECK(v.checks_failed == 0);
  CHECK(v.segments_failed == 0);
  CHECK(v.challenges_completed > 0);  // the honest peers answered
  CHECK(v.segments_passed > 0);
}

TEST_CASE("segments: with no attacker every challenge completes in time and nobody is charged",
          "[segment][verify][sim][deadline]") {
  const auto s = run(fast_link_run("none"), "segment-silent-none");
  const auto& v = s.verification;
  INFO("challenges " << v.challenges << " completed " << v.challenges_completed << " deadline " << v.deadline_s
                     << " s, slowest answer " << v.max_answer_s << " s");
  CHECK(v.challenges > 50);
  CHECK(v.challenges_completed == v.challenges);
  CHECK(v.challenges_missed == 0);
  CHECK(v.misses_announced == 0);
  CHECK(v.max_answer_s < v.deadline_s);
  CHECK(v.segments_passed == v.challenges);
  CHECK(s.quarantines_by_cause.empty());
}

TEST_CASE("segments: replies that overload the link arrive late but inside the derived deadline: no miss",
          "[segment][verify][sim][deadline]") {
  // The 1 Gbit/s default: every segment's start state (4.7 MB) to both
  // neighbours every 4 steps of 3.6 ms is several times the uplink; the
  // backlog grows through the run and the derived deadline covers it.
  auto ov = fast_link_run("none");
  std::erase(ov, std::string("sim.bandwidth_mbps=100000"));
  std::erase(ov, std::string("sim.step_ms=10"));
  const auto s = run(ov, "segment-slow-link");
  const auto& v = s.verification;
  INFO("challenges " << v.challenges << " completed " << v.challenges_completed << " deadline " << v.deadline_s
                     << " s, slowest answer " << v.max_answer_s << " s");
  CHECK(v.challenges > 50);
  CHECK(v.challenges_missed == 0);
  CHECK(v.max_answer_s > 0.05);  // late by the step clock: many segments' time
  CHECK(v.max_answer_s < v.deadline_s);
  CHECK(s.quarantines_by_cause.empty());
  CHECK(s.detection.honest_quarantined == 0);
}
