// Offload in the simulator (docs/trust.md, Offload): a peer 8x slower than
// its helper hands its Linear products over and trains >= 3x faster in
// virtual time when the helper is honest; a cheating helper is caught on
// its first wrong answer, quarantined, and the peer computes locally from
// then on. Plus the one-line refusals of nonsense offload settings, and
// where offloading peers train (run/peer_device.hpp).
#include <catch2/catch.hpp>

#include "run/config_schema.hpp"
#include "run/offload_setup.hpp"
#include "run/peer_device.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace {

// Peer 1 of 2 is 8x slower than peer 0, its helper when offload is on.
// Products big enough (512-wide layers, batch 512) that a 10 Gbit/s link
// moves their operands faster than the slow peer multiplies them.
RunConfig weak_peer(std::vector<std::string> extra = {}) {
  std::vector<std::string> o = {"data.dataset=synthetic", "data.train_samples=8000", "data.test_samples=500",
                                "model.arch=flatten,linear:512,relu,linear:512,relu,linear:10",
                                "train.batch=512", "train.epochs=2", "sim.peers=2", "sim.latency_ms=0.02",
                                "sim.bandwidth_mbps=10000", "sim.slow_peers=1", "sim.slow_factor=8"};
  o.insert(o.end(), extra.begin(), extra.end());
  return parse_config("", "test.toml", o);
}

const offload_peer_summary& slow_peer(const sim_summary& s) {
  REQUIRE(s.offload.enabled);
  REQUIRE(s.offload.peers.size() == 1);
  REQUIRE(s.offload.peers[0].peer == 1);
  return s.offload.peers[0];
}

}  // namespace

TEST_CASE("offload: a peer 8x slower than its honest helper trains >= 3x faster", "[offload][sim]") {
  const sim_summary off = run_simulation(weak_peer(), scratch("offload_off"));
  const sim_summary on = run_simulation(weak_peer({"offload.to=0", "offload.peers=1"}), scratch("offload_on"));
  CHECK_FALSE(off.offload.enabled);
  const auto& p = slow_peer(on);
  CHECK(p.steps == on.steps);
  // Without offload the slow peer is the last to finish: the run's virtual time is its.
  const double speedup = off.virtual_time_s / p.finished_s;
  INFO("virtual time without offload " << off.virtual_time_s << " s, slow peer with offload " << p.finished_s
                                        << " s (" << speedup << "x)");
  CHECK(speedup >= 3.0);
  CHECK(on.virtual_time_s < off.virtual_time_s / 2);
  CHECK(p.offloaded > 0);
  CHECK(p.verified == p.offloaded);
  CHECK(p.rejected == 0);
  CHECK(p.helper_trusted);
  CHECK(on.offload.tasks_served == p.offloaded);
  CHECK(p.helper_credit_gflop == Approx(p.verified_gflop));  // the worker is credited with what it computed
  CHECK(p.verified_gflop > 10 * p.local_gflop);
  CHECK(on.detection.honest_quarantined == 0);
  // The model trains (10 classes: chance is 0.1); the products are the
  // same up to rounding, only the gossip's timing differs.
  CHECK(on.final_test_accuracy > 0.3);
}

TEST_CASE("offload: a cheating helper is caught on its first wrong answer", "[offload][sim]") {
  const sim_summary off = run_simulation(weak_peer(), scratch("offload_cheat_off"));
  // perturb changes one element of each answer by 1e-2 of its row's norm:
  // a Freivalds round sees it with probability 1/2, 16 rounds miss it with
  // 2^-16; skip_product answers random numbers, seen by any round.
  for (const char* cheat : {"perturb", "skip_product"}) {
    DYNAMIC_SECTION(cheat) {
      const sim_summary s = run_simulation(
          weak_peer({"offload.to=0", "offload.peers=1", std::string("offload.cheat=") + cheat, "attack.eps=1e-2",
                     "offload.rounds=16"}),
          scratch(std::string("offload_cheat_") + cheat));
      const auto& p = slow_peer(s);
      CHECK(p.offloaded == 1);  // the first answer was wrong, and the last one asked for
      CHECK(p.rejected == 1);
      CHECK(p.verified == 0);
      CHECK_FALSE(p.helper_trusted);
      CHECK(p.helper_credit_gflop == 0);
      CHECK(s.offload.tasks_served == 1);
      CHECK(s.quarantines_by_cause.at("evidence") >= 1);  // the peer quarantined its helper
      // The cost: the slow peer computes everything itself again, as without offload.
      CHECK(s.virtual_time_s == Approx(off.virtual_time_s).epsilon(0.1));
      CHECK(s.final_test_accuracy > 0.3);
    }
  }
}

TEST_CASE("offload settings that make no sense are refused in one line", "[offload][config]") {
  auto refused = [](std::vector<std::string> o, const std::string& what) {
    try {
      RunConfig c = parse_config("", "test.toml", o);
      offload_setup_of(c, 4, {}, nullptr);
      FAIL("accepted: " << what);
    } catch (const ConfigError& e) {
      const std::string m = e.what();
      INFO(m);
      CHECK(m.find(what) != std::string::npos);
      CHECK(m.find('\n') == std::string::npos);
    }
  };
  refused({"offload.to=2", "offload.peers=1,2"}, "cannot offload to itself");
  refused({"offload.to=4", "offload.peers=1"}, "offload.to = 4");
  refused({"offload.to=0", "offload.peers=7"}, "peer 7 does not exist");
  refused({"offload.to=0", "offload.peers=x"}, "'x' is not a peer index");
  refused({"offload.to=0"}, "offload.peers = \"\"");
  refused({"offload.peers=1"}, "offload.to = \"\"");
  refused({"offload.to=0", "offload.peers=slowest"}, "cannot know it is the slowest");
  refused({"offload.to=0", "offload.peers=1", "pipeline.stages=2"}, "data-parallel");
  // A label names the helper in murmur peer.
  RunConfig c = parse_config("", "test.toml", {"offload.to=bob", "offload.peers=0,2"});
  auto o = offload_setup_of(c, 3, {"alice", "bob", "carol"}, nullptr);
  CHECK(o.helper == 1);
  CHECK(o.offloads(0));
  CHECK(o.offloads(2));
  CHECK_FALSE(o.offloads(1));
  // slowest, in the simulator: the largest modelled step cost.
  RunConfig s = parse_config("", "test.toml", {"offload.to=0", "offload.peers=slowest"});
  std::vector<double> costs = {1, 1, 8, 1};
  CHECK(offload_setup_of(s, 4, {}, &costs).offloaders == std::vector<uint32_t>{2});
}

TEST_CASE("offload with train.device = cuda is accepted; the offloading peers train on the CPU",
          "[offload][config][device]") {
  // validate_config (parse_config) accepts it: murmur sim trains the
  // offloaders on the CPU and the others on GPUs.
  RunConfig c = parse_config("", "test.toml", {"train.device=cuda", "offload.to=0", "offload.peers=1,2"});
  const auto o = offload_setup_of(c, 4, {}, nullptr);
  for (uint32_t i : {1u, 2u}) {
    INFO("peer " << i);
    const resolved_device d = peer_device_of(c, i, o.offloads(i));
    CHECK(d.label == "cpu");
    CHECK_FALSE(d.cuda);
  }
  CHECK(parse_config("", "test.toml", {"train.device=cuda:0", "offload.to=0", "offload.peers=1"}).device == "cuda:0");
  // auto: the offloader on the CPU; the helper where auto puts it (a GPU
  // when one is usable, as without offload).
  RunConfig a = parse_config("", "test.toml", {"offload.to=0", "offload.peers=1"});
  CHECK(peer_device_of(a, 1, true).label == "cpu");
  CHECK(peer_device_of(a, 0, false).label == resolve_device(parse_device("auto"), 0).label);
  // murmur peer: an explicit cuda on an offloading peer is refused, in one
  // line naming both keys; auto, cpu and the other peers pass.
  RunConfig p = parse_config("", "test.toml",
                             {"train.device=cuda:0", "offload.to=0", "offload.peers=1", "peer.count=2", "peer.index=1"});
  try {
    check_offloader_device(p, true);
    FAIL("accepted: train.device = cuda:0 on an offloading peer");
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("train.device = cuda:0 with offload.peers = 1") != std::string::npos);
    CHECK(m.find("peer.index = 1") != std::string::npos);
    CHECK(m.find('\n') == std::string::npos);
  }
  CHECK_NOTHROW(check_offloader_device(p, false));
  CHECK_NOTHROW(check_offloader_device(a, true));
  CHECK_NOTHROW(check_offloader_device(parse_config("", "test.toml", {"train.device=cpu"}), true));
}
