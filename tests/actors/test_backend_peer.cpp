// A peer whose trainer steps on a compute backend (here the CPU backend,
// the path train.device = cuda takes on a GPU), wired as the simulation
// wires peers: shard and gossip actors under CAF's deterministic scheduler.
// Gossiping with a host peer it moves as a host peer would, with its gossip
// on the backend (only frames cross to the host) or, for settings backend
// gossip does not run, on the host mirror synced at each mix and publish;
// evaluation and state reads see its current parameters.
#include <catch2/catch.hpp>

#include "tensor/cpu_backend.hpp"
#include "tests/actors/backend_peer_pair.hpp"

using namespace murmur;
using namespace murmur::testing;

namespace {
const auto on_cpu_backend = [] { return make_cpu_backend(); };
}  // namespace

TEST_CASE("a backend peer gossiping with a host peer under the actors moves as a host peer does",
          "[backend][gossip][peer]") {
  const run_result dev = run_pair(on_cpu_backend), host = run_pair({});
  for (uint32_t i = 0; i < 2; ++i) {
    INFO("peer " << i);
    CHECK(max_abs_diff(dev.params[i], host.params[i]) < 1e-3);
    CHECK(dev.eval[i].test_loss == Approx(host.eval[i].test_loss).epsilon(1e-3));
    CHECK(dev.eval[i].steps == 12);
    CHECK(dev.bytes_sent[i] > 0);
    // Frames differ only where a coordinate sits at the threshold's edge.
    CHECK(static_cast<double>(dev.bytes_sent[i]) == Approx(static_cast<double>(host.bytes_sent[i])).epsilon(0.05));
  }
  // A state read (a joining peer's donor) returns the backend's current parameters.
  CHECK(dev.state0 == dev.params[0]);
}

TEST_CASE("a backend peer's gossip stays on the backend; in delta mode it runs on the synced host mirror",
          "[backend][gossip][peer]") {
  // Backend gossip: the trainer's backend hands nothing down for gossip (the
  // frames come from the gossip stream); only the final read and the state
  // read download the parameters.
  int64_t on_backend = 0, on_host = 0;
  const run_result dev = run_pair(on_cpu_backend, false, &on_backend);
  // Delta mode (not run on a backend): every publish downloads the parameters.
  const run_result dev_delta = run_pair(on_cpu_backend, true, &on_host), host_delta = run_pair({}, true);
  const int64_t p = static_cast<int64_t>(dev.params[0].size());
  INFO("trainer backend downloads: " << on_backend << " with backend gossip, " << on_host
                                     << " with host gossip; parameters " << p);
  CHECK(on_backend <= 3 * p);
  CHECK(on_host >= 12 * p);
  for (uint32_t i = 0; i < 2; ++i) {
    INFO("peer " << i);
    CHECK(max_abs_diff(dev_delta.params[i], host_delta.params[i]) < 1e-3);
    CHECK(dev_delta.eval[i].test_loss == Approx(host_delta.eval[i].test_loss).epsilon(1e-3));
  }
}

TEST_CASE("a backend peer's robust gossip (clipped_gossip is the default) stays on the backend, moves as a host peer's",
          "[backend][gossip][peer][robust]") {
  for (auto rule : {robust_rule::clipped_gossip, robust_rule::centered_clip, robust_rule::median}) {
    INFO("rule " << static_cast<int>(rule));
    int64_t downloads = 0;
    const run_result dev = run_pair(on_cpu_backend, false, &downloads, nullptr, rule);
    const run_result host = run_pair({}, false, nullptr, nullptr, rule);
    const int64_t p = static_cast<int64_t>(dev.params[0].size());
    INFO("trainer backend downloads " << downloads << ", parameters " << p);
    CHECK(downloads <= 3 * p);  // as plain backend gossip: no per-round mirror sync
    for (uint32_t i = 0; i < 2; ++i) {
      INFO("peer " << i);
      CHECK(max_abs_diff(dev.params[i], host.params[i]) < 1e-3);
      CHECK(dev.eval[i].test_loss == Approx(host.eval[i].test_loss).epsilon(1e-3));
      CHECK(dev.bytes_sent[i] > 0);
    }
  }
}

TEST_CASE("a backend peer verifies on its backend, on a stream of its own, with a host peer's verdicts",
          "[backend][verify][peer]") {
  // Delta mode keeps gossip on the host: the only other stream is the verifier's.
  cheat_settings honest;
  const run_result dev = run_pair(on_cpu_backend, true, nullptr, &honest);
  const run_result host = run_pair({}, true, nullptr, &honest);
  CHECK(dev.streams == 1);
  CHECK(dev.stream_uploads > 0);  // the Freivalds operands and random vectors went there
  for (uint32_t i = 0; i < 2; ++i) {
    INFO("verifier of peer " << i);
    CHECK(dev.verify[i].passed >= 10);
    CHECK(dev.verify[i].failed == 0);
    CHECK(dev.verify[i].passed == host.verify[i].passed);
  }
  // Peer 1 cheats from step 2: the backend peer's verifier catches it, as a host peer's does.
  cheat_settings cheat;
  cheat.kind = compute_cheat::perturb;
  cheat.eps = 1e-2;
  cheat.start_step = 2;
  const run_result dev_cheat = run_pair(on_cpu_backend, true, nullptr, &cheat);
  const run_result host_cheat = run_pair({}, true, nullptr, &cheat);
  CHECK(dev_cheat.verify[0].failed >= 1);
  CHECK(dev_cheat.verify[0].failed == host_cheat.verify[0].failed);
  CHECK(dev_cheat.verify[0].passed == host_cheat.verify[0].passed);
  CHECK(dev_cheat.verify[0].caught == host_cheat.verify[0].caught);
  CHECK(dev_cheat.verify[1].failed == 0);
}
