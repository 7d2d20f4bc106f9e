// The synchronous ring all-reduce baseline (gossip.mode = allreduce,
// sim/ring_allreduce.hpp) and the heterogeneous WAN config.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "run/config_schema.hpp"
#include "run/link_model.hpp"
#include "sim/ring_allreduce.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;
using murmur::test::slurp;
using Catch::Matchers::Contains;

namespace {

RunConfig smoke(std::vector<std::string> overrides) {
  overrides.push_back("verify.rate=0");
  return load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml", overrides);
}

}  // namespace

TEST_CASE("ring all-reduce: chunks, bytes and a round's time on a known link set", "[allreduce]") {
  // 4 peers, 1000 floats: chunks of 250 floats (1000 bytes).
  ring_allreduce r(4, 1000);
  CHECK(r.messages_per_peer() == 6);
  // Reduce-scatter sends chunks i, i-1, i-2; all-gather i+1, i, i-1.
  CHECK(r.chunk_sent(1, 0) == 1);
  CHECK(r.chunk_sent(1, 2) == 3);
  CHECK(r.chunk_sent(1, 3) == 2);
  CHECK(r.chunk_sent(1, 5) == 0);
  for (uint32_t i = 0; i < 4; ++i) CHECK(r.bytes_sent(i) == 6000);  // 2(n-1)/n of 4000 bytes
  // Uniform 8 Mbit/s, 10 ms: 1 ms per chunk plus the latency, 6 phases.
  RunConfig u;
  u.peers = 4;
  u.bandwidth_mbps = 8;
  u.latency_ms = 10;
  CHECK(r.seconds(link_model::from_config(u, 4), 0.0) == Approx(6 * 0.011));
  // Home peers 0, 1 (10 Mbit/s up, 50 down, 10 ms access), datacenter 2, 3
  // (10 Gbit/s, 0.25 ms). The ring 0 -> 1 -> 2 -> 3 -> 0: the slowest
  // transfer of every phase is 0 -> 1, 0.8 ms on the home uplink plus
  // 10 + 10 ms of access latency.
  RunConfig h;
  h.peers = 4;
  set_key(h, "sim.link_classes", "home:2,datacenter:2", "test");
  h.latency_ms = 0;
  const auto links = link_model::from_config(h, 4);
  CHECK(r.seconds(links, 0.0) == Approx(6 * 0.0208));
  CHECK(r.seconds(links, 5.0) == Approx(6 * 0.0208));  // no windows: the same at any time
  // Uneven chunks: 10 floats over 4 peers are 3, 3, 2, 2; every float travels 2(n-1) hops.
  ring_allreduce odd(4, 10);
  uint64_t total = 0;
  for (uint32_t i = 0; i < 4; ++i) total += odd.bytes_sent(i);
  CHECK(total == 2 * 3 * 40);
  CHECK(ring_allreduce(1, 1000).seconds(links, 0.0) == 0);
  CHECK(ring_allreduce(1, 1000).bytes_sent(0) == 0);
}

TEST_CASE("ring all-reduce: an outage window holds the round until it ends", "[allreduce]") {
  RunConfig c;
  c.peers = 2;
  c.bandwidth_mbps = 8;
  c.latency_ms = 0;
  set_key(c, "sim.link_events", "0-10:1:0", "test");
  ring_allreduce r(2, 500);  // chunks of 1000 bytes: 1 ms each, 2 phases
  const auto links = link_model::from_config(c, 2);
  CHECK(r.seconds(links, 20.0) == Approx(0.002));
  CHECK(r.seconds(links, 0.0) == Approx(10.002));  // peer 1 sends nothing until 10 s
}

TEST_CASE("ring all-reduce: the average is the exact mean, the same bits on every peer", "[allreduce]") {
  std::vector<float> a{1, 2, 3}, b{3, 2, 1}, c{2, 5, 0.5f};
  ring_allreduce::average({a.data(), b.data(), c.data()}, 3);
  CHECK(a == b);
  CHECK(b == c);
  CHECK(a[0] == 2.0f);
  CHECK(a[1] == 3.0f);
  CHECK(a[2] == Approx(1.5f));
}

TEST_CASE("gossip.mode = allreduce: rounds wait for the slowest peer and the ring; bytes are a ring all-reduce's",
          "[allreduce][sim]") {
  auto cfg = smoke({"gossip.mode=allreduce", "sim.loss=0", "sim.speed_spread=0", "sim.step_ms=10",
                    "sim.slow_peers=1", "sim.slow_factor=3", "sim.link_classes=home:2,office:2"});
  const auto dir = scratch("allreduce-timing");
  const auto s = run_simulation(cfg, dir.string());
  REQUIRE(s.steps == 96);  // 3 epochs of 32 steps
  const double ring_s = ring_allreduce(4, s.params).seconds(link_model::from_config(cfg, 4), 0.0);
  CHECK(ring_s > 0.05);  // the home links: 6 phases of 20 ms latency and more
  CHECK(s.virtual_time_s == Approx(96 * (0.030 + ring_s)));
  CHECK(s.bytes_sent_total == static_cast<uint64_t>(s.dense_allreduce_bytes));
  CHECK(s.msgs_sent_total == 96u * 4 * 6);
  CHECK(s.consensus_distance < 1e-6);
  CHECK(s.final_test_accuracy > 0.9);
  // Per-peer traffic reaches metrics.jsonl and the links' summary.
  auto j = nlohmann::json::parse(slurp(dir / "summary.json"));
  CHECK(j["links"][0]["bytes_sent"].get<uint64_t>() == 96 * ring_allreduce(4, s.params).bytes_sent(0));
  CHECK(j["verify"]["off"].get<std::string>() == "verify.rate = 0");
}

TEST_CASE("gossip.mode = allreduce averages as exact gossip does, and repeats", "[allreduce][sim]") {
  // Exact averaging by gossip: dense frames to every peer, gamma 1, the
  // plain mean (docs/gossip_schedule.md), on links where every frame of a
  // step arrives before anyone's next step (1 ms latency, 10 ms steps):
  // each peer's step k+1 starts from the mean of all peers after step k.
  const std::vector<std::string> same{"sim.loss=0", "sim.speed_spread=0", "sim.bandwidth_mbps=0", "sim.latency_ms=1",
                                      "sim.step_ms=10"};
  auto ar = same, ex = same;
  ar.push_back("gossip.mode=allreduce");
  for (const char* kv : {"gossip.mode=dense", "gossip.topology=complete", "gossip.gamma=1", "gossip.robust=none"})
    ex.push_back(kv);
  const auto a = scratch("allreduce-a"), b = scratch("allreduce-b"), e = scratch("allreduce-exact");
  const auto sa = run_simulation(smoke(ar), a.string());
  run_simulation(smoke(ar), b.string());
  const auto se = run_simulation(smoke(ex), e.string());
  CHECK(slurp(a / "metrics.jsonl") == slurp(b / "metrics.jsonl"));
  // The same trajectory up to float rounding (the gossip mean is
  // x_i + 1/n sum (x_j - x_i), the all-reduce's a sum in double).
  REQUIRE(sa.final_model.written);
  REQUIRE(se.final_model.written);
  CHECK(sa.final_model.test_accuracy == Approx(se.final_model.test_accuracy).margin(0.002));
  CHECK(sa.final_model.test_loss == Approx(se.final_model.test_loss).epsilon(0.02));
  CHECK(sa.consensus_distance < 1e-6);  // every evaluation follows a round's average
  // 6 ring phases of 1 ms after each 10 ms step.
  CHECK(sa.virtual_time_s == Approx(96 * 0.016));
  CHECK(sa.bytes_sent_total < se.bytes_sent_total);  // 2(n-1)/n of the model per peer, not n-1 copies
}

TEST_CASE("gossip.mode = allreduce refuses what it cannot do, by name", "[allreduce][config]") {
  const std::string smoke_path = std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml";
  CHECK_THROWS_WITH(load_config(smoke_path, {"gossip.mode=allreduce", "verify.rate=0.1"}),
                    Contains("verify.rate = 0.1 with gossip.mode = allreduce"));
  CHECK_THROWS_WITH(load_config(smoke_path, {"gossip.mode=allreduce", "checkpoint.every=10"}),
                    Contains("checkpoint.every = 10 with gossip.mode = allreduce"));
  CHECK_THROWS_WITH(load_config(smoke_path, {"gossip.mode=allreduce", "attack.kind=gaussian", "attack.fraction=0.25"}),
                    Contains("attack.kind = gaussian with gossip.mode = allreduce"));
  // verify.rate = auto turns itself off, saying why.
  auto s = run_simulation(load_config(smoke_path, {"gossip.mode=allreduce", "train.epochs=0.25"}),
                          scratch("allreduce-auto-verify").string());
  CHECK_THAT(s.verify.off_reason, Contains("gossip.mode = allreduce"));
}

TEST_CASE("configs/fmnist-wan.toml loads and runs a few steps in each strategy", "[allreduce][sim]") {
  const std::string path = std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-wan.toml";
  const RunConfig full = load_config(path);
  CHECK(full.peers == 8);
  CHECK(full.link_classes == "home:4,office:4");
  CHECK(full.speed_spread == 3.0);
  for (std::string mode : {"threshold", "allreduce"}) {
    INFO("mode " << mode);
    auto cfg = load_config(path, {"gossip.mode=" + mode, "data.train_samples=2048", "data.test_samples=500",
                                  "train.epochs=1", "train.eval_every=8"});
    const auto s = run_simulation(cfg, scratch("wan-" + mode).string());
    CHECK(s.steps == 4);  // 2048 / 8 peers / batch 64
    CHECK(s.bytes_sent_total > 0);
    REQUIRE(s.links.size() == 8);
    CHECK(s.links[0].cls == "home");
    CHECK(s.links[7].up_mbps == 1000);
  }
}
