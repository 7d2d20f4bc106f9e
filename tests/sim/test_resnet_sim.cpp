// The new layers in whole simulated runs: a narrow ResNet-9 (groupnorm,
// residual blocks, gap) learns the synthetic set under gossip; dropout keeps
// runs byte-identical (its masks come from seeds, not global state) and is
// off during evaluation; a resnet is cut into pipeline stages at block
// boundaries; step verification works on a model with dropout.
#include <catch2/catch.hpp>
#include <filesystem>

#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;
using murmur::test::slurp;

namespace {

RunConfig smoke(std::vector<std::string> overrides) {
  return load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml", overrides);
}

}  // namespace

TEST_CASE("a narrow resnet9 trains under gossip on the synthetic set", "[sim][resnet]") {
  auto cfg = smoke({"model.arch=resnet9:4", "sim.loss=0", "train.lr=0.05"});
  auto s = run_simulation(cfg, scratch("resnet9-4").string());
  CHECK(s.steps == 96);
  CHECK(s.final_test_accuracy > 0.9);
  CHECK(s.bytes_sent_total > 0);
}

TEST_CASE("dropout: runs are byte-identical, and evaluation is deterministic", "[sim][resnet]") {
  // Dropout before the head and inside a residual body; lossy links too.
  const std::string arch =
      "model.arch=conv2d:8:3:1:1,groupnorm:4,relu,res[conv2d:8:3:1:1,groupnorm:4,relu,dropout:0.2],maxpool2d:2,"
      "flatten,dropout:0.3,linear:10";
  auto cfg = smoke({arch, "train.epochs=2"});
  auto a = scratch("dropout-a"), b = scratch("dropout-b");
  auto sa = run_simulation(cfg, a.string());
  run_simulation(cfg, b.string());
  const auto ma = slurp(a / "metrics.jsonl");
  REQUIRE(ma.size() > 100);
  CHECK(ma == slurp(b / "metrics.jsonl"));
  CHECK(sa.final_test_accuracy > 0.8);
}

TEST_CASE("a resnet splits into pipeline stages at layer (block) boundaries", "[sim][resnet]") {
  auto pipe = [](const std::string& split) {
    std::vector<std::string> o = {"data.dataset=synthetic", "data.train_samples=1200", "data.test_samples=300",
                                  "model.arch=resnet9:2",   "train.epochs=1",          "train.batch=32",
                                  "pipeline.stages=2",      "pipeline.microbatches=2"};
    if (!split.empty()) o.push_back("pipeline.split=" + split);
    return parse_config("", "test", o);
  };
  auto s = run_simulation(pipe(""), scratch("resnet-pipeline").string());
  CHECK(s.steps > 0);
  CHECK(s.final_test_accuracy > 0);
  // Cuts are by layer index and a block is one layer: right after the
  // first residual block (layer 7) is a valid cut; past the 20 layers not.
  CHECK(run_simulation(pipe("8"), scratch("resnet-pipeline-cut").string()).steps > 0);
  CHECK_THROWS(run_simulation(pipe("20"), scratch("resnet-pipeline-bad").string()));
}

TEST_CASE("step verification works on a model with dropout (no honest peer is rejected)", "[sim][resnet]") {
  // The checks are per linear layer (products and hashes of what the prover
  // committed after its own forward), so the dropout mask is never replayed.
  // verify.scheme = step: this is about the per-step checks (a rate alone runs segments here).
  auto cfg = smoke({"model.arch=flatten,linear:32,relu,dropout:0.5,linear:10", "verify.rate=0.5", "verify.scheme=step",
                    "sim.loss=0", "train.epochs=2"});
  auto s = run_simulation(cfg, scratch("dropout-verify").string());
  CHECK(s.final_test_accuracy > 0.8);
  CHECK(s.rejected == 0);
  CHECK(s.verification.enabled);
  CHECK(s.verification.checks_passed > 0);
  CHECK(s.verification.checks_failed == 0);
}
