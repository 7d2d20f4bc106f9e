// Every JSON and JSONL file a run writes parses with a strict JSON parser
// (nlohmann::json rejects nan and inf), and values that were not finite are
// written as null.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../json_lines.hpp"
#include "murmur_process.hpp"

namespace fs = std::filesystem;
using namespace murmur::test;
using nlohmann::json;

namespace {

// Parses every *.json file and every line of every *.jsonl file under dir;
// returns how many files it parsed. A parse error fails the test, naming the
// file and line.
int parse_all_json(const fs::path& dir) {
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (ext != ".json" && ext != ".jsonl") continue;
    const std::string text = file_text(e.path());
    if (ext == ".json") {
      INFO(e.path().string() << ":\n" << text);
      CHECK_NOTHROW(json::parse(text));
    } else {
      std::istringstream in(text);
      int n = 0;
      for (std::string line; std::getline(in, line);) {
        ++n;
        if (line.empty()) continue;
        INFO(e.path().string() << ":" << n << ": " << line);
        CHECK_NOTHROW(json::parse(line));
      }
    }
    ++files;
  }
  return files;
}

std::vector<json> jsonl(const fs::path& p) { return json_lines(file_text(p)); }

const std::string kSmoke = source_path("configs/synthetic-smoke.toml") +
                           " --set data.train_samples=1600 --set data.test_samples=200 --set train.epochs=1";

}  // namespace

TEST_CASE("data-parallel run with detection, verification and an attack writes strict JSON", "[cli][json]") {
  const auto out = scratch_path("json-dp-trust");
  auto r = murmur_run("sim --quiet " + kSmoke +
                      " --set sim.peers=8 --set gossip.topology=exponential --set gossip.robust=median"
                      " --set detect.method=rank --set detect.window=5 --set detect.coords=1000"
                      " --set verify.rate=0.2 --set attack.kind=gaussian --set attack.fraction=0.25 --out " +
                      out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(parse_all_json(out) >= 3);  // summary.json, timing.json, metrics.jsonl
  const json s = json::parse(file_text(out / "summary.json"));
  CHECK(s.contains("verification"));
  CHECK(s["attackers"].size() == 2);
  CHECK(s["detection"].contains("f1"));
}

TEST_CASE("pipeline run writes strict JSON, events included", "[cli][json][pipeline]") {
  const auto out = scratch_path("json-pipeline");
  auto r = murmur_run("sim " + source_path("configs/synthetic-smoke.toml") +
                      " --quiet --set data.train_samples=1200 --set data.test_samples=200 --set train.epochs=1"
                      " --set sim.peers=8 --set sim.loss=0 --set sim.speed_spread=0"
                      " --set model.arch=flatten,linear:32,relu,linear:24,relu,linear:10"
                      " --set pipeline.stages=3 --set pipeline.spares=1 --set checkpoint.every=5"
                      " --set pipeline.crash_stage=1 --set pipeline.crash_step=12 --set peer.heartbeat_ms=10"
                      " --set peer.suspect_ms=20 --set peer.dead_ms=20 --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(out / "events.jsonl"));
  CHECK(parse_all_json(out) >= 4);  // summary.json, timing.json, metrics.jsonl, events.jsonl
  const json s = json::parse(file_text(out / "summary.json"));
  CHECK(s["pipeline"]["takeover"]["happened"] == true);
  CHECK_FALSE(jsonl(out / "events.jsonl").empty());
}

TEST_CASE("sweep runs write strict JSON", "[cli][json]") {
  const auto out = scratch_path("json-sweep");
  auto r = murmur_run("sweep " + kSmoke + " --param gossip.threshold=0.001,0.01 --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(parse_all_json(out) >= 6);  // three files per run
}

TEST_CASE("a run that diverges writes null where values are not finite", "[cli][json]") {
  const auto out = scratch_path("json-nonfinite");
  // lr x weight_decay = 9.9: each step multiplies the weights by about -8.9,
  // so within two epochs (26 steps) they overflow to inf and the losses to NaN.
  auto r = murmur_run("sim --quiet " + kSmoke + " --set train.epochs=2 --set train.lr=10 --set train.lr_schedule=constant"
                      " --set train.momentum=0.99 --set train.weight_decay=0.99 --set train.eval_every=5 --out " +
                      out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  parse_all_json(out);
  int null_losses = 0;
  for (const auto& m : jsonl(out / "metrics.jsonl")) {
    CHECK((m["train_loss"].is_null() || m["train_loss"].is_number()));
    null_losses += m["train_loss"].is_null() || m["test_loss"].is_null();
  }
  CHECK(null_losses > 0);
  const json s = json::parse(file_text(out / "summary.json"));
  CHECK(s["final_test_loss"].is_null());
  CHECK(s["consensus_distance"].is_null());
  CHECK(s["final_test_accuracy"].is_number());  // accuracy of a NaN model is still a number
}

TEST_CASE("merge reads null values and writes strict JSON", "[cli][json]") {
  const auto dir = scratch_path("json-merge");
  for (int i = 0; i < 2; ++i) {
    const auto run = dir / ("run" + std::to_string(i));
    fs::create_directories(run);
    // Peer 1's model diverged: its accuracy and losses were not finite.
    const std::string acc = i ? "null" : "0.9";
    std::ofstream(run / "summary.json") << "{\n  \"peer\": " << i << ",\n  \"final_test_accuracy\": " << acc
                                        << ",\n  \"final_test_loss\": null,\n  \"bytes_sent_total\": 1000,\n"
                                        << "  \"dense_allreduce_bytes\": 50000,\n  \"frames_rejected\": 1,\n"
                                        << "  \"steps\": 10,\n  \"wall_time_s\": 3.5\n}\n";
    std::ofstream(run / "metrics.jsonl") << "{\"wall_s\":1,\"peer\":" << i << ",\"step\":5,\"test_acc\":" << acc
                                         << ",\"bytes_sent\":500}\n";
  }
  auto r = murmur_run("merge " + (dir / "run0").string() + " " + (dir / "run1").string() + " --out " +
                      (dir / "m").string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(parse_all_json(dir / "m") == 1);
  const json s = json::parse(file_text(dir / "m" / "summary.json"));
  CHECK(s["final_test_accuracy"].is_null());  // the mean over peers is not finite
  CHECK(s["bytes_sent_total"] == 2000);
  CHECK(s["wall_time_s"] == 3.5);
}
