// Verification on by default (issue 14 item 2): verify.rate = auto runs the
// segment scheme at default_verify_rate where it can run, and is off, saying
// why, where it cannot (run/verification_choice.hpp).
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "actors/segment_verifier.hpp"
#include "gpu/device_choice.hpp"
#include "run/config_schema.hpp"
#include "run/default_verification.hpp"
#include "run/verification_choice.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;
using murmur::test::slurp;

namespace {

RunConfig gossip_config(std::vector<std::string> overrides) {
  return load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml", overrides);
}

// train.device = cpu: on a machine with a GPU, auto would turn the default off
// (checked on its own below).
verification_choice sim_choice(std::vector<std::string> overrides) {
  overrides.insert(overrides.begin(), "train.device=cpu");
  return choose_verification(gossip_config(overrides));
}

}  // namespace

TEST_CASE("default verification: segments at the default rate in a data-parallel simulation",
          "[verify][default][config]") {
  REQUIRE(default_verify_rate > 0);  // the default is on; these tests are about that
  const RunConfig defaults;
  CHECK(get_key(defaults, "verify.rate") == "auto");
  CHECK(get_key(defaults, "verify.scheme") == "auto");
  CHECK(defaults.verify_segment == default_verify_segment);
  const auto v = sim_choice({});
  CHECK(v.on());
  CHECK(v.by_default);
  CHECK(v.scheme == "segment");
  CHECK(v.rate == default_verify_rate);
  CHECK(v.segment_steps == default_verify_segment);
  CHECK_THAT(v.line(), Catch::StartsWith("verification: segment scheme, rate ") && Catch::Contains("the default"));
  const auto js = nlohmann::json::parse(v.json());
  CHECK(js.at("scheme") == "segment");
  CHECK(js.at("rate").get<double>() == default_verify_rate);
  CHECK(js.at("segment_steps") == default_verify_segment);
  CHECK(js.at("by_default") == true);
  CHECK(!js.contains("off"));
  // What the run then reads.
  const RunConfig c = with_verification(gossip_config({"train.device=cpu"}), v);
  CHECK(c.verify_rate == default_verify_rate);
  CHECK(c.verify_scheme == "segment");
}

TEST_CASE("default verification: off, saying why, where segments cannot run", "[verify][default][config]") {
  struct off_case {
    std::vector<std::string> overrides;
    std::string says;
  };
  const std::vector<off_case> cases = {
      {{"pipeline.stages=2"}, "pipeline.stages = 2"},
      {{"detect.method=rank"}, "detect.method = rank"},
      {{"attack.kind=gaussian", "attack.fraction=0.25"}, "attack.kind = gaussian"},
      {{"offload.to=0", "offload.peers=3"}, "offload.to = 0"},
      {{"gossip.topology=hypercube", "gossip.schedule=one_peer", "gossip.robust=none"}, "gossip.schedule = one_peer"},
      {{"verify.scheme=step"}, "verify.scheme = step"},
      {{"verify.rate=0"}, "verify.rate = 0"},
  };
  for (const auto& [overrides, says] : cases) {
    INFO(says);
    const auto v = sim_choice(overrides);
    CHECK_FALSE(v.on());
    CHECK(v.scheme == "off");
    CHECK_THAT(v.off_reason, Catch::Contains(says));
    CHECK_THAT(v.line(), Catch::StartsWith("verification off: ") && Catch::Contains(says));
    const auto js = nlohmann::json::parse(v.json());
    CHECK(js.at("scheme") == "off");
    CHECK_THAT(js.at("off").get<std::string>(), Catch::Contains(says));
    const RunConfig c = with_verification(gossip_config({"train.device=cpu"}), v);
    CHECK(c.verify_rate == 0);
  }
  // train.device = cuda (validate_config does not look for a GPU).
  auto cuda = gossip_config({"train.device=cuda"});
  CHECK_THAT(choose_verification(cuda).off_reason, Catch::Contains("train.device = cuda"));
  // murmur peer, sim and a resumed run alike: the choice reads the config
  // only (a peer's replays run on a replay actor of its own; a restart
  // starts a new chain of its segments, tests/sim/test_segment_resume.cpp).
  const auto peer = choose_verification(gossip_config({"train.device=cpu"}));
  CHECK(peer.scheme == "segment");
  CHECK(peer.rate == default_verify_rate);
  CHECK(peer.segment_steps == default_verify_segment);
  CHECK(peer.by_default);
  // One predicate says why, for the default and for the refusals alike.
  CHECK(segment_obstacle_of(gossip_config({"train.device=cpu"})) == std::nullopt);
  const auto pipeline = segment_obstacle_of(gossip_config({"pipeline.stages=2"}));
  REQUIRE(pipeline);
  CHECK(pipeline->setting == "pipeline.stages = 2");
}

TEST_CASE("default verification: train.device = auto keeps a GPU run on its GPU, off", "[verify][default][config]") {
  // Whichever this machine is: with a usable GPU auto trains there and the
  // default stays off, naming it; without one the default is on.
  const resolved_device d = resolve_device(device_choice{}, 0);
  const auto v = choose_verification(gossip_config({}));
  if (d.cuda) {
    CHECK_FALSE(v.on());
    CHECK_THAT(v.off_reason, Catch::Contains("train.device = auto") && Catch::Contains(d.label));
    // Asking for segments keeps the run on the CPU (run/peer_device.hpp).
    CHECK(choose_verification(gossip_config({"verify.scheme=segment"})).scheme == "segment");
  } else {
    CHECK(v.scheme == "segment");
  }
}

TEST_CASE("explicit verification settings are honoured", "[verify][default][config]") {
  // A rate with scheme auto: segments where they run, steps where not.
  auto v = sim_choice({"verify.rate=0.1"});
  CHECK(v.scheme == "segment");
  CHECK(v.rate == 0.1);
  CHECK_FALSE(v.by_default);
  CHECK(sim_choice({"verify.rate=0.1", "detect.method=rank"}).scheme == "step");
  v = sim_choice({"verify.rate=0.1", "verify.scheme=step"});
  CHECK(v.scheme == "step");
  CHECK(v.segment_steps == 0);
  // Segments asked for at the default rate, with another K.
  v = sim_choice({"verify.scheme=segment", "verify.segment=16"});
  CHECK(v.scheme == "segment");
  CHECK(v.rate == default_verify_rate);
  CHECK(v.segment_steps == 16);
  // Segments asked for where they cannot run: refused, naming why.
  CHECK_THROWS_WITH(gossip_config({"verify.scheme=segment", "detect.method=rank"}),
                    Catch::Contains("verify.scheme = segment with detect.method = rank"));
  // murmur peer runs segments when asked for (at the default rate without one).
  v = choose_verification(gossip_config({"verify.scheme=segment", "train.device=cpu"}));
  CHECK(v.scheme == "segment");
  CHECK(v.rate == default_verify_rate);
  // verify.rate = 0 turns even an explicit segment scheme off, without refusing.
  CHECK_FALSE(sim_choice({"verify.scheme=segment", "verify.rate=0"}).on());
}

TEST_CASE("the default simulation verifies segments: challenged, replayed and passed, nobody quarantined",
          "[verify][default][sim]") {
  // configs/fmnist-gossip.toml (8 peers on a ring, each checked by its 2
  // neighbours), small data, long enough that the default rate challenges
  // about 8 segments (none with e^-8 if the constants change): q = 1 -
  // (1 - rate/L)^K per segment and verifier, the MLP commits L = 3 layers.
  const double q = segment_challenge_probability(default_verify_rate, 3, static_cast<uint64_t>(default_verify_segment));
  const int segments = static_cast<int>(std::ceil(8.0 / (16.0 * q)));
  const int batch = 16, steps_per_epoch = default_verify_segment;
  const int samples = 8 * batch * steps_per_epoch;  // one segment per epoch
  INFO("q " << q << ", " << segments << " segments per peer");
  const auto dir = scratch("default-verification");
  // train.device = cpu: on a GPU machine auto keeps the default off (above).
  const auto s = run_simulation(gossip_config({"train.device=cpu", "data.train_samples=" + std::to_string(samples),
                                               "data.test_samples=200", "train.batch=" + std::to_string(batch),
                                               "train.epochs=" + std::to_string(segments + 1)}),
                                dir.string());
  const auto& v = s.verification;
  INFO("segments committed " << v.segment_commits << " challenged " << v.segments_challenged << " passed "
                             << v.segments_passed << " failed " << v.segments_failed);
  CHECK(s.verify.scheme == "segment");
  CHECK(s.verify.by_default);
  CHECK(v.enabled);
  CHECK(v.segment_commits >= static_cast<uint64_t>(8 * segments));
  CHECK(v.segments_challenged >= 1);
  CHECK(v.segments_passed >= 1);
  CHECK(v.segments_failed == 0);
  CHECK(s.detection.honest_quarantined == 0);
  for (const auto& [cause, n] : s.quarantines_by_cause) CHECK(n == 0);
  const auto js = nlohmann::json::parse(slurp(dir / "summary.json"));
  CHECK(js.at("verify").at("scheme") == "segment");
  CHECK(js.at("verify").at("rate").get<double>() == default_verify_rate);
  CHECK(js.at("verify").at("segment_steps") == default_verify_segment);
  CHECK(js.at("verify").at("by_default") == true);
  CHECK(js.at("verification").at("segments_challenged").get<uint64_t>() >= 1);
  CHECK(js.at("verification").at("segments_passed").get<uint64_t>() >= 1);
  CHECK(js.at("verification").at("segments_failed") == 0);
  // The run directory keeps what was asked, so that --resume decides anew.
  const RunConfig back = load_config((dir / "config.toml").string());
  CHECK(get_key(back, "verify.rate") == "auto");
  CHECK(get_key(back, "verify.scheme") == "auto");
}

TEST_CASE("a pipeline simulation runs without verification by default and says why", "[verify][default][sim][pipeline]") {
  const auto dir = scratch("default-verification-pipeline");
  const auto s = run_simulation(
      load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-pipeline.toml",
                  {"data.train_samples=1024", "data.test_samples=200", "train.epochs=1", "checkpoint.every=0"}),
      dir.string());
  CHECK(s.pipeline.enabled);
  CHECK_FALSE(s.verify.on());
  CHECK_THAT(s.verify.off_reason, Catch::Contains("pipeline.stages"));
  CHECK_FALSE(s.verification.enabled);
  const auto js = nlohmann::json::parse(slurp(dir / "summary.json"));
  CHECK(js.at("verify").at("scheme") == "off");
  CHECK(js.at("verify").at("rate") == 0);
  CHECK(js.at("verify").at("by_default") == true);
  CHECK_THAT(js.at("verify").at("off").get<std::string>(),
             Catch::Contains("pipeline.stages = 4") && Catch::Contains("data-parallel"));
  CHECK(!js.contains("verification"));
}
