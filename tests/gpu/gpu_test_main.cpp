// test_gpu's main: the cross-backend tests need a CUDA device. Without one
// the whole suite says so and exits 77, which CTest reports as Skipped
// (SKIP_RETURN_CODE in tests/CMakeLists.txt): never a silent pass.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>

#include "gpu/cuda_backend.hpp"

int main(int argc, char* argv[]) {
  const murmur::cuda_probe probe = murmur::probe_cuda();
  if (probe.device_count == 0) {
    std::printf("skipped: no CUDA device (%s)\n", probe.reason.c_str());
    return 77;
  }
  std::printf("test_gpu on cuda:0 (%s), %d device(s)\n", probe.names[0].c_str(), probe.device_count);
  return Catch::Session().run(argc, argv);
}
