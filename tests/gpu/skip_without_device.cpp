// test_gpu's cross-backend tests need a CUDA device. A listener looks for
// one before any test runs: without one the whole suite says so and exits
// 77, which CTest reports as Skipped (SKIP_RETURN_CODE in
// tests/CMakeLists.txt): never a silent pass. (A listener rather than an own
// main: the suite shares the compiled Catch2 main with the other suites.)
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>

#include "gpu/cuda_backend.hpp"

namespace {

struct skip_without_device : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunStarting(const Catch::TestRunInfo& info) override {
    const murmur::cuda_probe probe = murmur::probe_cuda();
    if (probe.device_count == 0) {
      std::printf("skipped: no CUDA device (%s)\n", probe.reason.c_str());
      std::fflush(stdout);
      std::exit(77);
    }
    std::printf("%s on cuda:0 (%s), %d device(s)\n", info.name.c_str(), probe.names[0].c_str(), probe.device_count);
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(skip_without_device)
