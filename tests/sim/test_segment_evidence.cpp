// Evidence relay under verify.scheme = segment (docs/trust.md, "Amortised
// commitments"): a verifier whose replay of a neighbour's segment fails
// relays the prover's reply to the prover's other verifiers, which act only
// if it hashes to the commitment they hold themselves and their own replay
// fails. So one verifier's challenge is enough for every honest neighbour
// to quarantine a cheater, and a relayer that tampers with the records
// quarantines nobody.
#include <catch2/catch.hpp>
#include <algorithm>

#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

// 8 peers on a ring, 64 steps, 16 segments of 4 steps a peer; a fast link
// (the replies never queue).
std::vector<std::string> run_with(double rate, const std::string& attack) {
  return {"data.train_samples=16000",  "data.test_samples=500", "train.epochs=2",
          "gossip.robust=none",        "verify.scheme=segment", "verify.segment=4",
          "verify.rate=" + std::to_string(rate), "sim.step_ms=10", "sim.bandwidth_mbps=100000",
          "attack.fraction=0.25",      "attack.start_step=3",   "attack.eps=0.01",
          "attack.kind=" + attack};
}

sim_summary run(std::vector<std::string> overrides, const std::string& name) {
  auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml", overrides);
  return run_simulation(cfg, scratch(name).string());
}

}  // namespace

TEST_CASE("segments: one verifier's failed replay, relayed, makes every honest neighbour quarantine the cheater",
          "[segment][verify][sim][evidence]") {
  // rate 0.1: q = 1 - (1 - 0.1/3)^4 = 0.13 per verifier and segment, so a
  // cheater's first catch is usually one neighbour's alone.
  const auto s = run(run_with(0.1, "perturb"), "segment-relay");
  const auto& v = s.verification;
  INFO("segments challenged " << v.segments_challenged << " failed " << v.segments_failed << ", evidence sent "
                              << v.evidence_sent << " confirmed " << v.evidence_confirmed << " rejected "
                              << v.evidence_rejected);
  REQUIRE(s.attackers.size() == 2);
  CHECK(s.detection.tp == 2);  // both ring neighbours of each cheater quarantined it
  CHECK(s.detection.fp == 0);
  CHECK(s.detection.honest_quarantined == 0);
  CHECK(s.quarantines_by_cause.at("evidence") == 4);
  CHECK(v.evidence_sent > 0);
  CHECK(v.evidence_confirmed > 0);  // at least one quarantine came from a relayed reply
  CHECK(v.segments_failed + v.evidence_confirmed >= 4);
  CHECK(v.evidence_rejected == 0);
  CHECK(v.challenges_missed == 0);
}

TEST_CASE("segments: evidence with tampered records quarantines nobody and is counted as rejected",
          "[segment][verify][sim][evidence]") {
  // Two peers relay every honest reply they check, one record byte
  // changed, to the prover's other verifier.
  const auto s = run(run_with(0.5, "forged_evidence"), "segment-forged-relay");
  const auto& v = s.verification;
  INFO("evidence sent " << v.evidence_sent << " confirmed " << v.evidence_confirmed << " rejected "
                        << v.evidence_rejected << " unverifiable " << v.evidence_unverifiable);
  REQUIRE(s.attackers.size() == 2);
  CHECK(v.evidence_sent > 0);
  CHECK(v.evidence_rejected > 0);
  CHECK(v.evidence_confirmed == 0);
  CHECK(v.segments_failed == 0);
  CHECK(s.quarantines_by_cause.empty());
  CHECK(s.detection.fp == 0);
  CHECK(s.detection.honest_quarantined == 0);
}

TEST_CASE("attack.kind = forged_evidence needs the segment scheme", "[segment][config]") {
  auto ov = run_with(0.5, "forged_evidence");
  ov.push_back("verify.scheme=step");
  CHECK_THROWS_WITH(load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml", ov),
                    Catch::Contains("attack.kind = forged_evidence") && Catch::Contains("verify.scheme = segment"));
}
