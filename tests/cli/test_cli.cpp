// Runs the murmur binary as a user would and checks exit codes and messages.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
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
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, stdout and stderr together.
result run_command(const std::string& line) {
  std::string cmd = line + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

result murmur(const std::string& args) { return run_command(std::string(MURMUR_BINARY_DIR) + "/murmur " + args); }

std::string source(const std::string& rel) { return std::string(MURMUR_SOURCE_DIR) + "/" + rel; }

fs::path scratch(const std::string& name) {
  fs::path p = fs::path(MURMUR_BINARY_DIR) / "test-runs" / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p;
}

}  // namespace

TEST_CASE("config errors exit non-zero naming the key, the value and what is allowed", "[cli]") {
  auto smoke = source("configs/synthetic-smoke.toml");
  auto r = murmur("sim " + smoke + " --set gossip.treshold=0.1");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("gossip.treshold") && Catch::Contains("gossip.threshold"));

  r = murmur("sim " + smoke + " --set gossip.threshold=-1");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("gossip.threshold") && Catch::Contains("-1") && Catch::Contains(">= 0"));

  r = murmur("sim " + smoke + " --set gossip.topology=star");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("star") && Catch::Contains("ring") && Catch::Contains("torus"));

  auto bad = scratch("bad.toml");
  std::ofstream(bad) << "[train]\nlr = \"fast\"\n";
  r = murmur("sim " + bad.string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("train.lr") && Catch::Contains("fast") && Catch::Contains("bad.toml"));

  r = murmur("sim /nonexistent/cfg.toml");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("/nonexistent/cfg.toml"));
}

TEST_CASE("usage errors exit 2 with the usage text", "[cli]") {
  auto r = murmur("");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("usage: murmur"));
  r = murmur("frobnicate");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("unknown verb 'frobnicate'"));
  r = murmur("sim");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("missing <config.toml>"));
  r = murmur("sim " + source("configs/synthetic-smoke.toml") + " --bogus");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("--bogus"));
  r = murmur("sweep " + source("configs/synthetic-smoke.toml") + " --param gossip.threshold");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("KEY=V1,V2"));
  CHECK(murmur("sim --help").code == 0);
}

TEST_CASE("a bad data file is reported by name", "[cli]") {
  auto dir = scratch("bad-data");
  fs::create_directories(dir);
  std::ofstream(dir / "train-images-idx3-ubyte") << "not an idx file";
  std::ofstream(dir / "train-labels-idx1-ubyte") << "nor this";
  auto r = murmur("sim " + source("configs/fmnist-gossip.toml") + " --set data.dir=" + dir.string() +
                  " --out " + (dir / "run").string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("train-images-idx3-ubyte"));
}

TEST_CASE("a run that cannot be set up ends with an error, it does not hang", "[cli]") {
  // The simulated network's actor is already running when this fails (the
  // first peer's trainer refuses the padding): it must be stopped, or the
  // actor system waits forever.
  auto r = run_command("timeout 60 " + std::string(MURMUR_BINARY_DIR) + "/murmur sim " +
                       source("configs/synthetic-smoke.toml") + " --set data.crop_padding=40 --out " +
                       scratch("no-setup").string());
  CHECK(r.code == 1);  // timeout(1) would give 124
  CHECK_THAT(r.output, Catch::Contains("data.crop_padding = 40 is too large"));
}

TEST_CASE("augmented training: verifiers redo the crop and flip, no honest peer fails a check; a padding too large is refused", "[cli][augment]") {
  auto out = scratch("cli-augment");
  // An MLP: its first Linear is fed by the data, so verifiers rebuild (and augment) its input.
  auto r = murmur("sim " + source("configs/synthetic-smoke.toml") +
                  " --set train.epochs=1 --set data.crop_padding=2 --set data.flip=horizontal"
                  " --set verify.rate=0.2 --set verify.scheme=step --quiet --out " + out.string());  // step checks
  INFO(r.output);
  REQUIRE(r.code == 0);
  std::ifstream in(out / "summary.json");
  const auto s = nlohmann::json::parse(in);
  CHECK(s["verification"]["checks_passed"].get<int>() > 0);
  CHECK(s["verification"]["checks_failed"].get<int>() == 0);
  CHECK(s["verification"]["evidence_sent"].get<int>() == 0);

  r = murmur("sim " + source("configs/synthetic-smoke.toml") + " --set data.crop_padding=40 --out " +
             scratch("cli-augment-too-large").string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("data.crop_padding = 40 is too large"));
}

TEST_CASE("murmur sim writes the run directory and prints the summary", "[cli]") {
  auto out = scratch("cli-sim");
  auto r = murmur("sim " + source("configs/synthetic-smoke.toml") + " --set train.epochs=1 --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("final test accuracy") && Catch::Contains("all-reduce"));
  CHECK(fs::exists(out / "summary.json"));
  CHECK(fs::exists(out / "metrics.jsonl"));
  CHECK(fs::exists(out / "accuracy.png"));
}

TEST_CASE("murmur sim --resume continues a stopped data-parallel run in its directory", "[cli][resume]") {
  // 4 peers x 32 steps (one epoch of the smoke set); stopped after 20, checkpoints every 10.
  auto out = scratch("cli-dp-resume");
  auto r = murmur("sim " + source("configs/synthetic-smoke.toml") + " --quiet --set train.epochs=1 --out " +
                  out.string() + " --set run.stop_after=20 --set checkpoint.every=10");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("steps per peer 20"));
  for (int i = 0; i < 4; ++i) CHECK(fs::exists(out / "checkpoints" / ("peer-" + std::to_string(i) + ".ckpt")));
  const auto before = fs::file_size(out / "metrics.jsonl");

  r = murmur("sim --quiet --resume " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("resuming") && Catch::Contains("steps per peer 32"));
  // The default verification (segments) stays on for a resumed run.
  CHECK_THAT(r.output, Catch::Contains("verification: segment scheme"));
  CHECK_THAT(r.output, !Catch::Contains("verification off"));
  CHECK(fs::file_size(out / "metrics.jsonl") > before);

  // A damaged checkpoint: exit 1 naming the file and the problem.
  const auto victim = out / "checkpoints" / "peer-1.ckpt";
  std::string bytes;
  {
    std::ifstream in(victim, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    bytes = s.str();
  }
  bytes[bytes.size() / 2] ^= 0x01;
  std::ofstream(victim, std::ios::binary | std::ios::trunc) << bytes;
  r = murmur("sim --quiet --resume " + out.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("peer-1.ckpt") && Catch::Contains("checksum"));
}

TEST_CASE("murmur sweep writes a table whose bytes fall as tau grows", "[cli]") {
  auto out = scratch("cli-sweep");
  auto r = murmur("sweep " + source("configs/synthetic-smoke.toml") +
                  " --param gossip.threshold=0,0.001,0.01 --set sim.loss=0 --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  std::ifstream csv(out / "sweep.csv");
  std::string line;
  std::getline(csv, line);
  CHECK_THAT(line, Catch::StartsWith("gossip.threshold,final_test_accuracy,bytes_sent_total"));
  std::vector<double> bytes;
  while (std::getline(csv, line)) {
    auto a = line.find(','), b = line.find(',', a + 1);
    bytes.push_back(std::stod(line.substr(b + 1)));
  }
  REQUIRE(bytes.size() == 3);
  CHECK(bytes[0] > bytes[1]);
  CHECK(bytes[1] > bytes[2]);
  CHECK(fs::exists(out / "sweep.png"));
}

TEST_CASE("murmur sweep over two keys: the product, detection columns, sweep.md against clean", "[cli][attack]") {
  auto out = scratch("cli-sweep-product");
  auto r = murmur("sweep " + source("configs/synthetic-smoke.toml") +
                  " --param attack.kind=none,gaussian --param attack.fraction=0.25,0.5"
                  " --set sim.peers=8 --set gossip.topology=exponential --set gossip.robust=median"
                  " --set detect.method=rank --set detect.window=5 --set detect.coords=1000 --set train.epochs=2"
                  " --set attack.start_step=5 --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  std::ifstream csv(out / "sweep.csv");
  std::string line;
  std::getline(csv, line);
  CHECK_THAT(line, Catch::StartsWith("attack.kind,attack.fraction,final_test_accuracy,"));
  for (const char* col : {"honest_test_accuracy", "accuracy_vs_clean", "precision", "recall", "f1",
                          "honest_quarantined", "steps_to_quarantine_median", "steps_to_quarantine_p95",
                          "detect_overhead_pct"})
    CHECK_THAT(line, Catch::Contains(col));
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  CHECK(rows == 4);
  std::ifstream md_in(out / "sweep.md");
  std::stringstream md;
  md << md_in.rdbuf();
  CHECK_THAT(md.str(), Catch::Contains("| vs clean (points) |"));
  CHECK_THAT(md.str(), Catch::Contains("| gaussian | 0.5 | 4 |"));
  CHECK(fs::exists(out / "attack.kind=gaussian,attack.fraction=0.25" / "summary.json"));
  // The clean configuration runs once: the fraction does not enter it.
  CHECK(fs::exists(out / "attack.kind=none,attack.fraction=0.25" / "summary.json"));
  CHECK_FALSE(fs::exists(out / "attack.kind=none,attack.fraction=0.5"));
}

TEST_CASE("config-doc lists every key", "[cli]") {
  auto r = murmur("config-doc");
  CHECK(r.code == 0);
  for (const char* k : {"gossip.threshold", "gossip.mode", "sim.latency_ms", "train.lr", "model.arch"})
    CHECK_THAT(r.output, Catch::Contains(k));
}

// Key pairs DIR/keys0 .. keys(n-1); returns their public keys in order.
static std::vector<std::string> keygen_each(const fs::path& dir, int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) {
    const auto k = dir / ("keys" + std::to_string(i));
    REQUIRE(murmur("keygen --out " + k.string()).code == 0);
    std::ifstream in(k / "peer.pub");
    keys.emplace_back();
    std::getline(in, keys.back());
  }
  return keys;
}

TEST_CASE("docs/config.md holds the table murmur config-doc prints", "[cli]") {
  auto r = murmur("config-doc");
  REQUIRE(r.code == 0);
  std::ifstream in(source("docs/config.md"));
  std::stringstream doc;
  doc << in.rdbuf();
  CHECK_THAT(doc.str(), Catch::Contains(r.output));
}

TEST_CASE("murmur keygen writes a key pair and refuses to overwrite it", "[cli]") {
  auto dir = scratch("keygen");
  auto r = murmur("keygen --out " + dir.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(dir / "peer.key"));
  CHECK(fs::exists(dir / "peer.pub"));
  CHECK_THAT(r.output, Catch::Contains("public key:"));
  r = murmur("keygen --out " + dir.string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("exists already"));
  CHECK(murmur("keygen --out " + dir.string() + " --force").code == 0);
  CHECK(murmur("keygen").code == 2);
}

TEST_CASE("murmur merge sums the peers of a LAN run and names what it cannot read", "[cli]") {
  auto dir = scratch("merge");
  for (int i = 0; i < 2; ++i) {
    auto r = dir / ("run" + std::to_string(i));
    fs::create_directories(r);
    std::ofstream(r / "summary.json") << "{\n  \"peer\": " << i << ",\n  \"final_test_accuracy\": " << (i ? 0.8 : 0.9)
                                      << ",\n  \"bytes_sent_total\": 1000,\n  \"dense_allreduce_bytes\": 50000,\n"
                                      << "  \"frames_rejected\": 1,\n  \"steps\": 10,\n  \"wall_time_s\": 3\n}\n";
    std::ofstream(r / "metrics.jsonl") << "{\"wall_s\":1,\"peer\":" << i << ",\"step\":5,\"test_acc\":0.5,\"bytes_sent\":500}\n"
                                       << "{\"wall_s\":3,\"peer\":" << i << ",\"step\":10,\"test_acc\":0.85,\"bytes_sent\":1000}\n";
  }
  auto r = murmur("merge " + (dir / "run0").string() + " " + (dir / "run1").string() + " --out " + (dir / "m").string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("2 peers") && Catch::Contains("85.00%") && Catch::Contains("50.0x"));
  std::ifstream s(dir / "m" / "summary.json");
  std::stringstream ss;
  ss << s.rdbuf();
  CHECK_THAT(ss.str(), Catch::Contains("\"bytes_sent_total\": 2000") && Catch::Contains("\"frames_rejected\": 2"));
  r = murmur("merge " + (dir / "nope").string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("nope/summary.json"));
}

TEST_CASE("a pipeline node refuses a layout it cannot run, naming the problem", "[cli]") {
  const std::string cfg = source("configs/pipeline-lan.toml");
  const std::string peer = "peer --config " + cfg + " --listen tcp://127.0.0.1:1 ";
  // Hybrid (replicas > 1) runs on a LAN, but not with delta gossip.
  auto r = murmur(peer + "--set pipeline.replicas=2 --set peer.count=5 --set gossip.mode=delta");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("gossip.mode = delta") && Catch::Contains("simulation-only"));
  // Node i is the i-th key line of the allowlist.
  auto dir = scratch("pipeline-layout");
  const auto keys = keygen_each(dir, 3);
  const auto allow = dir / "authorized_peers";
  const std::string set = "--out " + (dir / "run").string() + " --set peer.keys=" + (dir / "keys0").string() +
                          " --set peer.authorized_peers=" + allow.string() + " --set peer.index=0";
  std::ofstream(allow) << keys[1] << " tcp://127.0.0.1:2\n" << keys[0] << " tcp://127.0.0.1:3\n"
                       << keys[2] << " tcp://127.0.0.1:4\n";
  r = murmur(peer + set);
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("key line 0") && Catch::Contains("not this process's key"));
  std::ofstream(allow) << "# comment\n" << keys[0] << "\n" << keys[1] << " tcp://127.0.0.1:3\n";
  r = murmur(peer + set);
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("2 key line(s)") && Catch::Contains("3 nodes"));
  std::ofstream(allow) << keys[0] << "\n" << keys[1] << " tcp://127.0.0.1:3\n" << keys[2] << " tcp://127.0.0.1:4\n";
  r = murmur(peer + set);
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("key line 0 (peer.index 0) has no tcp://HOST:PORT"));
  r = murmur(peer + set + " --set peer.count=4");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("peer.count = 4") && Catch::Contains("3 nodes"));
}

TEST_CASE("murmur peer starts only as the peer its key line names", "[cli][identity]") {
  const std::string peer = "peer --config " + source("configs/lan-3.toml") + " --listen tcp://127.0.0.1:1 ";
  auto dir = scratch("peer-identity");
  const auto keys = keygen_each(dir, 2);
  const auto allow = dir / "authorized_peers";
  const std::string set = "--out " + (dir / "run").string() + " --set peer.keys=" + (dir / "keys0").string() +
                          " --set peer.authorized_peers=" + allow.string() + " --set peer.index=0";
  // Key 0 is on line 3 (key line 1): peer.index = 0 names someone else's line.
  std::ofstream(allow) << "# lab\n" << keys[1] << " b\n" << keys[0] << " a\n";
  auto r = murmur(peer + set);
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains(allow.string() + ":2 (key line 0)") && Catch::Contains("peer.index = 0") &&
                           Catch::Contains("keys0/peer.pub") && Catch::Contains(allow.string() + ":3 (key line 1)"));
  // One key on two lines.
  std::ofstream(allow) << keys[0] << "\n" << keys[1] << "\n\n" << keys[1] << "\n";
  r = murmur(peer + set);
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains(allow.string() + ":2 (key line 1)") &&
                           Catch::Contains(allow.string() + ":4 (key line 2)") && Catch::Contains("same key"));
}
