// The per-peer, per-link network model (run/link_model.hpp) and a simulation on it.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "run/config_schema.hpp"
#include "run/link_model.hpp"
#include "run/link_tau.hpp"
#include "run/verification_choice.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;
using murmur::test::slurp;
using Catch::Matchers::Contains;

namespace {

RunConfig with(std::vector<std::string> overrides, int64_t peers = 4) {
  RunConfig c;
  c.peers = peers;
  for (const auto& kv : overrides) {
    const auto eq = kv.find('=');
    set_key(c, kv.substr(0, eq), kv.substr(eq + 1), "test");
  }
  return c;
}

std::string config_error(const RunConfig& c) {
  try {
    (void)link_model::from_config(c, static_cast<uint32_t>(c.peers));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("link model: the uniform model's numbers when no sim.link_* is set", "[link_model]") {
  auto m = link_model::from_config(with({"sim.bandwidth_mbps=8", "sim.latency_ms=5"}), 3);
  CHECK(m.uniform());
  // 1 MB at 8 Mbit/s is 1 s on the uplink, then 5 ms of latency.
  auto a = m.send(0, 1, 1e6, 0.0);
  CHECK(a.up_done == Approx(1.0));
  CHECK(a.arrive == Approx(1.005));
  // The uplink is shared: the next frame waits for it; downlinks are unlimited.
  auto b = m.send(0, 2, 1e6, 0.5);
  CHECK(b.up_done == Approx(2.0));
  auto c = m.send(2, 1, 1e6, 0.5);  // another sender to the same receiver: no downlink queue
  CHECK(c.arrive == Approx(1.505));
  CHECK(m.slowest_bps() == Approx(8e6));
  CHECK(m.largest_latency_s() == Approx(0.005));
}

TEST_CASE("link model: classes give asymmetric links, downlinks queue, access latencies add", "[link_model]") {
  auto m = link_model::from_config(with({"sim.link_classes=home:2,datacenter:2", "sim.latency_ms=1"}), 4);
  CHECK_FALSE(m.uniform());
  CHECK(m.peers()[0].cls == "home");
  CHECK(m.peers()[3].cls == "datacenter");
  // home uplink 10 Mbit/s: 1.25 MB takes 1 s; latency 1 + 10 + 0.25 ms.
  auto up = m.send(0, 2, 1.25e6, 0.0);
  CHECK(up.up_done == Approx(1.0));
  CHECK(up.arrive == Approx(1.01125));
  // Two datacenter peers send 1.25 MB each to home peer 1 (down 50 Mbit/s,
  // 0.2 s per frame): the second waits for the first on the downlink.
  auto a = m.send(2, 1, 1.25e6, 0.0);
  auto b = m.send(3, 1, 1.25e6, 0.0);
  CHECK(a.up_done == Approx(0.001));
  CHECK(a.arrive == Approx(0.01125 + 0.2));
  CHECK(b.arrive == Approx(0.01125 + 0.4));
  CHECK(m.slowest_bps() == Approx(10e6));
  CHECK(m.latency_s(0, 1) == Approx(0.021));
}

TEST_CASE("link model: windows slow a transfer down, an outage holds it until the window ends", "[link_model]") {
  std::vector<bandwidth_window> w{{1.0, 2.0, 0.5}, {3.0, 4.0, 0.0}};
  CHECK(transfer_end(0.0, 8.0, 8.0, w) == Approx(1.0));   // done before the first window
  CHECK(transfer_end(0.5, 8.0, 8.0, w) == Approx(2.0));   // 0.5 s at full rate, the rest at half
  CHECK(transfer_end(2.5, 8.0, 8.0, w) == Approx(4.5));   // 0.5 s, the outage, 0.5 s
  CHECK(transfer_end(3.2, 0.0, 0.0, w) == Approx(4.0));   // unlimited, yet nothing moves in an outage
  auto m = link_model::from_config(with({"sim.bandwidth_mbps=8", "sim.latency_ms=0", "sim.link_events=0-10:0:0"}), 2);
  auto t = m.send(0, 1, 1e6, 1.0);
  CHECK(t.up_done == Approx(11.0));
  CHECK(t.arrive == Approx(11.0));  // the receiver's downlink is unlimited and up
  CHECK(m.direct_time(1, 0, 1e6, 1.0) == Approx(9.0));  // sent at 1, arrives at 10: peer 0's downlink is back
}

TEST_CASE("link model: a link file sets peers and directed links", "[link_model]") {
  auto dir = scratch("link-model-file");
  std::filesystem::create_directories(dir);
  const auto path = (dir / "links.csv").string();
  std::ofstream(path) << "# kind,...\npeer,0,8,16,2\nlink,1,2,4,30  # a slow directed link\n\n";
  auto m = link_model::from_config(with({"sim.link_file=" + path, "sim.bandwidth_mbps=80", "sim.latency_ms=1"}), 3);
  CHECK(m.peers()[0].up_bps == Approx(8e6));
  CHECK(m.peers()[0].down_bps == Approx(16e6));
  CHECK(m.latency_s(0, 1) == Approx(0.003));
  CHECK(m.latency_s(1, 2) == Approx(0.030));
  CHECK(m.latency_s(2, 1) == Approx(0.001));
  CHECK(m.send(1, 2, 1e6, 0).up_done == Approx(2.0));  // capped at 4 Mbit/s
  CHECK(m.send(2, 1, 1e6, 0).up_done == Approx(0.1));  // the other direction at 80
  CHECK(m.slowest_bps() == Approx(4e6));
}

TEST_CASE("link model: bad classes, files and events are refused by name", "[link_model]") {
  CHECK_THAT(config_error(with({"sim.link_classes=home:2,cave:2"})), Contains("unknown class \"cave\""));
  CHECK_THAT(config_error(with({"sim.link_classes=home:3,office:3"})), Contains("more peers than sim.peers = 4"));
  CHECK_THAT(config_error(with({"sim.link_classes=home:1,office:1"})), Contains("names 2 peers, but sim.peers = 4"));
  CHECK_THAT(config_error(with({"sim.link_classes=home:x"})), Contains("is not a number"));
  CHECK_THAT(config_error(with({"sim.link_events=5-2:0:1"})), Contains("ends before it starts"));
  CHECK_THAT(config_error(with({"sim.link_events=0-5:0:1,4-6:0:0.5"})), Contains("overlap"));
  CHECK_THAT(config_error(with({"sim.link_events=0-5:9:1"})), Contains("not a peer index below sim.peers = 4"));
  CHECK_THAT(config_error(with({"sim.link_events=0-5:1"})), Contains("expected start_s-end_s:peer:factor"));
  CHECK_THAT(config_error(with({"sim.link_events=0-5:1:-2"})), Contains("negative"));
  CHECK_THAT(config_error(with({"sim.link_file=/nonexistent/links.csv"})), Contains("cannot be read"));
  auto dir = scratch("link-model-bad-file");
  std::filesystem::create_directories(dir);
  const auto path = (dir / "links.csv").string();
  std::ofstream(path) << "peer,0,8,16,2\nlink,1,1,4,30\n";
  CHECK_THAT(config_error(with({"sim.link_file=" + path})), Contains("line 2: a link from peer 1 to itself"));
  std::ofstream(path) << "peer,0,8,16\n";
  CHECK_THAT(config_error(with({"sim.link_file=" + path})), Contains("line 1: expected"));
  // A whole config is refused at load, naming its source.
  CHECK_THROWS_WITH(load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml",
                                {"sim.link_classes=home:1"}),
                    Contains("sim.link_classes") && Contains("synthetic-smoke.toml"));
}

TEST_CASE("a simulation on classed links is deterministic, slower in virtual time and reports its links", "[link_model][sim]") {
  auto base = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml", {"verify.rate=0"});
  auto cfg = base;
  const auto n = cfg.peers;
  set_key(cfg, "sim.link_classes", "home:" + std::to_string(n / 2) + ",datacenter", "test");
  const auto a = scratch("link-model-sim-a"), b = scratch("link-model-sim-b"), u = scratch("link-model-sim-u");
  const auto sa = run_simulation(cfg, a.string());
  run_simulation(cfg, b.string());
  const auto su = run_simulation(base, u.string());
  CHECK(slurp(a / "metrics.jsonl") == slurp(b / "metrics.jsonl"));
  CHECK(sa.virtual_time_s > su.virtual_time_s);
  auto s = nlohmann::json::parse(slurp(a / "summary.json"));
  REQUIRE(s.contains("links"));
  REQUIRE(s["links"].size() == static_cast<size_t>(n));
  CHECK(s["links"][0]["class"] == "home");
  CHECK(s["links"][0]["up_mbps"] == 10);
  CHECK(s["links"][n - 1]["class"] == "datacenter");
  uint64_t sent = 0;
  for (const auto& l : s["links"]) sent += l["bytes_sent"].get<uint64_t>();
  CHECK(sent == s["bytes_sent_total"].get<uint64_t>());
  CHECK_FALSE(nlohmann::json::parse(slurp(u / "summary.json")).contains("links"));
}

TEST_CASE("link-scaled thresholds: each peer's tau from its slowest link", "[link_model]") {
  auto c = with({"sim.link_classes=home:2,office:2", "sim.latency_ms=0"});
  const auto links = link_model::from_config(c, 4);
  CHECK(links.rate_bps(0, 1) == Approx(10e6));    // home uplink
  CHECK(links.rate_bps(2, 1) == Approx(50e6));    // office to a home downlink
  CHECK(links.rate_bps(2, 3) == Approx(1000e6));
  // The ring 0-1-2-3-0: peers 0 and 1 send at 10 Mbit/s at best; peer 2
  // reaches home peer 1 and peer 3 home peer 0 at 50 (their downlinks).
  const std::vector<std::vector<uint32_t>> ring{{1, 3}, {0, 2}, {1, 3}, {2, 0}};
  auto taus = link_scaled_taus(0.01, 0.5, links, ring);
  REQUIRE(taus.size() == 4);
  CHECK(taus[0] == Approx(0.01 * std::sqrt(5.0)));  // r_max = 50 Mbit/s
  CHECK(taus[1] == Approx(0.01 * std::sqrt(5.0)));
  CHECK(taus[2] == Approx(0.01));
  CHECK(taus[3] == Approx(0.01));
  // Office peers 2, 3 linked only to each other: r_max = 1 Gbit/s.
  const std::vector<std::vector<uint32_t>> split{{1}, {0}, {3}, {2}};
  taus = link_scaled_taus(0.01, 1.0, links, split);
  CHECK(taus[0] == Approx(1.0));  // 100x slower
  CHECK(taus[2] == Approx(0.01));
  // Exponent 0, or uniform unlimited links: every peer keeps tau.
  CHECK(link_scaled_taus(0.01, 0.0, links, ring) == std::vector<double>(4, 0.01));
  const auto free = link_model::from_config(with({"sim.bandwidth_mbps=0"}), 4);
  CHECK(link_scaled_taus(0.01, 0.5, free, ring) == std::vector<double>(4, 0.01));
  // Only threshold gossip has a tau to scale.
  CHECK_THROWS_WITH(load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml",
                                {"gossip.mode=dense", "gossip.link_tau_exponent=0.5"}),
                    Contains("gossip.link_tau_exponent = 0.5 with gossip.mode = dense"));
}

TEST_CASE("gossip.link_tau_exponent: peers on slow links send less; verification by default steps aside", "[link_model][sim]") {
  const std::string smoke = std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml";
  // Steps of 20 ms: the home uplinks carry every round's frames either way.
  const std::vector<std::string> base{"sim.link_classes=home:2,office:2", "sim.loss=0", "gossip.threshold=0.002",
                                      "sim.step_ms=20"};
  auto scaled = base;
  scaled.push_back("gossip.link_tau_exponent=0.5");
  const auto off = run_simulation(load_config(smoke, base), scratch("link-tau-off").string());
  const auto on = run_simulation(load_config(smoke, scaled), scratch("link-tau-on").string());
  REQUIRE(on.links.size() == 4);
  // Home peers 0 and 1 (10 Mbit/s) publish on a grid sqrt(5) times coarser
  // than the office peers, whose slowest links (50 Mbit/s, a home peer's
  // downlink) are the fastest any peer has: fewer coordinates per frame.
  CHECK(on.links[0].bytes_sent < 0.8 * static_cast<double>(off.links[0].bytes_sent));
  CHECK(on.links[1].bytes_sent < 0.8 * static_cast<double>(off.links[1].bytes_sent));
  CHECK(on.links[2].bytes_sent > 0.8 * static_cast<double>(off.links[2].bytes_sent));
  CHECK(on.final_test_accuracy > 0.9);
  CHECK_THAT(on.verify.off_reason, Contains("gossip.link_tau_exponent"));
  CHECK_FALSE(off.verify.off_reason.find("link_tau") != std::string::npos);
}

TEST_CASE("gossip.contribution = rate: a WAN-like simulation is deterministic and weighs by observed rates",
          "[link_model][contribution][sim]") {
  const std::string smoke = std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml";
  // Steps of 20 ms, so that frames arrive while peers train; rates measured every 2 of our steps.
  const std::vector<std::string> wan{"verify.rate=0", "sim.link_classes=home:2,office:2", "sim.speed_spread=3",
                                     "sim.step_ms=20", "gossip.contribution_window=2"};
  auto with_rule = [&](const std::string& rule) {
    auto sets = wan;
    sets.push_back("gossip.contribution=" + rule);
    return load_config(smoke, sets);
  };
  const auto a = scratch("contribution-sim-a"), b = scratch("contribution-sim-b"), u = scratch("contribution-sim-u");
  const auto sa = run_simulation(with_rule("rate"), a.string());
  run_simulation(with_rule("rate"), b.string());
  const auto su = run_simulation(with_rule("uniform"), u.string());
  CHECK(slurp(a / "metrics.jsonl") == slurp(b / "metrics.jsonl"));
  // The weights change the mixing, not the traffic's rules: other parameters, same peers and steps.
  CHECK(slurp(a / "metrics.jsonl") != slurp(u / "metrics.jsonl"));
  CHECK(sa.final_test_accuracy > 0.5);
  CHECK(std::isfinite(su.final_test_accuracy));
  // Refused where it cannot apply, naming both keys.
  CHECK_THROWS_WITH(load_config(smoke, {"gossip.contribution=rate", "gossip.robust=median"}),
                    Contains("gossip.robust = median with gossip.contribution = rate"));
  CHECK_THROWS_WITH(load_config(smoke, {"gossip.contribution=mixing", "gossip.mode=delta", "gossip.robust=none"}),
                    Contains("with gossip.contribution = mixing"));
  CHECK_THROWS_WITH(choose_verification(load_config(smoke, {"gossip.contribution=rate", "verify.scheme=segment",
                                                            "verify.rate=0.1"})),
                    Contains("gossip.contribution = rate"));
  CHECK_THAT(choose_verification(load_config(smoke, {"gossip.contribution=rate"})).off_reason,
             Contains("gossip.contribution = rate"));
}

TEST_CASE("gossip.link_period_max: a WAN-like simulation with per-link periods runs, repeats, and is refused "
          "without measured rates", "[link_model][link_budget][sim][config]") {
  const std::string smoke = std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml";
  const std::vector<std::string> wan{"verify.rate=0",        "sim.link_classes=home:2,office:2",
                                     "sim.speed_spread=3",   "sim.step_ms=20",
                                     "gossip.contribution=rate", "gossip.contribution_window=2",
                                     "gossip.link_period_max=4"};
  const auto a = scratch("link-budget-sim-a"), b = scratch("link-budget-sim-b");
  const auto sa = run_simulation(load_config(smoke, wan), a.string());
  run_simulation(load_config(smoke, wan), b.string());
  CHECK(slurp(a / "metrics.jsonl") == slurp(b / "metrics.jsonl"));
  CHECK(sa.final_test_accuracy > 0.5);
  // summary.json reports, per peer, each link's send period, frames and the
  // peer's published rounds. On 1 Mbit/s uplinks with speeds spread 3x a
  // slow peer's uplink is busy and its fast neighbour's link gets thinned.
  const auto c = scratch("link-budget-sim-c");
  std::vector<std::string> busy = wan;
  busy[1] = "sim.bandwidth_mbps=1";
  const auto sc = run_simulation(load_config(smoke, busy), c.string());
  REQUIRE(sc.link_sends.size() == 4);
  uint64_t thinned = 0;
  for (size_t i = 0; i < 4; ++i) {
    INFO("peer " << i);
    REQUIRE(sc.link_sends[i].size() == 2);  // the ring's two neighbours
    for (const auto& l : sc.link_sends[i]) {
      CHECK(l.peer != i);
      CHECK(l.period >= 1);
      CHECK(l.period <= 4);
      CHECK(l.frames > 0);
      CHECK(l.frames <= l.rounds);
      CHECK(l.rounds == sc.link_sends[i][0].rounds);
      thinned += l.rounds - l.frames;
    }
  }
  CHECK(thinned > 0);
  const std::string js = slurp(c / "summary.json");
  CHECK_THAT(js, Contains("\"link_sends\": [\n    {\"peer\": 0, \"links\": [{\"to\": "));
  CHECK(nlohmann::json::parse(js)["link_sends"][3]["links"][1]["rounds"] == sc.link_sends[3][1].rounds);
  // The first run's uplinks keep up: every link sent every published round.
  REQUIRE(sa.link_sends.size() == 4);
  for (const auto& p : sa.link_sends)
    for (const auto& l : p) CHECK(l.frames == l.rounds);
  CHECK(run_simulation(load_config(smoke, {"verify.rate=0"}), scratch("link-budget-sim-off").string()).link_sends.empty());
  CHECK_THROWS_WITH(load_config(smoke, {"gossip.link_period_max=4"}),
                    Contains("gossip.contribution = uniform with gossip.link_period_max = 4"));
  CHECK_THROWS_WITH(load_config(smoke, {"gossip.link_period_max=0"}), Contains("gossip.link_period_max"));
}
