// Pipeline stages on the GPU train as the host stages: the run of
// tests/actors/test_pipeline_backend.cpp with the CUDA backend in place of
// the CPU one (cuBLAS sums in its own order, hence float-rounding bounds
// relative to each array's scale).
#include <cmath>
#include <cstdio>

#include "gpu/cuda_backend.hpp"
#include "tests/actors/backend_pipeline_run.hpp"

using namespace murmur;
using namespace murmur::testing;

TEST_CASE("pipeline stages on the GPU train as the host stages", "[gpu][pipeline]") {
  pipeline_run_settings p;
  auto [model, cuts, S, M] = GENERATE(table<std::string, std::string, uint32_t, uint32_t>({
      {"flatten,linear:48,relu,linear:32,tanh,linear:24,relu,linear:10", "", 3, 4},
      {"conv2d:4:3,relu,maxpool2d:2,conv2d:8:3,relu,flatten,linear:10", "3,6", 3, 3},
  }));
  p.model = model;
  p.cuts = cuts;
  p.stages = S;
  p.microbatches = M;
  p.steps = 20;
  INFO(model << " cuts '" << cuts << "' S " << S << " M " << M);
  const pipeline_run host = run_backend_pipeline(p, {});
  const pipeline_run gpu = run_backend_pipeline(p, [] { return make_cuda_backend(0); });
  REQUIRE(gpu.losses.size() == host.losses.size());
  double loss = 0;
  for (size_t i = 0; i < host.losses.size(); ++i)
    loss = std::max(loss, std::abs(gpu.losses[i] - host.losses[i]) / std::abs(host.losses[i]));
  const double params = relative_diff(gpu.params, host.params);
  std::printf("pipeline stages on cuda:0 vs the host, %s: worst relative difference: loss %.1e, params %.1e\n",
              model.c_str(), loss, params);
  CHECK(loss < 1e-4);
  CHECK(params < 1e-3);
}
