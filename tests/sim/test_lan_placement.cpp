// pipeline.placement = auto in murmur peer (run/pipeline_plan.hpp): the
// LAN processes lay the pipeline out from the config alone, exactly as
// murmur sim does (same cut, same machine for every node, same predicted
// makespans), but compute at their real speed (slowdown 1); and murmur
// peer no longer calls the declared speeds, links and pipeline.placement
// unused.
#include <algorithm>
#include <catch2/catch.hpp>

#include "run/config_schema.hpp"
#include "run/key_usage.hpp"
#include "run/pipeline_plan.hpp"
#include "run/run_data.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

// A heavy first layer and light later ones; machine 0 (and 3, replica 1's
// first, in a hybrid) is 4x slower.
RunConfig heterogeneous(const std::string& placement, const std::string& replicas, const std::string& spares) {
  return parse_config("", "test",
                      {"data.dataset=synthetic", "data.train_samples=640", "data.test_samples=100",
                       "model.arch=flatten,linear:256,relu,linear:32,relu,linear:32,relu,linear:10", "train.epochs=1",
                       "train.batch=64", "pipeline.stages=3", "pipeline.microbatches=4", "pipeline.replicas=" + replicas,
                       "pipeline.spares=" + spares, "sim.slow_peers=" + std::string(replicas == "1" ? "0" : "0,3"), "sim.slow_factor=4",
                       "pipeline.placement=" + placement});
}

}  // namespace

TEST_CASE("placement = auto: murmur peer's layout is murmur sim's for the same config", "[placement][pipeline]") {
  for (const auto& [replicas, spares] : {std::pair{"1", "0"}, std::pair{"1", "1"}, std::pair{"2", "1"}}) {
    INFO("replicas " << replicas << ", spares " << spares);
    const RunConfig c = heterogeneous("auto", replicas, spares);
    const run_data data = load_run_data(c);
    const pipeline_plan sim = make_pipeline_plan(c, *data.train, /*simulated=*/true);
    const pipeline_plan lan = make_pipeline_plan(c, *data.train, /*simulated=*/false);
    CHECK(lan.placement == "auto");
    CHECK(lan.machine_of == sim.machine_of);
    REQUIRE(lan.ranges.size() == sim.ranges.size());
    for (size_t s = 0; s < lan.ranges.size(); ++s) {
      CHECK(lan.ranges[s].begin == sim.ranges[s].begin);
      CHECK(lan.ranges[s].end == sim.ranges[s].end);
    }
    CHECK(lan.predicted_batch_s == sim.predicted_batch_s);
    CHECK(lan.predicted_index_batch_s == sim.predicted_index_batch_s);
    CHECK(lan.predicted_batch_s < lan.predicted_index_batch_s);
    // Stage 0 (the heavy one) leaves the slow machine 0: not the index layout.
    CHECK(lan.machine_of[0] != 0);
    // Spares stay on their own machines.
    for (uint32_t n = static_cast<uint32_t>(lan.replicas) * lan.stages; n < lan.nodes(); ++n) CHECK(lan.machine_of[n] == n);
    // A LAN machine computes at its real speed; the simulated one at the declared.
    for (double x : lan.slowdown) CHECK(x == 1.0);
    CHECK(sim.slowdown[0] > 1.0);
    // Every replica's nodes are a permutation of its own block of machines.
    for (uint16_t r = 0; r < lan.replicas; ++r) {
      std::vector<uint32_t> m;
      for (uint16_t s = 0; s < lan.stages; ++s) m.push_back(lan.machine_of[stage_node(r, s, lan.stages)]);
      std::sort(m.begin(), m.end());
      for (uint16_t s = 0; s < lan.stages; ++s) CHECK(m[s] == static_cast<uint32_t>(r) * lan.stages + s);
    }
  }
  // And what murmur sim then runs (summary's per-stage machine and layers).
  const RunConfig c = heterogeneous("auto", "1", "0");
  const pipeline_plan lan = make_pipeline_plan(c, *load_run_data(c).train);
  auto dir = scratch("lan-placement-sim");
  const auto s = run_simulation(c, dir.string());
  REQUIRE(s.pipeline.per_stage.size() == lan.stages);
  for (const auto& st : s.pipeline.per_stage) {
    INFO("stage " << st.stage);
    CHECK(st.machine == lan.machine_of[st.node]);
    CHECK(st.layer_begin == lan.ranges[st.stage].begin);
    CHECK(st.layer_end == lan.ranges[st.stage].end);
  }
  CHECK(s.pipeline.predicted_batch_s == lan.predicted_batch_s);
}

TEST_CASE("placement = index: murmur peer runs stage s on peer.index s and still predicts both layouts",
          "[placement][pipeline]") {
  const RunConfig c = heterogeneous("index", "1", "1");
  const pipeline_plan lan = make_pipeline_plan(c, *load_run_data(c).train);
  CHECK(lan.placement == "index");
  for (uint32_t n = 0; n < lan.nodes(); ++n) CHECK(lan.machine_of[n] == n);
  CHECK(lan.predicted_batch_s > 0);
  CHECK(lan.predicted_batch_s == lan.predicted_index_batch_s);
}

TEST_CASE("murmur peer pipelines use pipeline.placement and the declared speeds and links", "[placement][key_usage]") {
  for (const char* replicas : {"1", "2"}) {
    INFO("replicas " << replicas);
    const RunConfig c = parse_config(
        "", "test",
        {"pipeline.stages=2", std::string("pipeline.replicas=") + replicas, "pipeline.placement=auto",
         "sim.slow_peers=1", "sim.slow_factor=3", "sim.speed_spread=0.5",
         std::string("sim.link_classes=") + (replicas[0] == '1' ? "office:1,home:1" : "office:2,home:2"),
         "sim.latency_ms=2"});
    CHECK(check_key_usage(c, run_host::peer, "test.toml").empty());
    CHECK(check_key_usage(c, run_host::sim, "test.toml").empty());
  }
  // What a LAN pipeline still does not use: the simulated network's windows and loss.
  const RunConfig c = parse_config("", "test", {"pipeline.stages=2", "sim.loss=0.1"});
  CHECK_THAT(check_key_usage(c, run_host::peer, "test.toml"), Catch::Contains("sim.loss = 0.1"));
}
