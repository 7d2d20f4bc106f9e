// murmur merge combines the peers' "rewards" objects (docs/trust.md,
// "Reputation"): counts and GFLOPs summed, a proven cheat's own reports left
// out, standings recomputed; a malformed entry is a one-line error.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "murmur_process.hpp"

namespace fs = std::filesystem;
using namespace murmur::test;
using nlohmann::json;

namespace {

void write_peer(const fs::path& run, int peer, const std::string& rewards) {
  fs::create_directories(run);
  std::ofstream(run / "summary.json") << "{\n  \"peer\": " << peer << ",\n  \"final_test_accuracy\": 0.9,\n"
                                      << "  \"bytes_sent_total\": 1000,\n  \"dense_allreduce_bytes\": 50000,\n"
                                      << "  \"frames_rejected\": 0,\n  \"steps\": 10,\n  \"wall_time_s\": 3.5"
                                      << (rewards.empty() ? "" : ",\n  \"rewards\": " + rewards) << "\n}\n";
  std::ofstream(run / "metrics.jsonl") << "{\"wall_s\":1,\"peer\":" << peer << ",\"step\":5,\"test_acc\":0.9,\"bytes_sent\":500}\n";
}

std::string entry(double gflop, int passed, int failed, int misses, double standing) {
  return "{\"verified_gflop\": " + std::to_string(gflop) + ", \"checks_passed\": " + std::to_string(passed) +
         ", \"checks_failed\": " + std::to_string(failed) + ", \"misses\": " + std::to_string(misses) +
         ", \"standing\": " + std::to_string(standing) + "}";
}

}  // namespace

TEST_CASE("murmur merge sums the peers' rewards and recomputes standings", "[cli][reputation]") {
  const auto dir = scratch_path("merge-rewards");
  // Peer 0 caught peer 2 cheating; peer 2 praises peer 1 (left out: a proven cheat).
  write_peer(dir / "run0", 0, "{\"1\": " + entry(1.5, 3, 0, 1, 0.6) + ", \"2\": " + entry(0.5, 1, 1, 0, 0) + "}");
  write_peer(dir / "run1", 1, "{\"0\": " + entry(2.0, 4, 0, 0, 0.83) + ", \"2\": " + entry(1.0, 2, 0, 0, 0.75) + "}");
  write_peer(dir / "run2", 2, "{\"0\": " + entry(9, 9, 0, 0, 0.9) + ", \"1\": " + entry(100, 50, 0, 0, 0.98) + "}");
  auto r = murmur_run("merge " + (dir / "run0").string() + " " + (dir / "run1").string() + " " +
                      (dir / "run2").string() + " --out " + (dir / "m").string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  const json s = json::parse(file_text(dir / "m" / "summary.json"));
  REQUIRE(s.contains("rewards"));
  const auto& w = s["rewards"];
  REQUIRE(w.size() == 3);
  CHECK(w["0"]["checks_passed"] == 4);
  CHECK(w["0"]["verified_gflop"].get<double>() == Approx(2.0));
  CHECK(w["0"]["standing"].get<double>() == Approx(5.0 / 6.0));
  CHECK(w["1"]["checks_passed"] == 3);
  CHECK(w["1"]["misses"] == 1);
  CHECK(w["1"]["verified_gflop"].get<double>() == Approx(1.5));
  CHECK(w["1"]["standing"].get<double>() == Approx(4.0 / 6.0));
  CHECK(w["2"]["checks_passed"] == 3);
  CHECK(w["2"]["checks_failed"] == 1);
  CHECK(w["2"]["verified_gflop"].get<double>() == Approx(1.5));
  CHECK(w["2"]["standing"] == 0);

  // Summaries without rewards (verification off) merge without the object.
  write_peer(dir / "plain0", 0, "");
  write_peer(dir / "plain1", 1, "");
  r = murmur_run("merge " + (dir / "plain0").string() + " " + (dir / "plain1").string() + " --out " +
                 (dir / "m2").string());
  REQUIRE(r.code == 0);
  CHECK_FALSE(json::parse(file_text(dir / "m2" / "summary.json")).contains("rewards"));
}

TEST_CASE("murmur merge names a malformed rewards entry", "[cli][reputation]") {
  const auto dir = scratch_path("merge-rewards-bad");
  write_peer(dir / "run0", 0, "{\"1\": " + entry(1.5, 3, 0, 1, 0.6) + "}");
  write_peer(dir / "run1", 1, "{\"0\": {\"verified_gflop\": 1, \"checks_passed\": -2, \"checks_failed\": 0, \"misses\": 0}}");
  auto r = murmur_run("merge " + (dir / "run0").string() + " " + (dir / "run1").string() + " --out " +
                      (dir / "m").string());
  INFO(r.output);
  CHECK(r.code != 0);
  CHECK(r.output.find("rewards.0") != std::string::npos);
  CHECK(r.output.find("checks_passed") != std::string::npos);
  write_peer(dir / "run1", 1, "{\"zero\": " + entry(1, 1, 0, 0, 0.6) + "}");
  r = murmur_run("merge " + (dir / "run0").string() + " " + (dir / "run1").string() + " --out " +
                 (dir / "m").string());
  CHECK(r.code != 0);
  CHECK(r.output.find("'zero' is not a peer index") != std::string::npos);
}
