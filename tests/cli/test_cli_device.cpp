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

TEST_CASE("train.device = cuda with a compute cheat gets as far as the device: cheats run on a GPU peer",
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
}

TEST_CASE("train.device = cuda with a pipeline trains its stages on the GPU, or ends saying why there is none",
          "[cli][device]") {
  const murmur::cuda_probe probe = murmur::probe_cuda();
  const auto out = scratch_path("device-pipeline");
  auto r = murmur_run("sim --quiet " + kSmoke + " --set train.device=cuda:0 --set pipeline.stages=2 --out " +
                      out.string());
  INFO(r.output);
  if (probe.device_count > 0) {
    REQUIRE(r.code == 0);
    CHECK(summary_of(out)["device"].get<std::string>().rfind("cuda:0 (", 0) == 0);
    return;
  }
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("murmur sim: error: train.device = cuda:0: " + probe.reason));
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

TEST_CASE("offload with a GPU: the offloading peers train on the CPU, the others where train.device says",
          "[cli][device][offload]") {
  const murmur::cuda_probe probe = murmur::probe_cuda();
  const std::string offload = " --set offload.to=0 --set offload.peers=3";
  const std::string gpu0 = probe.device_count > 0 ? "cuda:0 (" + probe.names[0] + ")" : "";
  // auto: peer 3 offloads, so it trains on the CPU; the others (the helper
  // among them) on what auto finds.
  const auto out = scratch_path("device-offload-auto");
  auto r = murmur_run("sim --quiet " + kSmoke + offload + " --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  auto s = summary_of(out);
  REQUIRE(s["devices"].size() == 4);
  CHECK(s["devices"][3] == "cpu");
  for (int i = 0; i < 3; ++i) CHECK(s["devices"][i] == (probe.device_count > 0 ? gpu0 : "cpu"));
  CHECK(s["offload"]["helper"] == 0);
  // cuda: accepted by validation (no "not supported on a GPU" refusal).
  // Without a GPU it ends as any cuda run there does; with one, the
  // offloading peer is on the CPU and the others on the GPU.
  const auto cuda = scratch_path("device-offload-cuda");
  r = murmur_run("sim --quiet " + kSmoke + offload + " --set train.device=cuda --out " + cuda.string());
  INFO(r.output);
  CHECK_THAT(r.output, !Catch::Contains("not supported on a GPU"));
  if (probe.device_count == 0) {
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Catch::Contains("murmur sim: error: train.device = cuda: " + probe.reason));
    CHECK_FALSE(fs::exists(cuda));
    return;
  }
  WARN("a CUDA device is present (" << probe.names[0] << "): checking the mixed run on it");
  REQUIRE(r.code == 0);
  s = summary_of(cuda);
  CHECK(s["devices"][3] == "cpu");
  CHECK(s["devices"][0] == gpu0);
  CHECK(s["device"] == "mixed");
}

TEST_CASE("murmur peer: train.device = cuda on a peer that offloads is a config error naming both keys",
          "[cli][device][offload]") {
  const auto dir = scratch_path("device-peer-offload");
  std::filesystem::create_directories(dir);
  std::string keys[2];
  for (int i = 0; i < 2; ++i) {
    const auto kd = dir / ("keys" + std::to_string(i));
    REQUIRE(murmur_run("keygen --out " + kd.string()).code == 0);
    std::ifstream in(kd / "peer.pub");
    std::getline(in, keys[i]);
  }
  std::ofstream(dir / "authorized_peers") << keys[0] << " helper\n" << keys[1] << " weak\n";
  const auto out = dir / "run";
  const std::string base = "peer --config " + source_path("configs/lan-3.toml") + " --listen tcp://127.0.0.1:1 --out " +
                           out.string() + " --set peer.count=2 --set peer.index=1 --set peer.keys=" +
                           (dir / "keys1").string() + " --set peer.authorized_peers=" +
                           (dir / "authorized_peers").string() + " --set offload.to=helper --set offload.peers=1";
  for (const char* choice : {"cuda", "cuda:0"}) {
    INFO(choice);
    auto r = murmur_run(base + " --set train.device=" + choice);
    CHECK(r.code == 2);
    CHECK_THAT(r.output, Catch::Contains(std::string("murmur peer: config error: train.device = ") + choice +
                                         " with offload.peers = 1 naming this peer (peer.index = 1)") &&
                             Catch::Contains("set train.device = cpu or auto"));
    CHECK_THAT(r.output, !Catch::Contains("listening on"));
    CHECK_FALSE(fs::exists(out));
  }
}
