// Reputation in a simulated run with a compute cheat: summary.json's
// "rewards" (docs/trust.md, "Reputation") is strict JSON with numbers, and
// the cheat ends below every honest peer.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "run/config_schema.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;
using murmur::test::slurp;

TEST_CASE("a caught cheat's standing ends below every honest peer's; rewards are numbers", "[verify][sim][reputation]") {
  for (std::string kind : {"skip_product", "perturb"}) {
    auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml",
                           // verify.scheme = step: per-step checks (a rate alone runs segments).
                           {"verify.rate=0.2", "verify.scheme=step", "attack.kind=" + kind, "attack.fraction=0.25",
                            "attack.start_step=5"});
    const auto dir = scratch("reputation-" + kind);
    const auto s = run_simulation(cfg, dir.string());
    REQUIRE(s.attackers.size() == 1);
    const uint32_t cheat = s.attackers[0];
    const auto summary = nlohmann::json::parse(slurp(dir / "summary.json"));  // strict: no nan
    REQUIRE(summary.contains("rewards"));
    const auto& rewards = summary["rewards"];
    REQUIRE(rewards.size() == 4);
    INFO(kind << ": cheat " << cheat << ", rewards " << rewards.dump());
    for (const auto& [peer, r] : rewards.items())
      for (const char* k : {"verified_gflop", "checks_passed", "checks_failed", "misses", "standing"}) {
        REQUIRE(r.contains(k));
        CHECK(r[k].is_number());
      }
    const auto& bad = rewards[std::to_string(cheat)];
    CHECK(bad["checks_failed"].get<double>() >= 1);
    CHECK(bad["standing"].get<double>() == 0);
    double honest_gflop = 0;
    for (const auto& [peer, r] : rewards.items()) {
      if (peer == std::to_string(cheat)) continue;
      CHECK(r["checks_failed"].get<double>() == 0);
      CHECK(r["checks_passed"].get<double>() > 0);
      CHECK(r["standing"].get<double>() > bad["standing"].get<double>());
      CHECK(r["standing"].get<double>() <= 1);
      honest_gflop += r["verified_gflop"].get<double>();
    }
    CHECK(honest_gflop > 0);
    // The in-memory summary says the same.
    CHECK(s.verification.rewards.standing(cheat) == 0);
    CHECK(s.detection.honest_quarantined == 0);
  }
}
