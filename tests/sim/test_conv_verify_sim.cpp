// Step verification of a convolutional model in whole simulated runs: the
// cnn preset (two conv layers, two linear) on a slice of Fashion-MNIST, its
// conv layers committed and checked with the linear ones; honest peers are
// never rejected, and a peer perturbing its first conv's weight gradient is
// caught and quarantined. Seconds long.
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>

#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

RunConfig cnn_run(std::vector<std::string> extra) {
  if (!std::filesystem::exists(std::string(kFashionDir) + "/train-images-idx3-ubyte.gz") &&
      !std::filesystem::exists(std::string(kFashionDir) + "/train-images-idx3-ubyte"))
    FAIL("Fashion-MNIST not installed in " << kFashionDir << ": run scripts/setup.sh (Debian: dataset-fashion-mnist)");
  // 4 peers, each a neighbour of the other three; every commitment is
  // challenged (rate 1: a random one of the L = 4 committed layers), 16 steps
  // each. A step's transcript is about 9 MB here (the first conv's Y and dY
  // are 32 x 32 x 24 x 24 floats each): a fast link keeps the answers timely
  // and the retention (and memory) small.
  std::vector<std::string> o = {"data.dataset=fashion-mnist", "data.train_samples=2048", "data.test_samples=200",
                                "model.arch=cnn",             "train.epochs=1",          "train.batch=32",
                                "sim.peers=4",                "gossip.topology=complete", "sim.loss=0",
                                "train.lr=0.05",              "verify.rate=1",           "detect.method=none",
                                "sim.bandwidth_mbps=100000",  "verify.keep_steps=6",
                                "verify.scheme=step"};  // the per-step checks (a rate alone runs segments)
  o.insert(o.end(), extra.begin(), extra.end());
  return parse_config("", "test", o);
}

}  // namespace

TEST_CASE("cnn preset under step verification: conv layers checked, no honest peer rejected", "[sim][verify][conv]") {
  const auto s = run_simulation(cnn_run({}), scratch("cnn-verify").string());
  const auto& v = s.verification;
  INFO("commits " << v.commits << ", checks passed " << v.checks_passed << ", keep_steps " << v.keep_steps
                  << ", transcripts " << v.transcript_mb << " MB per peer, step " << v.step_seconds << " s, commit "
                  << v.commit_seconds << " s, check " << v.check_seconds << " s, accuracy " << s.final_test_accuracy);
  REQUIRE(v.enabled);
  // 4 peers x 16 steps, each commitment challenged by its 3 neighbours.
  CHECK(v.commits >= 4 * 16 * 3);
  CHECK(v.checks_passed >= v.commits / 2);
  CHECK(v.checks_failed == 0);
  CHECK(v.evidence_sent == 0);
  CHECK(s.detection.honest_quarantined == 0);
  CHECK(s.quarantines_by_cause.empty());
  CHECK(v.first_caught_step.empty());
  CHECK(s.final_test_accuracy > 0.2);  // it learns (10 classes: 0.1 by chance)
}

TEST_CASE("cnn preset: a peer perturbing its first conv's weight gradient is caught and quarantined",
          "[sim][verify][conv]") {
  const auto s = run_simulation(
      cnn_run({"attack.kind=perturb", "attack.fraction=0.25", "attack.start_step=3", "attack.eps=0.01"}),
      scratch("cnn-verify-perturb").string());
  const auto& v = s.verification;
  REQUIRE(s.attackers.size() == 1);
  INFO("checks failed " << v.checks_failed << ", evidence confirmed " << v.evidence_confirmed);
  CHECK(v.checks_failed >= 1);
  CHECK(s.detection.tp == 1);
  CHECK(s.detection.fp == 0);
  CHECK(s.detection.honest_quarantined == 0);
  CHECK(v.evidence_rejected == 0);
  for (auto& [peer, step] : v.first_caught_step) {
    CHECK(peer == s.attackers[0]);
    CHECK(step >= 3);
  }
}
