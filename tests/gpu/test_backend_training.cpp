// Whole training steps through backend_model on the CUDA backend against
// the CPU backend: the same model, initial parameters, batches and
// optimizer; after each step the losses, and after the last the parameters,
// must agree. Products sum in different orders on the two sides (float
// rounding, ~1e-7 relative per product), which a few SGD steps carry into
// the parameters but do not amplify much: tolerances, stated below, are
// ~100x what rounding alone gives, and far below what a wrong op gives (a
// wrong gradient moves parameters by ~lr |g|, ~1e-2 here).
#include <algorithm>
#include <cmath>

#include "backend_pair.hpp"
#include "tensor/backend_model.hpp"
#include "tensor/sequential.hpp"

using namespace murmur;
using namespace murmur::gpu_test;

namespace {

struct run_result {
  std::vector<float> losses;
  std::vector<float> params;
};

run_result train(compute_backend& be, const std::string& spec, const Shape& input, backend_optimizer opt,
                 const std::vector<std::vector<float>>& xs, const std::vector<std::vector<int32_t>>& ys,
                 int64_t batch) {
  auto model = build_model(spec, input, 10);
  model->init(42);
  backend_model bm(be, *model, opt, 42);
  run_result r;
  for (size_t s = 0; s < xs.size(); ++s) r.losses.push_back(bm.train_step(xs[s].data(), ys[s].data(), batch, 0.05f));
  r.params.resize(static_cast<size_t>(bm.param_count()));
  bm.download_params(r.params.data());
  return r;
}

void compare(const std::string& spec, const Shape& input, int64_t batch, backend_optimizer opt) {
  Rng rng(99);
  const int64_t features = shape_numel(input);
  std::vector<std::vector<float>> xs;
  std::vector<std::vector<int32_t>> ys;
  for (int step = 0; step < 5; ++step) {
    xs.push_back(normal(rng, batch * features));
    std::vector<int32_t> y(static_cast<size_t>(batch));
    for (auto& l : y) l = static_cast<int32_t>(rng.below(10));
    ys.push_back(y);
  }
  const run_result c = train(cpu(), spec, input, opt, xs, ys, batch);
  const run_result g = train(gpu(), spec, input, opt, xs, ys, batch);
  INFO(spec << " batch " << batch << (opt.type == backend_optimizer::kind::adam ? " adam" : " sgd"));
  REQUIRE(c.params.size() == g.params.size());
  // Losses: 1e-4 relative (rounding alone gives ~1e-6).
  for (size_t s = 0; s < c.losses.size(); ++s) {
    INFO("step " << s << " loss cpu " << c.losses[s] << " gpu " << g.losses[s]);
    CHECK(std::fabs(c.losses[s] - g.losses[s]) <= 1e-4 * std::max(1.f, std::fabs(c.losses[s])));
  }
  // Parameters: 1e-4 of the largest parameter, each.
  float pmax = 0;
  for (float p : c.params) pmax = std::max(pmax, std::fabs(p));
  expect_close(spec + " parameters after 5 steps", c.params, g.params, [&](size_t) { return 1e-4 * pmax; });
}

}  // namespace

TEST_CASE("cuda backend: 5 training steps of mlp match the CPU backend", "[gpu][training]") {
  backend_optimizer sgd;  // momentum 0.9
  compare("mlp", {1, 28, 28}, 64, sgd);
  backend_optimizer adam;
  adam.type = backend_optimizer::kind::adam;
  compare("mlp", {1, 28, 28}, 33, adam);
}

TEST_CASE("cuda backend: 5 training steps of resnet9:4 match the CPU backend", "[gpu][training]") {
  backend_optimizer sgd;
  sgd.weight_decay = 5e-4f;
  compare("resnet9:4", {3, 32, 32}, 16, sgd);
}

TEST_CASE("cuda backend: 5 training steps of a dropout, sigmoid and tanh model match", "[gpu][training]") {
  // Dropout draws the same masks on both backends (same seed, same forwards).
  backend_optimizer sgd;
  compare("conv2d:6:3:1:1,tanh,maxpool2d:2,flatten,dropout:0.3,linear:32,sigmoid,linear:10", {1, 12, 12}, 7, sgd);
}
