// verify.scheme = segment in the simulator (issue 14 item 1): provers commit
// to segments of K steps, verifiers replay challenged segments bit for bit.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "actors/segment_verifier.hpp"
#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

constexpr int K = 8;

// 8 peers on a ring, 1000 samples each: 32 steps, 4 segments per peer.
std::vector<std::string> small_run(double rate, const std::string& robust = "none") {
  return {"data.train_samples=8000", "data.test_samples=500", "train.epochs=2",    "gossip.robust=" + robust,
          "verify.scheme=segment",   "verify.segment=" + std::to_string(K),        "verify.rate=" + std::to_string(rate)};
}

RunConfig config(std::vector<std::string> overrides) {
  return load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml", overrides);
}

bool is_attacker(const sim_summary& s, uint32_t peer) {
  return std::find(s.attackers.begin(), s.attackers.end(), peer) != s.attackers.end();
}

}  // namespace

TEST_CASE("segment challenge probability: the d verifiers together catch any cheating steps at least as often as "
          "per-step checks",
          "[segment][verify]") {
  CHECK(segment_challenge_probability(0, 3, 64) == 0);
  CHECK(segment_challenge_probability(1, 1, 8) == 1);
  CHECK(segment_challenge_probability(0.05, 3, 1) == Approx(0.05 / 3));
  for (double rate : {0.01, 0.05, 0.2, 1.0})
    for (size_t layers : {1, 3, 8})
      for (uint64_t k : {1, 8, 64, 256})
        for (uint32_t d : {1, 2, 4, 8}) {
          const double q = segment_challenge_probability(rate, layers, k);
          const double p = 1 - std::pow(1 - rate / static_cast<double>(layers), d);  // today's, per cheating step
          for (uint64_t m = 1; m <= k; ++m) {
            INFO("rate " << rate << " L " << layers << " K " << k << " d " << d << " m " << m);
            CHECK(1 - std::pow(1 - q, d) >= 1 - std::pow(1 - p, static_cast<double>(m)) - 1e-12);
          }
        }
}

TEST_CASE("verify.scheme = segment: accepted in a data-parallel sim, refused where the replay cannot follow",
          "[segment][config]") {
  CHECK_NOTHROW(config(small_run(0.1)));
  auto refused = [](std::string extra, std::string says) {
    auto ov = small_run(0.1);
    ov.push_back(extra);
    INFO(extra);
    CHECK_THROWS_WITH(config(ov), Catch::Contains("verify.scheme = segment") && Catch::Contains(says));
  };
  // Robust mixing replays (its state is in the boundary): the defaults work.
  CHECK_NOTHROW(config({"verify.rate=0.1", "verify.scheme=segment"}));
  for (std::string rule : {"clipped_gossip", "centered_clip", "median", "trimmed_mean", "krum"})
    CHECK_NOTHROW(config(small_run(0.1, rule)));
  refused("detect.method=rank", "detect.method");
  refused("attack.kind=gaussian", "attack.kind = gaussian");
  refused("pipeline.stages=2", "pipeline.stages");
  refused("train.device=cuda", "train.device");
  refused("offload.to=1", "offload.to");
  // The step scheme keeps its defaults (robust mixing on).
  CHECK_NOTHROW(config({"verify.rate=0.1", "verify.scheme=step"}));
}

TEST_CASE("segment verification: an honest run quarantines nobody, and challenged segments replay and pass",
          "[segment][verify][sim]") {
  const std::string robust = GENERATE(std::string("none"), std::string("clipped_gossip"));
  INFO("gossip.robust = " << robust);
  const auto dir = scratch("segment-honest-" + robust);
  const auto s = run_simulation(config(small_run(0.5, robust)), dir.string());
  const auto& v = s.verification;
  INFO("segments challenged " << v.segments_challenged << " passed " << v.segments_passed << " failed "
                              << v.segments_failed);
  CHECK(s.attackers.empty());
  CHECK(s.detection.fp == 0);
  CHECK(s.detection.honest_quarantined == 0);
  CHECK(v.segment_commits > 0);
  CHECK(v.commits == 0);  // no per-step commitments in this scheme
  CHECK(v.segments_challenged > 0);
  CHECK(v.segments_passed > 0);
  CHECK(v.segments_failed == 0);
  CHECK(v.challenges_missed == 0);  // an honest prover is never charged a miss
  CHECK(v.verified_gflop > 0);  // credit: the work replayed
  // summary.json (valid JSON: parse throws on a nan) names the segment
  // scheme's retention, not the step scheme's per-step transcripts.
  const auto js = nlohmann::json::parse(murmur::test::slurp(dir / "summary.json"))["verification"];
  CHECK(js.at("segment_steps") == K);
  CHECK(js.at("boundary_store_mb_per_peer").get<double>() > 0);
  CHECK(!js.contains("boundary_mb_per_peer"));  // a stored boundary costs no memory
  CHECK(!js.contains("keep_steps"));
  CHECK(!js.contains("transcript_mb_per_peer"));
}

TEST_CASE("segment verification: each compute cheater is quarantined by its honest neighbours, no honest peer",
          "[segment][verify][sim]") {
  // where 0: cheats every step from step 3; 1: only in steps right after a
  // boundary (1, K+1, 2K+1, ...), guessing the boundaries are what is checked.
  // Every cheat with gossip.robust = none; two with the default
  // clipped_gossip (its replay state is the reference distance).
  struct cheat_run {
    std::string kind;
    int where;
    std::string robust;
  };
  std::vector<cheat_run> runs;
  for (std::string kind : {"skip_product", "perturb", "half_batch", "replay"})
    for (int where : {0, 1}) runs.push_back({kind, where, "none"});
  runs.push_back({"perturb", 0, "clipped_gossip"});
  runs.push_back({"skip_product", 1, "clipped_gossip"});
  for (const auto& [kind, where, robust] : runs) {
      auto ov = small_run(1.0, robust);
      ov.insert(ov.end(), {"attack.kind=" + kind, "attack.fraction=0.25", "attack.eps=0.01"});
      if (where == 0) ov.insert(ov.end(), {"attack.start_step=3", "attack.every=1"});
      else ov.insert(ov.end(), {"attack.start_step=1", "attack.every=" + std::to_string(K)});
      const auto s =
          run_simulation(config(ov), scratch("segment-" + kind + std::to_string(where) + "-" + robust).string());
      const auto& v = s.verification;
      INFO("cheat " << kind << " where " << where << " gossip.robust " << robust << ": tp " << s.detection.tp << " fn " << s.detection.fn << " fp "
                    << s.detection.fp << ", segments failed " << v.segments_failed << " passed " << v.segments_passed);
      REQUIRE(s.attackers.size() == 2);
      CHECK(s.detection.tp == 2);  // every honest neighbour of each cheater quarantined it
      CHECK(s.detection.fp == 0);
      CHECK(s.detection.honest_quarantined == 0);
      CHECK(v.segments_failed > 0);
      CHECK(v.segments_passed > 0);
      for (const auto& [peer, n] : v.misses_by_prover) CHECK(is_attacker(s, peer));  // honest peers: no miss
      CHECK(v.evidence_rejected == 0);
      // The first differing step named is a cheating step.
      for (auto& [peer, step] : v.first_caught_step) {
        CHECK(is_attacker(s, peer));
        if (where == 0) CHECK(step >= 3);
        else CHECK((step - 1) % K == 0);
      }
      CHECK(v.first_caught_step.size() == 2);
    }
}

TEST_CASE("segment verification: checks on a thread beside the simulation give the run they give inline",
          "[segment][verify][sim][check_worker]") {
  // A cheater and honest peers: verdicts, quarantines and every metric
  // must not depend on where (or how fast) the replays ran.
  auto ov = small_run(1.0);
  ov.insert(ov.end(), {"attack.kind=perturb", "attack.fraction=0.25", "attack.eps=0.01", "attack.start_step=3",
                       "attack.every=1"});
  const auto inline_dir = scratch("segment-checks-inline"), thread_dir = scratch("segment-checks-thread");
  const auto a = run_simulation(config(ov), inline_dir.string(), {}, "", nullptr, 1);
  const auto b = run_simulation(config(ov), thread_dir.string(), {}, "", nullptr, 2);
  CHECK(a.verification.segments_failed > 0);
  CHECK(a.detection.tp == 2);
  CHECK(a.detection.fp == 0);
  CHECK(b.verification.segments_challenged == a.verification.segments_challenged);
  CHECK(b.verification.segments_passed == a.verification.segments_passed);
  CHECK(b.verification.segments_failed == a.verification.segments_failed);
  CHECK(b.verification.first_caught_step == a.verification.first_caught_step);
  CHECK(b.detection.tp == a.detection.tp);
  CHECK(b.detection.fp == a.detection.fp);
  CHECK(b.virtual_time_s == a.virtual_time_s);
  CHECK(murmur::test::slurp(thread_dir / "metrics.jsonl") == murmur::test::slurp(inline_dir / "metrics.jsonl"));
}
