#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "run/attack_plan.hpp"
#include "run/config_schema.hpp"
#include "sim/detection_score.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
namespace fs = std::filesystem;
using murmur::test::scratch;
using murmur::test::slurp;

namespace {

RunConfig with(std::vector<std::string> overrides) {
  RunConfig c;
  for (const auto& o : overrides) set_key(c, o.substr(0, o.find('=')), o.substr(o.find('=') + 1));
  validate_config(c, "test");
  return c;
}

}  // namespace

TEST_CASE("attackers: round(fraction * N) of a seeded permutation, at least one", "[attack]") {
  auto c = with({"attack.kind=gaussian", "attack.fraction=0.2", "sim.peers=16"});
  auto ids = attacker_ids(c, 16);
  CHECK(ids.size() == 3);
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  CHECK(ids.back() < 16);
  CHECK(attacker_ids(c, 16) == ids);  // deterministic
  c.seed = 2;
  CHECK(attacker_ids(c, 16) != ids);
  c.attack_fraction = 0.01;
  CHECK(attacker_ids(c, 16).size() == 1);
  c.attack_fraction = 0;
  CHECK(attacker_ids(c, 16).empty());
  c.attack_fraction = 0.3;
  c.attack_kind = "none";
  CHECK(attacker_ids(c, 16).empty());
  c.attack_kind = "sign_flip";
  CHECK(attacker_ids(c, 64).size() == 19);
}

TEST_CASE("an attacker's settings: its kind, its own stream, its colluders; ALIE's z by default", "[attack]") {
  auto c = with({"attack.kind=mean_shift", "attack.fraction=0.2", "attack.start_step=7", "attack.every=2",
                 "sim.peers=16"});
  auto ids = attacker_ids(c, 16);
  auto a = attack_settings_for(c, ids[0], 16), b = attack_settings_for(c, ids[1], 16);
  CHECK(a.kind == attack_kind::mean_shift);
  CHECK(a.start_step == 7);
  CHECK(a.every == 2);
  CHECK(a.seed != b.seed);
  CHECK(a.colluders == std::vector<uint32_t>{ids[1], ids[2]});
  // n = 16, m = 3: s = floor(16/2 + 1) - 3 = 6, z = Phi^-1(10/16) = 0.3186.
  CHECK(a.scale == Approx(0.3186).margin(1e-4));
  CHECK(alie_z(16, 1) == 0);  // (16 - 8) / 16 = 0.5: no shift looks honest
  CHECK(alie_z(64, 19) == Approx(0.7764).margin(1e-4));
  uint32_t honest = 0;
  while (std::binary_search(ids.begin(), ids.end(), honest)) ++honest;
  CHECK(attack_settings_for(c, honest, 16).kind == attack_kind::none);
  CHECK(attack_kind_of("replay") == attack_kind::replay);
  CHECK(attack_kind_of("label_flip") == attack_kind::label_flip);
  CHECK(attack_settings_for(c, ids[0], 16).acts_at(7));
  CHECK_FALSE(attack_settings_for(c, ids[0], 16).acts_at(8));
  CHECK_FALSE(attack_settings_for(c, ids[0], 16).acts_at(6));
}

TEST_CASE("Byzantine keys need public estimates: not with delta mode", "[attack][config]") {
  CHECK_THROWS_WITH(with({"gossip.mode=delta", "gossip.robust=median"}), Catch::Contains("gossip.robust"));
  CHECK_THROWS_WITH(with({"gossip.mode=delta", "detect.method=rank"}), Catch::Contains("detect.method"));
  CHECK_THROWS_WITH(with({"gossip.mode=delta", "attack.kind=gaussian"}), Catch::Contains("attack.kind"));
  CHECK_NOTHROW(with({"gossip.mode=delta", "attack.kind=label_flip"}));
}

TEST_CASE("detection score: all honest neighbours must quarantine; any honest quarantine is a false positive",
          "[detect]") {
  // Ring 0-1-2-3-0; peer 2 attacks, its honest neighbours are 1 and 3.
  const std::vector<std::vector<uint32_t>> ring = {{1, 3}, {0, 2}, {1, 3}, {0, 2}};
  const std::vector<uint32_t> attackers = {2};
  using Q = std::vector<std::vector<quarantine_record>>;
  {
    Q q(4);
    q[1] = {{2, 30, quarantine_cause::statistical}};
    q[3] = {{2, 50, quarantine_cause::statistical}};
    q[2] = {{1, 5, quarantine_cause::statistical}};  // an attacker's quarantines do not count
    auto d = score_detection(ring, attackers, q, 20);
    CHECK(d.tp == 1);
    CHECK(d.fp == 0);
    CHECK(d.fn == 0);
    CHECK(d.f1 == 1.0);
    CHECK(d.steps_to_quarantine_median == 30);  // the later one, 50, from the start, 20
    CHECK(d.steps_to_quarantine_p95 == 30);
  }
  {
    Q q(4);
    q[1] = {{2, 30, quarantine_cause::statistical}};  // 3 never does
    q[0] = {{1, 40, quarantine_cause::statistical}};  // an honest peer quarantined
    auto d = score_detection(ring, attackers, q, 20);
    CHECK(d.tp == 0);
    CHECK(d.fn == 1);
    CHECK(d.fp == 1);
    CHECK(d.honest_quarantined == 1);
    CHECK(d.f1 == 0);
    CHECK(d.precision == 0);
  }
  auto clean = score_detection(ring, {}, Q(4), 0);
  CHECK(std::isnan(clean.f1));
}

TEST_CASE("attacks, detection and robust mixing keep runs byte-for-byte deterministic", "[attack][sim]") {
  auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml",
                         {"sim.peers=8", "gossip.topology=exponential", "attack.kind=gaussian", "attack.fraction=0.25",
                          "attack.start_step=10", "gossip.robust=median", "detect.method=rank", "detect.window=5",
                          "detect.coords=1000"});
  auto a = scratch("byz-det-a"), b = scratch("byz-det-b");
  auto s = run_simulation(cfg, a.string());
  run_simulation(cfg, b.string());
  const auto ma = slurp(a / "metrics.jsonl");
  CHECK(ma == slurp(b / "metrics.jsonl"));
  CHECK(ma.find("\"attacker\":true") != std::string::npos);
  CHECK(s.attackers.size() == 2);
  const auto summary = slurp(a / "summary.json");
  for (const char* k : {"\"attackers\"", "\"detection\"", "\"honest_test_accuracy\"", "\"detect_overhead_pct\"",
                        "\"steps_to_quarantine_p95\"", "\"honest_quarantined\""})
    CHECK(summary.find(k) != std::string::npos);
}

TEST_CASE("reduced Byzantine runs: every attacker quarantined, no honest peer, accuracy near clean",
          "[attack][detect][slow]") {
  const std::vector<std::string> reduced = {"data.train_samples=24000", "data.test_samples=1000",
                                            "attack.fraction=0.2", "attack.start_step=10"};
  auto run = [&](const std::string& kind) {
    auto ov = reduced;
    ov.push_back("attack.kind=" + kind);
    auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/byzantine-16.toml", ov);
    return run_simulation(cfg, scratch("byz-" + kind).string());
  };
  const auto clean = run("none");
  CHECK(clean.detection.fp == 0);
  CHECK(clean.attackers.empty());
  // sign_flip (-3 x the mean of the honest updates) is as large as an honest
  // update's own noise over one window; it is flagged because the config
  // ranks changes over detect.span = 6 windows (docs/byzantine.md).
  for (std::string kind : {"gaussian", "zero_gradient", "mean_shift", "label_flip", "sign_flip"}) {
    const auto s = run(kind);
    INFO("attack " << kind << ": tp " << s.detection.tp << " fn " << s.detection.fn << " fp " << s.detection.fp
                   << ", honest accuracy " << s.honest_test_accuracy << " vs clean " << clean.honest_test_accuracy);
    CHECK(s.attackers.size() == 3);
    CHECK(s.detection.fp == 0);
    CHECK(s.detection.honest_quarantined == 0);
    // A label flipper publishes a model honestly trained on flipped labels;
    // under the default clipping its pull is bounded, the honest peers stay
    // close and the flipper's estimate follows theirs closely enough that
    // ranking does not single it out: it must then be harmless (item 1 of
    // issue 10: at most 1 point on the full test set, docs/byzantine.md), not
    // necessarily quarantined. 1000 test samples here: +-1.4 points of noise.
    if (kind != "label_flip") CHECK(s.detection.tp == 3);
    CHECK(s.honest_test_accuracy > clean.honest_test_accuracy - 0.015);
  }
}

TEST_CASE("reduced compute-cheat runs: every cheater caught by checks and quarantined on evidence, no honest peer",
          "[verify][sim][slow]") {
  // A high verify.rate so that a short run catches every cheater; the
  // per-step scheme, whose evidence the other neighbours act on (segments:
  // tests/sim/test_segment_verification.cpp).
  const std::vector<std::string> reduced = {"data.train_samples=24000", "data.test_samples=1000",
                                            "attack.fraction=0.2",      "attack.start_step=10",
                                            "verify.rate=0.05",         "verify.scheme=step",
                                            "detect.method=none"};
  for (std::string kind : {"skip_product", "perturb", "half_batch", "replay"}) {
    auto ov = reduced;
    ov.push_back("attack.kind=" + kind);
    auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/byzantine-16.toml", ov);
    const auto s = run_simulation(cfg, scratch("cheat-" + kind).string());
    const auto& v = s.verification;
    INFO("cheat " << kind << ": tp " << s.detection.tp << " fn " << s.detection.fn << " fp " << s.detection.fp
                  << ", checks failed " << v.checks_failed << ", evidence confirmed " << v.evidence_confirmed
                  << " rejected " << v.evidence_rejected);
    REQUIRE(s.attackers.size() == 3);
    CHECK(s.detection.tp == 3);
    CHECK(s.detection.fp == 0);
    CHECK(s.detection.honest_quarantined == 0);
    CHECK(v.evidence_rejected == 0);
    CHECK(v.evidence_confirmed > 0);  // some neighbours acted on others' evidence
    CHECK(v.checks_passed > 0);       // honest work passed
    // Only cheaters were caught, and only from when they started cheating.
    for (auto& [peer, step] : v.first_caught_step) {
      CHECK(std::find(s.attackers.begin(), s.attackers.end(), peer) != s.attackers.end());
      CHECK(step >= 10);
    }
  }
}

TEST_CASE("the new update attacks are accepted, need public estimates, and name their peers", "[attack][config]") {
  for (const char* kind : {"extreme", "ipm", "dissensus"}) {
    CHECK_NOTHROW(with({std::string("attack.kind=") + kind, "attack.fraction=0.2"}));
    CHECK_THROWS_WITH(with({"gossip.mode=delta", std::string("attack.kind=") + kind}), Catch::Contains("attack.kind"));
  }
  CHECK(attack_kind_of("extreme") == attack_kind::extreme);
  CHECK(attack_kind_of("ipm") == attack_kind::ipm);
  CHECK(attack_kind_of("dissensus") == attack_kind::dissensus);
  CHECK_NOTHROW(with({"attack.every=0"}));
  CHECK_THROWS(with({"attack.placement=middle"}));
  // A dissensus attacker knows its neighbours' other neighbours.
  auto c = with({"attack.kind=dissensus", "attack.fraction=0.1", "sim.peers=16", "gossip.topology=ring"});
  auto ids = attacker_ids(c, 16);
  auto a = attack_settings_for(c, ids[0], 16);
  const uint32_t left = (ids[0] + 15) % 16, right = (ids[0] + 1) % 16;
  REQUIRE(a.neighbourhoods.size() == 2);
  CHECK(a.neighbourhoods[left] == std::vector<uint32_t>{(left + 15) % 16});
  CHECK(a.neighbourhoods[right] == std::vector<uint32_t>{(right + 1) % 16});
  // attack.noise = 0: the colluders share one stream.
  auto same = with({"attack.kind=gaussian", "attack.fraction=0.2", "sim.peers=16", "attack.noise=0"});
  auto sids = attacker_ids(same, 16);
  CHECK(attack_settings_for(same, sids[0], 16).seed == attack_settings_for(same, sids[1], 16).seed);
}

TEST_CASE("attack.placement = cut: attackers on the topology's bottleneck", "[attack]") {
  // The number of pieces the honest peers fall into once the attackers are removed.
  auto pieces = [](const std::vector<std::vector<uint32_t>>& g, const std::vector<uint32_t>& gone) {
    std::vector<int> piece(g.size(), -1);
    for (uint32_t a : gone) piece[a] = -2;
    int count = 0;
    std::vector<size_t> sizes;
    for (uint32_t s = 0; s < g.size(); ++s) {
      if (piece[s] != -1) continue;
      std::vector<uint32_t> stack = {s};
      piece[s] = count;
      size_t size = 0;
      while (!stack.empty()) {
        uint32_t v = stack.back();
        stack.pop_back();
        ++size;
        for (uint32_t w : g[v])
          if (piece[w] == -1) piece[w] = count, stack.push_back(w);
      }
      sizes.push_back(size);
      ++count;
    }
    return sizes;
  };
  auto ring = with({"attack.kind=dissensus", "attack.fraction=0.1", "attack.placement=cut", "sim.peers=16",
                    "gossip.topology=ring"});
  auto ids = attacker_ids(ring, 16);
  REQUIRE(ids.size() == 2);
  auto halves = pieces(run_overlay(ring, 16), ids);
  REQUIRE(halves.size() == 2);  // two opposite peers split the ring
  CHECK(std::min(halves[0], halves[1]) >= 6);
  CHECK(attacker_ids(ring, 16) == ids);  // deterministic
  // The exponential graph of 16 (7 neighbours): the heuristic's choice, deterministic and valid.
  auto expo = with({"attack.kind=dissensus", "attack.fraction=0.2", "attack.placement=cut", "sim.peers=16"});
  auto eids = attacker_ids(expo, 16);
  CHECK(eids.size() == 3);
  CHECK(std::is_sorted(eids.begin(), eids.end()));
  CHECK(std::adjacent_find(eids.begin(), eids.end()) == eids.end());
}

TEST_CASE("tiny runs of each new attack and table row complete, deterministic where it matters", "[attack][sim]") {
  // Unlimited links, so that every round publishes (the smoke config's
  // steps are so cheap that frames would otherwise wait on the wire).
  const std::vector<std::string> base = {"sim.peers=8",          "gossip.topology=exponential", "attack.fraction=0.25",
                                         "attack.start_step=10", "gossip.robust=median",        "detect.method=rank",
                                         "detect.window=5",      "detect.coords=1000",          "sim.bandwidth_mbps=0",
                                         "sim.latency_ms=0"};
  auto run = [&](std::vector<std::string> extra, const std::string& name) {
    auto ov = base;
    ov.insert(ov.end(), extra.begin(), extra.end());
    auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml", ov);
    auto dir = scratch("byz-new-" + name);
    auto s = run_simulation(cfg, dir.string());
    return std::make_pair(s, slurp(dir / "metrics.jsonl"));
  };
  const auto clean = run({"attack.kind=none"}, "none").first;
  INFO("clean honest accuracy " << clean.honest_test_accuracy);
  const std::vector<std::pair<std::string, std::vector<std::string>>> rows = {
      {"extreme-once", {"attack.kind=extreme", "attack.every=0"}},
      {"extreme", {"attack.kind=extreme"}},
      {"extreme-small", {"attack.kind=extreme", "attack.scale=5"}},
      {"ipm", {"attack.kind=ipm"}},
      {"dissensus", {"attack.kind=dissensus"}},
      {"dissensus-cut", {"attack.kind=dissensus", "attack.placement=cut"}},
      {"mean_shift-every4", {"attack.kind=mean_shift", "attack.every=4"}},
      {"gaussian-noise0", {"attack.kind=gaussian", "attack.noise=0"}},
  };
  for (const auto& [name, extra] : rows) {
    auto [s, metrics] = run(extra, name);
    INFO(name << ": honest accuracy " << s.honest_test_accuracy << ", tp " << s.detection.tp << " fp "
              << s.detection.fp);
    CHECK(s.attackers.size() == 2);
    CHECK(std::isfinite(s.honest_test_accuracy));
    // Median mixing over 6 members with at most 2 attackers keeps honest peers learning.
    CHECK(s.honest_test_accuracy > clean.honest_test_accuracy - 0.1);
    CHECK(metrics.find("\"attacker\":true") != std::string::npos);
  }
  // Without defences the attacks bite: dissensus drives honest peers apart,
  // ipm costs accuracy (measured: consensus distance 93 vs 0.05; accuracy
  // 0.71 vs 1.0).
  const std::vector<std::string> undefended = {"gossip.robust=none", "detect.method=none"};
  auto plain = [&](const std::string& kind) {
    auto ov = undefended;
    ov.push_back("attack.kind=" + kind);
    return run(ov, "plain-" + kind).first;
  };
  const auto plain_clean = plain("none"), plain_dissensus = plain("dissensus"), plain_ipm = plain("ipm");
  CHECK(plain_dissensus.consensus_distance > 10 * plain_clean.consensus_distance);
  CHECK(plain_ipm.honest_test_accuracy < plain_clean.honest_test_accuracy - 0.05);
  // An equivocating run is as deterministic as any other.
  CHECK(run({"attack.kind=dissensus"}, "dissensus-a").second == run({"attack.kind=dissensus"}, "dissensus-b").second);
}
