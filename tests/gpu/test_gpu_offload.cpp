// Offload to a GPU helper: a weak CPU peer hands its Linear products to a
// peer that trains on the GPU, which answers them with cuBLAS on a stream of
// its own; the CPU peer's Freivalds checks pass them (TF32 off) and its
// steps are the all-local ones; a cheating GPU helper is caught. The same
// runs as tests/actors/test_offload_backend.cpp, CUDA in place of the CPU
// backend.
#include "gpu/cuda_backend.hpp"
#include "tests/actors/offload_backend_pair.hpp"

using namespace murmur;

TEST_CASE("a CPU peer offloading to a GPU helper: answers from cuBLAS pass its checks, its steps are local ones",
          "[gpu][offload]") {
  testing::check_backend_helper_answers([] { return make_cuda_backend(0); });
}

TEST_CASE("a CPU peer offloading to a cheating GPU helper catches it on its first wrong answer", "[gpu][offload]") {
  testing::check_cheating_backend_helper_caught([] { return make_cuda_backend(0); });
}
