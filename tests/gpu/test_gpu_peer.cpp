// A GPU peer and a CPU peer gossiping under the actors (the simulation's
// wiring) train together as two CPU peers do, with the GPU peer's gossip on
// the device: the same run as tests/actors/test_backend_peer.cpp, with the
// CUDA backend in place of the CPU one.
#include "gpu/cuda_backend.hpp"
#include "tests/actors/backend_peer_pair.hpp"

using namespace murmur;
using namespace murmur::testing;

TEST_CASE("a GPU peer and a CPU peer gossiping under the actors converge together, gossip on the device",
          "[gpu][peer]") {
  int64_t downloads = 0;
  const run_result gpu = run_pair([] { return make_cuda_backend(0); }, false, &downloads);
  const run_result cpu = run_pair({});
  const int64_t p = static_cast<int64_t>(cpu.params[0].size());
  INFO("GPU trainer downloads " << downloads << " floats in 12 rounds; parameters " << p);
  CHECK(downloads <= 3 * p);  // frames come from the gossip stream, not the parameters
  for (uint32_t i = 0; i < 2; ++i) {
    INFO("peer " << i);
    CHECK(max_abs_diff(gpu.params[i], cpu.params[i]) < 1e-3);
    CHECK(gpu.eval[i].test_loss == Approx(cpu.eval[i].test_loss).epsilon(1e-3));
    CHECK(gpu.eval[i].steps == 12);
    CHECK(static_cast<double>(gpu.bytes_sent[i]) == Approx(static_cast<double>(cpu.bytes_sent[i])).epsilon(0.05));
  }
  CHECK(gpu.state0 == gpu.params[0]);
}
