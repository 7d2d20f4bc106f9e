#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
namespace fs = std::filesystem;
using murmur::test::scratch;
using murmur::test::slurp;

namespace {

RunConfig smoke(std::vector<std::string> overrides = {}) {
  return load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml", overrides);
}

// Last metrics line of each peer, as text.
std::vector<std::string> last_lines(const fs::path& run, int peers) {
  std::vector<std::string> lines;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() >= static_cast<size_t>(peers));
  return {lines.end() - peers, lines.end()};
}

uint64_t field_u64(const std::string& line, const std::string& key) {
  auto p = line.find("\"" + key + "\":");
  REQUIRE(p != std::string::npos);
  return std::stoull(line.substr(p + key.size() + 3));
}

}  // namespace

TEST_CASE("same config and seed give byte-identical metrics", "[sim]") {
  // Lossy links, uneven speeds, sparse and dense rounds: everything that could go nondeterministic.
  auto cfg = smoke({"sim.loss=0.1", "sim.speed_spread=1.0", "sim.bandwidth_mbps=10"});
  auto a = scratch("det-a"), b = scratch("det-b"), c = scratch("det-c");
  run_simulation(cfg, a.string());
  run_simulation(cfg, b.string());
  const auto ma = slurp(a / "metrics.jsonl");
  REQUIRE(ma.size() > 100);
  CHECK(ma == slurp(b / "metrics.jsonl"));
  CHECK(slurp(a / "config.toml") == slurp(b / "config.toml"));
  cfg.seed = 2;
  run_simulation(cfg, c.string());
  CHECK(ma != slurp(c / "metrics.jsonl"));
}

TEST_CASE("train.eval_subset evaluates every peer on a moving window; the final evaluation uses the whole test set",
          "[sim][eval_subset]") {
  auto full = scratch("eval-full"), part = scratch("eval-part");
  const auto sf = run_simulation(smoke({"train.eval_subset=0", "verify.rate=0"}), full.string());
  const auto sp = run_simulation(smoke({"train.eval_subset=300", "verify.rate=0"}), part.string());
  // Evaluation changes no training: the same final models, evaluated on all 1000 samples.
  CHECK(sp.final_test_accuracy == sf.final_test_accuracy);
  CHECK(sp.final_test_loss == sf.final_test_loss);
  CHECK(sp.min_test_accuracy == sf.min_test_accuracy);
  // The intermediate lines differ (300 samples, another window each time)...
  std::vector<std::string> lf, lp;
  {
    std::ifstream a(full / "metrics.jsonl"), b(part / "metrics.jsonl");
    for (std::string l; std::getline(a, l);) lf.push_back(l);
    for (std::string l; std::getline(b, l);) lp.push_back(l);
  }
  REQUIRE(lf.size() == lp.size());
  REQUIRE(lf.size() > 8);
  size_t differ = 0;
  for (size_t i = 0; i + 4 < lf.size(); ++i) differ += lf[i] != lp[i];
  CHECK(differ > 0);
  // ...and the last evaluation (the final one, at the end of training) is the same line.
  for (size_t i = lf.size() - 4; i < lf.size(); ++i) CHECK(lf[i] == lp[i]);
}

TEST_CASE("the run directory holds config, metrics, summary and the curve", "[sim]") {
  auto dir = scratch("outputs");
  // verify.rate = 0: verification frames cross the network too, and the
  // per-peer bytes_sent below are the gossip's own.
  auto cfg = smoke({"verify.rate=0"});
  auto s = run_simulation(cfg, dir.string());
  for (const char* f : {"config.toml", "metrics.jsonl", "summary.json", "timing.json", "curve.tsv"})
    CHECK(fs::exists(dir / f));
  // The written config is the resolved one and parses back to the same values.
  CHECK(to_toml(parse_config(slurp(dir / "config.toml"), "config.toml")) == to_toml(cfg));
  const auto summary = slurp(dir / "summary.json");
  for (const char* k : {"final_test_accuracy", "min_test_accuracy", "bytes_sent_total", "dense_allreduce_bytes",
                        "steps", "virtual_time_s", "wall_time_s"})
    CHECK(summary.find(std::string("\"") + k + "\"") != std::string::npos);
  // Nothing wall-clock in metrics.jsonl.
  CHECK(slurp(dir / "metrics.jsonl").find("wall") == std::string::npos);
  // Bytes: what the peers counted is what crossed the simulated network.
  uint64_t sum = 0;
  for (auto& l : last_lines(dir, static_cast<int>(cfg.peers))) sum += field_u64(l, "bytes_sent");
  CHECK(sum == s.bytes_sent_total);
  CHECK(s.bytes_sent_total > 0);
  CHECK(s.final_test_accuracy > 0.9);
  CHECK(s.steps == 96);  // 3 epochs of ceil(4000 / 4 peers / batch 32) = 32 steps
}

TEST_CASE("every gossip mode trains on the synthetic set", "[sim]") {
  for (std::string mode : {"threshold", "dense", "local_sgd", "delta"}) {
    auto cfg = smoke({"gossip.mode=" + mode, "sim.loss=0"});
    if (mode == "delta") {  // every peer applies every peer's steps
      cfg.lr = 0.1 / static_cast<double>(cfg.peers);
      cfg.threshold = 2e-4;
    }
    if (mode == "local_sgd") cfg.every = 4;
    auto s = run_simulation(cfg, scratch("mode-" + mode).string());
    INFO("mode " << mode);
    CHECK(s.final_test_accuracy > 0.9);
    CHECK(s.bytes_sent_total > 0);
    CHECK(s.rejected == 0);
  }
}

TEST_CASE("a larger threshold sends fewer bytes", "[sim]") {
  uint64_t prev = UINT64_MAX;
  for (std::string tau : {"0", "0.001", "0.01", "0.05"}) {
    auto s = run_simulation(smoke({"gossip.threshold=" + tau, "sim.loss=0"}), scratch("tau-" + tau).string());
    INFO("tau " << tau);
    CHECK(s.bytes_sent_total < prev);
    prev = s.bytes_sent_total;
  }
}

// Every config in configs/ runs, reduced to a few hundred steps; the
// data-parallel and the pipeline ones are two CTest entries so that each
// stays well inside the timeout on a loaded machine. Returns how many ran.
static int run_every_config(bool pipelines) {
  int n = 0;
  for (auto& e : fs::directory_iterator(fs::path(MURMUR_SOURCE_DIR) / "configs")) {
    if (e.path().extension() != ".toml") continue;
    INFO("config " << e.path().filename());
    const RunConfig full = load_config(e.path().string());
    if ((full.stages > 1) != pipelines) continue;
    // Enough samples that each peer's shard still gives a few dozen steps.
    const int64_t samples = std::max<int64_t>(16000, 900 * full.peers);
    auto cfg = load_config(e.path().string(),
                           {"data.train_samples=" + std::to_string(samples), "data.test_samples=1000"});
    // A ResNet epoch costs about 20 MLP epochs here: one is enough to show
    // that the preset runs, and keeps the test far from its time-out on a
    // loaded machine (2 epochs took 122 s of this test's 300 at load 3).
    cfg.epochs = std::min(cfg.epochs, cfg.model.rfind("resnet", 0) == 0 ? 1.0 : 2.0);
    // A pipeline of big batches (fmnist-pipeline-lan-slow.toml: 512, a
    // timing preset) gets 31 steps from that and scores 26 %: at least
    // about 180 batches (76 % for that preset; batches of 64 are past it).
    if (pipelines)
      cfg.epochs = std::max(cfg.epochs, 180.0 * static_cast<double>(cfg.batch) / static_cast<double>(samples));
    auto s = run_simulation(cfg, scratch("config-" + e.path().stem().string()).string());
    CHECK(s.steps > 0);
    // Attackers' own models do not count. The default clipping slows early
    // consensus on label-skewed shards: fmnist-noniid reaches 58 % here
    // (67 % unclipped), and the same at full length (10 epochs) 83.7 %
    // (83.4 % unclipped), docs/byzantine.md.
    CHECK((s.attackers.empty() ? s.final_test_accuracy : s.honest_test_accuracy) > 0.55);
    // Verification is on by default where it can run: no honest peer fails it.
    INFO(s.verify.line());
    if (s.attackers.empty()) {
      CHECK(s.verification.checks_failed == 0);
      CHECK(s.detection.honest_quarantined == 0);
    }
    ++n;
  }
  return n;
}

TEST_CASE("every data-parallel config in configs/ runs (reduced to a few hundred steps)", "[sim]") {
  CHECK(run_every_config(false) >= 5);
}

TEST_CASE("every pipeline config in configs/ runs (reduced to a few hundred steps)", "[sim]") {
  CHECK(run_every_config(true) >= 3);
}

TEST_CASE("short end-to-end run on a Fashion-MNIST subset reaches 80%", "[sim][e2e]") {
  auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml",
                         {"data.train_samples=20000", "data.test_samples=2000", "train.epochs=4", "sim.peers=4"});
  auto s = run_simulation(cfg, scratch("e2e-subset").string());
  CHECK(s.final_test_accuracy >= 0.80);
  CHECK(s.min_test_accuracy >= 0.78);
  CHECK(s.bytes_sent_total < s.dense_allreduce_bytes);
}

TEST_CASE("the default demo reaches 85% with fewer bytes than all-reduce", "[slow][e2e]") {
  auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml");
  auto s = run_simulation(cfg, scratch("demo").string());
  CHECK(s.final_test_accuracy >= 0.85);
  CHECK(s.dense_allreduce_bytes > 5.0 * static_cast<double>(s.bytes_sent_total));
}
