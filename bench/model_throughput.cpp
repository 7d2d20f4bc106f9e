// Training throughput of model specs on one thread, without data loading:
// random 1x28x28 inputs (Fashion-MNIST's shape), batch 64 by default, SGD
// with momentum; forward, loss, backward and the optimizer step are timed,
// after two warm-up steps. For sizing models (e.g. resnet9:W) before a run.
// Usage: build/model_throughput [--batch B] [--seconds S] SPEC...
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tensor/gemm.hpp"
#include "tensor/loss.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/sequential.hpp"

using namespace murmur;

int main(int argc, char** argv) {
  int64_t batch = 64;
  double budget = 10;
  std::vector<std::string> specs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc) budget = std::atof(argv[++i]);
    else if (!a.empty() && a[0] != '-') specs.push_back(a);
    else {
      std::fprintf(stderr, "usage: %s [--batch B] [--seconds S] SPEC...\n", argv[0]);
      return 2;
    }
  }
  if (specs.empty() || batch < 1) {
    std::fprintf(stderr, "usage: %s [--batch B] [--seconds S] SPEC...\n", argv[0]);
    return 2;
  }
  set_blas_threads(1);
  const Shape in = {1, 28, 28};
  for (const auto& spec : specs) {
    auto model = build_model(spec, in, 10);
    model->init(1);
    auto opt = make_sgd(model->param_count(), 0.9f, 5e-4f);
    Rng rng(2);
    Tensor x({batch, 1, 28, 28});
    for (auto& v : x) v = static_cast<float>(rng.uniform());
    std::vector<int32_t> y(static_cast<size_t>(batch));
    for (auto& l : y) l = static_cast<int32_t>(rng.below(10));
    Tensor d;
    auto step = [&] {
      softmax_cross_entropy(model->forward(x), y.data(), d);
      model->backward(d);
      opt->step(model->params(), model->grads(), 0.01f);
    };
    step();
    step();
    int64_t steps = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double secs = 0;
    while (secs < budget || steps < 3) {
      step();
      ++steps;
      secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::printf("{\"model\":\"%s\",\"params\":%lld,\"macs_per_sample\":%lld,\"batch\":%lld,\"steps\":%lld,"
                "\"samples_per_s\":%.1f}\n",
                spec.c_str(), static_cast<long long>(model->param_count()),
                static_cast<long long>(model->forward_flops()), static_cast<long long>(batch),
                static_cast<long long>(steps), static_cast<double>(steps * batch) / secs);
    std::fflush(stdout);
  }
  return 0;
}
