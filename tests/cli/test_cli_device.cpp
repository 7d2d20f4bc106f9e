// train.device through the murmur binary: a bad value is a config error
// naming it; cuda on a machine without a usable GPU ends before anything
// loads or is written, saying why; auto trains on what is there and the
// summary and progress say which device each peer used. On a machine with
// a GPU the cuda cases check the GPU run instead (and say so).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gpu/cuda_backend.hpp"
#include "murmur_process.hpp"

namespace fs = std::filesystem;
using namespace murmur::test;

namespace {

const std::string kSmoke = source_path("configs/synthetic-smoke.toml") +
                           " --set data.train_samples=800 --set data.test_samples=200 --set train.epochs=1";

nlohmann::json summary_of(const fs::path& out) {
  std::ifstream in(out / "summary.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("train.device: a value that is not auto, cpu, cuda or cuda:N is a config error naming it", "[cli][device]") {
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "CUDA", "cuda:-1"}) {
    INFO(bad);
    const auto out = scratch_path("device-bad");
    auto r = murmur_run("sim " + kSmoke + " --set train.device=" + bad + " --out " + out.string());
    CHECK(r.code == 2);
    CHECK_THAT(r.output, Catch::Contains(std::string("train.device = ") + bad) &&
                             Catch::Contains("expected auto, cpu, cuda or cuda:N"));
    CHECK_FALSE(fs::exists(out));
  }
}

TEST_CASE("train.device = cuda with offload or a pipeline is refused as not supported yet; a compute cheat is not",
          "[cli][device]") {
  const auto out = scratch_path("device-verify");
  // A compute cheat on a GPU peer is a valid run: it gets as far as the
  // device (without one, the probe's error; with one, it runs).
  const bool have_gpu = murmur::probe_cuda().device_count > 0;
  auto r = murmur_run("sim --quiet " + kSmoke + " --set train.device=cuda --set verify.rate=0.2 --set attack.kind=perturb " +
                      "--set attack.fraction=0.25 --out " + out.string());
  INFO(r.output);
  CHECK(r.code == (have_gpu ? 0 : 1));
  CHECK_THAT(r.output, !Catch::Contains("not supported on a GPU yet"));
  if (!have_gpu) CHECK_FALSE(fs::exists(out));
  fs::remove_all(out);
  r = murmur_run("sim " + kSmoke + " --set train.device=cuda:0 --set pipeline.stages=2 --out " + out.string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("pipeline.stages > 1 with train.device = cuda:0"));
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("train.device = cuda without a usable GPU ends before anything loads, saying why", "[cli][device]") {
  const murmur::cuda_probe probe = murmur::probe_cuda();
  const auto out = scratch_path("device-cuda");
  if (probe.device_count > 0) {
    WARN("a CUDA device is present (" << probe.names[0] << "): checking that train.device = cuda trains on it");
    auto r = murmur_run("sim --quiet " + kSmoke + " --set train.device=cuda --out " + out.string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(summary_of(out)["device"].get<std::string>().rfind("cuda:0 (", 0) == 0);
    return;
  }
  INFO("no CUDA device here: " << probe.reason);
  for (const char* choice : {"cuda", "cuda:1"}) {
    INFO(choice);
    auto r = murmur_run("sim " + kSmoke + " --set train.device=" + choice + " --out " + out.string());
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Catch::Contains(std::string("murmur sim: error: train.device = ") + choice + ": " + probe.reason));
    CHECK_FALSE(fs::exists(out));  // not even the run directory
  }
}

TEST_CASE("train.device = auto and cpu: the summary and the progress say which device each peer used", "[cli][device]") {
  const murmur::cuda_probe probe = murmur::probe_cuda();
  const auto out = scratch_path("device-auto");
  auto r = murmur_run("sim " + kSmoke + " --out " + out.string());  // auto: the default
  INFO(r.output);
  REQUIRE(r.code == 0);
  auto s = summary_of(out);
  const std::string expected = probe.device_count > 0 ? "cuda:0 (" + probe.names[0] + ")" : "cpu";
  if (probe.device_count > 1) {
    CHECK(s["device"] == "mixed");
  } else {
    CHECK(s["device"] == expected);
    CHECK_THAT(r.output, Catch::Contains("device " + expected + "\n"));
  }
  REQUIRE(s["devices"].size() == 4);  // sim.peers
  CHECK(s["devices"][0] == expected);

  const auto cpu = scratch_path("device-cpu");
  r = murmur_run("sim --quiet " + kSmoke + " --set train.device=cpu --out " + cpu.string());
  REQUIRE(r.code == 0);
  s = summary_of(cpu);
  CHECK(s["device"] == "cpu");
  for (const auto& d : s["devices"]) CHECK(d == "cpu");
  // The device is no training setting: the same run on the CPU either way.
  if (probe.device_count == 0) CHECK(file_text(cpu / "metrics.jsonl") == file_text(out / "metrics.jsonl"));
}

TEST_CASE("murmur peer with train.device = cuda and no usable GPU ends before it listens or loads, saying why",
          "[cli][device]") {
  const murmur::cuda_probe probe = murmur::probe_cuda();
  if (probe.device_count > 0) {
    WARN("skipped: a CUDA device is present (" << probe.names[0] << "); the error case needs a machine without one");
    return;
  }
  const auto dir = scratch_path("device-peer");
  std::filesystem::create_directories(dir);
  REQUIRE(murmur_run("keygen --out " + (dir / "keys").string()).code == 0);
  std::ifstream in(dir / "keys" / "peer.pub");
  std::string key;
  std::getline(in, key);
  std::ofstream(dir / "authorized_peers") << key << " a\n";
  const auto out = dir / "run";
  auto r = murmur_run("peer --config " + source_path("configs/lan-3.toml") + " --listen tcp://127.0.0.1:1 --out " +
                      out.string() + " --set peer.count=1 --set peer.keys=" + (dir / "keys").string() +
                      " --set peer.authorized_peers=" + (dir / "authorized_peers").string() +
                      " --set train.device=cuda");
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("murmur peer: error: train.device = cuda: " + probe.reason));
  CHECK_THAT(r.output, !Catch::Contains("listening on"));
  CHECK_FALSE(fs::exists(out));
}
