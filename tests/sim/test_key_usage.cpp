// Key usage per kind of run: trust keys a run would not apply are refused,
// other unused keys are named in a warning, defaults are never reported.
#include <catch2/catch.hpp>
#include <filesystem>

#include "run/config_schema.hpp"
#include "run/key_usage.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
namespace fs = std::filesystem;

namespace {

RunConfig cfg_of(const std::vector<std::string>& overrides) { return parse_config("", "test.toml", overrides); }

std::string refusal(const RunConfig& c, run_host host) {
  try {
    check_key_usage(c, host, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("pipeline runs refuse verify.* and attack.*, naming every key and the mode", "[config][key_usage]") {
  for (run_host host : {run_host::sim, run_host::peer})
    for (const char* replicas : {"1", "2"}) {
      INFO("host " << (host == run_host::sim ? "sim" : "peer") << ", replicas " << replicas);
      auto c = cfg_of({"pipeline.stages=2", std::string("pipeline.replicas=") + replicas, "verify.rate=0.1",
                       "attack.kind=gaussian", "attack.fraction=0.25"});
      const std::string msg = refusal(c, host);
      CHECK_THAT(msg, Catch::Contains("pipeline runs do not apply") && Catch::Contains("verify.rate = 0.1") &&
                          Catch::Contains("attack.kind = gaussian") && Catch::Contains("attack.fraction = 0.25") &&
                          Catch::Contains("test.toml") && Catch::Contains("run data-parallel"));
      CHECK_THAT(msg, Catch::Contains(host == run_host::sim ? "murmur sim" : "murmur peer"));
      CHECK_THAT(msg, Catch::Contains(replicas[0] == '1' ? ", pipeline (" : ", hybrid ("));
    }
}

TEST_CASE("detection and robust mixing: refused by a one-replica pipeline, applied by a hybrid", "[config][key_usage]") {
  for (const char* key : {"detect.method=rank", "gossip.robust=median", "gossip.robust_trim=0.3", "gossip.clip_radius=2",
                          "detect.window=20"}) {
    INFO(key);
    auto pipe = cfg_of({"pipeline.stages=3", key});
    const std::string msg = refusal(pipe, run_host::sim);
    CHECK_THAT(msg, Catch::Contains(std::string(key).substr(0, std::string(key).find('='))) &&
                        Catch::Contains("hybrid run's gossip"));
    auto hybrid = cfg_of({"pipeline.stages=3", "pipeline.replicas=2", key});
    CHECK(refusal(hybrid, run_host::sim).empty());
    CHECK(refusal(hybrid, run_host::peer).empty());
    CHECK(check_key_usage(hybrid, run_host::sim, "test.toml").empty());
  }
}

TEST_CASE("data-parallel runs apply every trust key", "[config][key_usage]") {
  auto c = cfg_of({"verify.rate=0.1", "attack.kind=sign_flip", "attack.fraction=0.25", "detect.method=rank",
                   "gossip.robust=krum", "gossip.clip_radius=1"});
  for (run_host host : {run_host::sim, run_host::peer}) CHECK(check_key_usage(c, host, "test.toml").empty());
  for (const auto& key : config_keys())
    if (is_trust_key(key)) {
      INFO(key);
      CHECK(key_used(key, {run_host::sim, run_layout::data_parallel}));
      CHECK(key_used(key, {run_host::peer, run_layout::data_parallel}));
      CHECK_FALSE(key_used(key, {run_host::sim, run_layout::pipeline}));
      CHECK_FALSE(key_used(key, {run_host::peer, run_layout::pipeline}));
    }
}

TEST_CASE("keys a mode does not use get one warning line naming them", "[config][key_usage]") {
  // murmur sim, data parallel: peer.* and pipeline layout keys.
  auto c = cfg_of({"peer.count=3", "peer.keys=k", "pipeline.microbatches=8"});
  std::string w = check_key_usage(c, run_host::sim, "test.toml");
  CHECK_THAT(w, Catch::Contains("murmur sim, data-parallel") && Catch::Contains("peer.count = 3") &&
                    Catch::Contains("peer.keys = k") && Catch::Contains("pipeline.microbatches = 8") &&
                    Catch::Contains("test.toml"));
  CHECK(w.find('\n') == std::string::npos);
  // murmur peer, data parallel: sim.*; it honours run.stop_after and checkpoint.every.
  c = cfg_of({"sim.latency_ms=5", "sim.peers=4", "run.stop_after=3", "checkpoint.every=10", "peer.count=3"});
  w = check_key_usage(c, run_host::peer, "test.toml");
  CHECK_THAT(w, Catch::Contains("murmur peer, data-parallel") && Catch::Contains("sim.latency_ms = 5") &&
                    Catch::Contains("sim.peers = 4"));
  CHECK_THAT(w, !Catch::Contains("peer.count") && !Catch::Contains("run.stop_after") &&
                    !Catch::Contains("checkpoint.every"));
  // Pipelines: gossip.every, data.partition, sim.peers; not the keys they use.
  c = cfg_of({"pipeline.stages=2", "pipeline.replicas=2", "gossip.every=4", "data.partition=dirichlet", "sim.peers=4",
              "sim.gflops=10", "gossip.threshold=0.1", "peer.heartbeat_ms=20"});
  w = check_key_usage(c, run_host::sim, "test.toml");
  CHECK_THAT(w, Catch::Contains("gossip.every = 4") && Catch::Contains("data.partition = dirichlet") &&
                    Catch::Contains("sim.peers = 4"));
  CHECK_THAT(w, !Catch::Contains("sim.gflops") && !Catch::Contains("gossip.threshold") &&
                    !Catch::Contains("heartbeat"));
  // One replica: no gossip at all, so gossip.threshold is unused (a warning, not a trust key).
  c = cfg_of({"pipeline.stages=2", "gossip.threshold=0.1"});
  CHECK_THAT(check_key_usage(c, run_host::sim, "test.toml"), Catch::Contains("gossip.threshold = 0.1"));
  // murmur peer as a pipeline node: the simulated network's loss is not
  // used; the cost model and the declared links and speeds (the layout's,
  // run/pipeline_plan.hpp) are.
  c = cfg_of({"pipeline.stages=2", "sim.loss=0.1", "sim.latency_ms=3", "sim.gflops=10", "sim.slow_peers=1",
              "peer.donors=3"});
  w = check_key_usage(c, run_host::peer, "test.toml");
  CHECK_THAT(w, Catch::Contains("sim.loss = 0.1") && Catch::Contains("peer.donors = 3"));
  CHECK_THAT(w, !Catch::Contains("sim.gflops") && !Catch::Contains("sim.latency_ms") && !Catch::Contains("sim.slow_peers"));
}

TEST_CASE("defaults are never reported, whether left out or written out", "[config][key_usage]") {
  for (run_host host : {run_host::sim, run_host::peer})
    for (auto layout : {std::vector<std::string>{}, std::vector<std::string>{"pipeline.stages=2"},
                        std::vector<std::string>{"pipeline.stages=2", "pipeline.replicas=2"}})
      CHECK(check_key_usage(cfg_of(layout), host, "test.toml").empty());
  // A pipeline config that spells out trust keys at their defaults runs.
  auto c = parse_config(to_toml(RunConfig{}), "all-defaults.toml", {"pipeline.stages=2"});
  CHECK(check_key_usage(c, run_host::sim, "all-defaults.toml").empty());
}

TEST_CASE("every config in configs/ passes the key check in sim and peer, pipelines included", "[config][key_usage]") {
  int pipelines = 0;
  for (auto& e : fs::directory_iterator(fs::path(MURMUR_SOURCE_DIR) / "configs")) {
    if (e.path().extension() != ".toml") continue;
    INFO(e.path().filename());
    const RunConfig c = load_config(e.path().string());
    for (run_host host : {run_host::sim, run_host::peer}) CHECK_NOTHROW(check_key_usage(c, host, e.path().string()));
    pipelines += c.stages > 1;
  }
  CHECK(pipelines >= 3);
}

TEST_CASE("every key has a documented usage, and docs name the rule", "[config][key_usage]") {
  const std::string doc = config_doc_markdown();
  CHECK_THAT(doc, Catch::Contains("| used by |") && Catch::Contains("No key is silently ignored"));
  for (const auto& key : config_keys()) {
    INFO(key);
    CHECK_FALSE(key_usage_text(key).empty());
  }
  CHECK(key_usage_text("run.seed") == "all");
  CHECK(key_usage_text("attack.kind") == "data-parallel");
  CHECK(key_usage_text("detect.method") == "data-parallel, hybrid");
  CHECK(key_usage_text("sim.loss") == "sim");
  CHECK(key_usage_text("sim.latency_ms") == "sim, peer pipeline, peer hybrid");
  CHECK(key_usage_text("pipeline.placement") == "pipeline, hybrid");
  CHECK(key_usage_text("sim.peers") == "sim data-parallel");
  CHECK(key_usage_text("peer.heartbeat_ms") == "peer, sim pipeline, sim hybrid");
}

TEST_CASE("run_simulation refuses a pipeline with an attack before it starts", "[sim][key_usage]") {
  auto c = cfg_of({"data.dataset=synthetic", "pipeline.stages=2", "attack.kind=gaussian", "attack.fraction=0.25"});
  const auto dir = test::scratch("key-usage-refused");
  CHECK_THROWS_WITH(run_simulation(c, dir.string()), Catch::Contains("attack.kind = gaussian"));
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("turning an unapplied trust key off is a warning, not a refusal", "[config][key_usage]") {
  // Defaults may turn protections on (detection, clipping); a pipeline config
  // that turns them off again loses nothing.
  RunConfig on;
  on.detect_method = "rank";
  on.robust = "median";
  on.verify_rate = 0.1;
  // verify.rate's own default (auto) turns nothing on in a pipeline; 0 is the off the test needs.
  auto c = cfg_of({"pipeline.stages=2", "gossip.robust=none", "verify.rate=0"});
  const auto u = find_unused_keys(c, run_kind_of(c, run_host::sim), on);
  CHECK(u.refused.empty());
  REQUIRE(u.ignored.size() == 3);
  CHECK(u.ignored[0] == "gossip.robust = none");
  // Turning one on is refused.
  c = cfg_of({"pipeline.stages=2", "gossip.robust=median"});
  CHECK(find_unused_keys(c, run_kind_of(c, run_host::sim), RunConfig{}).refused ==
        std::vector<std::string>{"gossip.robust = median"});
}

TEST_CASE("the start-up keys: used by murmur peer, reported by murmur sim", "[config][key_usage]") {
  const std::vector<std::string> start{"peer.count=3", "peer.min_peers=2", "peer.start_timeout_ms=5000",
                                       "peer.on_start_timeout=start"};
  auto c = cfg_of(start);
  CHECK(c.min_peers == 2);
  CHECK(c.start_timeout_ms == 5000);
  CHECK(c.on_start_timeout == "start");
  CHECK(check_key_usage(c, run_host::peer, "test.toml").empty());
  const std::string w = check_key_usage(c, run_host::sim, "test.toml");
  CHECK_THAT(w, Catch::Contains("peer.min_peers = 2") && Catch::Contains("peer.start_timeout_ms = 5000") &&
                    Catch::Contains("peer.on_start_timeout = start"));
  // A pipeline node waits for its first step (peer.start_timeout_ms), but
  // every node is needed: min_peers and the policy are not its keys.
  auto p = start;
  p.insert(p.end(), {"pipeline.stages=3", "peer.count=3"});
  const std::string wp = check_key_usage(cfg_of(p), run_host::peer, "test.toml");
  CHECK_THAT(wp, Catch::Contains("peer.min_peers = 2") && Catch::Contains("peer.on_start_timeout = start"));
  CHECK_THAT(wp, !Catch::Contains("start_timeout_ms"));
  // Bounds: 1..peer.count (0 = peer.count), a known policy.
  CHECK_THROWS_WITH(cfg_of({"peer.count=3", "peer.min_peers=4"}), Catch::Contains("peer.min_peers = 4") &&
                                                                      Catch::Contains("peer.count = 3"));
  CHECK_THROWS_AS(cfg_of({"peer.on_start_timeout=wait"}), ConfigError);
  CHECK_THROWS_AS(cfg_of({"peer.start_timeout_ms=0"}), ConfigError);
}
