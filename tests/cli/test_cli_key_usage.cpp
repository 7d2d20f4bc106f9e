// No key is silently ignored: each command refuses the trust keys its run
// would not apply and warns about the other keys it does not use.
#include <catch2/catch.hpp>
#include <filesystem>

#include "murmur_process.hpp"

namespace fs = std::filesystem;
using namespace murmur::test;

namespace {

const std::string kSmoke = source_path("configs/synthetic-smoke.toml");

}  // namespace

TEST_CASE("murmur sim and sweep refuse verification and attacks in a pipeline run", "[cli][key_usage]") {
  auto r = murmur_run("sim " + kSmoke + " --set pipeline.stages=2 --set attack.kind=gaussian"
                      " --set attack.fraction=0.25 --set verify.rate=0.1 --out " + scratch_path("keys-refused").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("config error") && Catch::Contains("pipeline runs do not apply") &&
                           Catch::Contains("attack.kind = gaussian") && Catch::Contains("attack.fraction = 0.25") &&
                           Catch::Contains("verify.rate = 0.1") && Catch::Contains("murmur sim, pipeline"));
  CHECK_FALSE(fs::exists(scratch_path("keys-refused")));

  r = murmur_run("sweep " + kSmoke + " --set pipeline.stages=2 --set pipeline.replicas=2 --set attack.fraction=0.25"
                 " --param attack.kind=none,sign_flip --out " + scratch_path("keys-refused-sweep").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("attack.fraction = 0.25") && Catch::Contains("murmur sim, hybrid"));
  CHECK_FALSE(fs::exists(scratch_path("keys-refused-sweep") / "sweep.csv"));
}

TEST_CASE("murmur peer refuses verification in a pipeline node before it starts", "[cli][key_usage]") {
  auto r = murmur_run("peer --config " + source_path("configs/pipeline-lan.toml") +
                      " --listen tcp://127.0.0.1:1 --set verify.rate=0.5 --set detect.method=rank");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("verify.rate = 0.5") && Catch::Contains("detect.method = rank") &&
                           Catch::Contains("murmur peer, pipeline"));
}

TEST_CASE("keys a command does not use are named in a warning", "[cli][key_usage]") {
  // murmur peer, data parallel: the simulation's keys. The peer stops later (no keys here); the warning comes first.
  auto r = murmur_run("peer --config " + source_path("configs/lan-3.toml") + " --listen tcp://127.0.0.1:1"
                      " --set sim.latency_ms=7 --set peer.keys=" + scratch_path("keys-none").string());
  CHECK_THAT(r.output, Catch::Contains("murmur peer: warning:") && Catch::Contains("sim.latency_ms = 7"));

  // murmur sim, data parallel: peer.* keys; the run itself goes ahead.
  const auto out = scratch_path("keys-warned");
  r = murmur_run("sim " + kSmoke + " --quiet --set data.train_samples=800 --set data.test_samples=200"
                 " --set train.epochs=1 --set peer.count=3 --set pipeline.microbatches=8 --out " + out.string());
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("murmur sim: warning:") && Catch::Contains("peer.count = 3") &&
                           Catch::Contains("pipeline.microbatches = 8"));
  CHECK(fs::exists(out / "summary.json"));
}

TEST_CASE("a plain pipeline config runs without refusal or warning", "[cli][key_usage][pipeline]") {
  const auto dir = scratch_path("keys-plain-pipe");
  fs::create_directories(dir);
  std::ofstream(dir / "pipe.toml") << "[data]\ndataset = \"synthetic\"\ntrain_samples = 800\ntest_samples = 200\n"
                                   << "[model]\narch = \"flatten,linear:32,relu,linear:10\"\n"
                                   << "[train]\nepochs = 1\nbatch = 32\n"
                                   << "[pipeline]\nstages = 2\nmicrobatches = 4\n";
  auto r = murmur_run("sim " + (dir / "pipe.toml").string() + " --quiet --out " + (dir / "run").string());
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK_THAT(r.output, !Catch::Contains("warning") && !Catch::Contains("config error"));
  CHECK(fs::exists(dir / "run" / "summary.json"));
}
