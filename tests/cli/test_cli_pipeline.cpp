// The pipeline from the command line: `murmur sim` prints the schedule's
// efficiency and the take-over timeline, `murmur sweep` writes the
// efficiency table, and `murmur sim --resume` continues a stopped run.
#include <catch2/catch.hpp>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

struct result {
  int code;
  std::string output;
};

result murmur(const std::string& args) {
  std::string cmd = std::string(MURMUR_BINARY_DIR) + "/murmur " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

fs::path scratch(const std::string& name) {
  fs::path p = fs::path(MURMUR_BINARY_DIR) / "test-runs" / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p;
}

// A small synthetic pipeline: 3 stages of a 4-layer MLP.
const std::string kPipe = std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml" +
                          " --set sim.loss=0 --set sim.speed_spread=0 --set data.train_samples=2000"
                          " --set data.test_samples=400 --set train.epochs=1"
                          " --set model.arch=flatten,linear:64,relu,linear:48,relu,linear:32,relu,linear:10"
                          " --set pipeline.stages=3 --set pipeline.microbatches=4";

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("murmur sim on a pipeline prints its efficiency and the take-over timeline", "[cli][pipeline]") {
  auto out = scratch("cli-pipe");
  auto r = murmur("sim " + kPipe +
                  " --set pipeline.spares=1 --set checkpoint.every=10 --set pipeline.crash_stage=2"
                  " --set pipeline.crash_step=25 --set peer.heartbeat_ms=10 --set peer.suspect_ms=20"
                  " --set peer.dead_ms=20 --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("pipeline: 3 stages x 1 replicas, 4 micro-batches, 1f1b: efficiency"));
  CHECK_THAT(r.output, Catch::Contains("verification off: pipeline.stages = 3: segments are for data-parallel peers"));
  CHECK_THAT(r.output, Catch::Contains("take-over: stage 2 of replica 0 died at step 25") &&
                           Catch::Contains("from the step-20 checkpoint"));
  CHECK(fs::exists(out / "checkpoints" / "stage-0-2.ckpt"));
  CHECK(fs::exists(out / "checkpoints" / "held" / "stage-0-2.ckpt"));  // the spare's copy
  CHECK_THAT(slurp(out / "events.jsonl"), Catch::Contains("\"rollback\""));
}

TEST_CASE("murmur sweep over pipeline keys writes the efficiency table", "[cli][pipeline]") {
  auto out = scratch("cli-pipe-sweep");
  auto r = murmur("sweep " + kPipe + " --param pipeline.schedule=gpipe,1f1b --param pipeline.microbatches=1,8 --out " +
                  out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto md = slurp(out / "sweep.md");
  CHECK_THAT(md, Catch::Contains("| efficiency | bound M/(M+S-1) | efficiency / bound |"));
  CHECK_THAT(md, Catch::Contains("| gpipe | 8 |") && Catch::Contains("| 8 / 8 / 8 |"));
  CHECK_THAT(md, Catch::Contains("| 1f1b | 8 |") && Catch::Contains("| 3 / 2 / 1 |"));
}

TEST_CASE("murmur sim --resume continues a stopped pipeline run and refuses a damaged one", "[cli][pipeline]") {
  auto out = scratch("cli-pipe-resume");
  auto r = murmur("sim " + kPipe + " --set checkpoint.every=10 --set run.stop_after=30 --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  r = murmur("sim --resume " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("resuming from") && Catch::Contains("steps per replica 63"));
  // Cut a checkpoint short: refused, named, nothing run.
  const auto victim = out / "checkpoints" / "stage-0-0.ckpt";
  fs::resize_file(victim, fs::file_size(victim) - 7);
  r = murmur("sim --resume " + out.string());
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Catch::Contains("stage-0-0.ckpt") && Catch::Contains("truncated"));
}

TEST_CASE("murmur split prints per-layer costs and a balanced cut", "[cli][pipeline]") {
  auto r = murmur("split " + kPipe + " --set pipeline.stages=2");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("linear(48->32)") && Catch::Contains("measured us/smp"));
  CHECK_THAT(r.output, Catch::Contains("modelled (murmur sim's default):  pipeline.split = \""));
  r = murmur("split " + kPipe + " --set pipeline.stages=9");
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Catch::Contains("stages"));
}

TEST_CASE("murmur split on heterogeneous nodes prints the index and the auto layout", "[cli][pipeline]") {
  auto r = murmur("split " + kPipe);
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("every node has the same speed and links"));
  r = murmur("split " + kPipe + " --set sim.slow_peers=0 --set sim.slow_factor=4 --set sim.link_classes=office:1,home:1,office:1");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("node slowdowns: 4.00 1.00 1.00"));
  CHECK_THAT(r.output, Catch::Contains("index: pipeline.split = \"") && Catch::Contains("on nodes 0,1,2  predicted"));
  CHECK_THAT(r.output, Catch::Contains("auto:  pipeline.split = \"") && Catch::Contains("ms per batch"));
}
