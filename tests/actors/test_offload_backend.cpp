// Offload with a helper that trains on the CPU backend (the path a GPU
// helper takes: train.device = cuda): its answers come from the backend's
// gemm on a stream of its own, the offloading peer steps as all-local, and
// a cheating helper on a backend is caught (offload_backend_pair.hpp).
#include "tensor/cpu_backend.hpp"
#include "tests/actors/offload_backend_pair.hpp"

using namespace murmur;

TEST_CASE("offload to a backend helper: its answers come from the backend's gemm, the step is the local one",
          "[backend][offload][actors]") {
  testing::check_backend_helper_answers([] { return make_cpu_backend(); });
}

TEST_CASE("offload to a backend helper that cheats: caught on its first wrong answer", "[backend][offload][actors]") {
  testing::check_cheating_backend_helper_caught([] { return make_cpu_backend(); });
}
