// GPU benchmark of the goals of issue 13, run by scripts/gpu_check.sh
// against PyTorch CUDA (bench/torch_cuda_train.py reads this program's JSON
// and trains the same models at the same batches):
//  - training steps of backend_model (tensor/backend_model.hpp) on the CUDA
//    backend: MLP at batch 64 and 1024, the CNN and ResNet-9 at batch 256,
//    random 1x28x28 inputs (the GPU machines have no dataset), SGD with
//    momentum 0.9, samples/s over a timed window after warm-up;
//  - a Linear layer's three products at 4096^2 (y = x W^T, dx = dy W,
//    dW = dy^T x) through compute_backend::gemm against bare cublasSgemm
//    (default math: FP32, no TF32) in the same run;
//  - a Freivalds check on the device (backend_freivalds_checker, 1 and 8
//    rounds) against the 4096^3 product it checks.
// Usage: gpu_train [--device N] [--backend cuda|cpu] [--seconds S] [--quick] [--json FILE]
// --backend cpu runs the same cases through the CPU backend (smaller sizes
// with --quick): the code path checked on machines without a GPU.
// Exit codes: 0 done, 77 skipped (prints "skipped: no CUDA device
// (<reason>)"), 1 failed, 2 bad command line.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gpu/cuda_backend.hpp"
#include "tensor/backend.hpp"
#include "tensor/backend_model.hpp"
#include "tensor/cpu_backend.hpp"
#include "tensor/freivalds.hpp"
#include "tensor/gemm.hpp"
#include "tensor/rng.hpp"
#include "tensor/sequential.hpp"

#ifdef MURMUR_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

using namespace murmur;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct options {
  int device = 0;
  bool cpu = false;
  double seconds = 3;
  bool quick = false;
  std::string json_path;
};

struct train_case {
  const char* name;
  const char* spec;
  int64_t batch;
};

// One model at one batch: warm-up steps, then steps until `seconds` passed
// (at least 5). train_step returns the loss, so every step ends in a wait
// for the device: the time is of whole steps.
nlohmann::json bench_training(compute_backend& be, const train_case& tc, const options& opt) {
  const Shape in = {1, 28, 28};
  auto model = build_model(tc.spec, in, 10);
  model->init(1);
  backend_optimizer bopt;  // SGD, momentum 0.9
  backend_model bm(be, *model, bopt, 7);
  // A few distinct random batches, cycled (data copied in every step).
  const int batches = 4;
  Rng rng(3);
  std::vector<std::vector<float>> xs(batches, std::vector<float>(static_cast<size_t>(tc.batch * 784)));
  std::vector<std::vector<int32_t>> ys(batches, std::vector<int32_t>(static_cast<size_t>(tc.batch)));
  for (int b = 0; b < batches; ++b) {
    for (auto& v : xs[b]) v = static_cast<float>(rng.uniform());
    for (auto& l : ys[b]) l = static_cast<int32_t>(rng.below(10));
  }
  const float lr = 0.01f;
  float loss = 0;
  for (int w = 0; w < 5; ++w) loss = bm.train_step(xs[w % batches].data(), ys[w % batches].data(), tc.batch, lr);
  int64_t steps = 0;
  const auto t0 = clock_type::now();
  double secs = 0;
  while (secs < opt.seconds || steps < 5) {
    loss = bm.train_step(xs[steps % batches].data(), ys[steps % batches].data(), tc.batch, lr);
    ++steps;
    secs = seconds_since(t0);
  }
  be.sync();
  secs = seconds_since(t0);
  std::string layers;
  for (const auto& item : model_spec_items(tc.spec, 10)) layers += (layers.empty() ? "" : ",") + item;
  const double sps = static_cast<double>(steps * tc.batch) / secs;
  std::printf("train %-8s batch %5lld: %9.0f samples/s (%.3f ms/step, %lld steps, last loss %.4f, %lld parameters)\n",
              tc.name, static_cast<long long>(tc.batch), sps, 1e3 * secs / static_cast<double>(steps),
              static_cast<long long>(steps), loss, static_cast<long long>(bm.param_count()));
  std::fflush(stdout);
  return {{"name", tc.name},
          {"spec", tc.spec},
          {"layers", layers},
          {"input_shape", {1, 28, 28}},
          {"classes", 10},
          {"batch", tc.batch},
          {"optimizer", "sgd momentum 0.9, lr 0.01"},
          {"steps", steps},
          {"seconds", secs},
          {"samples_per_s", sps},
          {"ms_per_step", 1e3 * secs / static_cast<double>(steps)},
          {"last_loss", loss},
          {"params", bm.param_count()}};
}

// Repeats `op` until `seconds` passed (at least 3 times), synchronizing at
// the end; returns seconds per call.
template <class Op>
double time_calls(compute_backend& be, double seconds, Op op) {
  op();
  be.sync();
  int64_t calls = 0;
  const auto t0 = clock_type::now();
  do {
    op();
    ++calls;
    if (calls % 4 == 0) be.sync();
  } while (seconds_since(t0) < seconds || calls < 3);
  be.sync();
  return seconds_since(t0) / static_cast<double>(calls);
}

#ifdef MURMUR_WITH_CUDA
// Bare cublasSgemm (column-major, no transposes) at n^3 on its own handle
// and stream, default math mode: GFLOP/s, or a negative number on error.
double bare_cublas_gflops(int device, int64_t n, double seconds, std::string& error) {
  auto fail = [&](const std::string& what) {
    error = what;
    return -1.0;
  };
  if (cudaSetDevice(device) != cudaSuccess) return fail("cudaSetDevice failed");
  float *a = nullptr, *b = nullptr, *c = nullptr;
  const size_t bytes = static_cast<size_t>(n * n) * sizeof(float);
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess ||
      cudaMalloc(&c, bytes) != cudaSuccess)
    return fail("cudaMalloc failed");
  cudaMemset(a, 0, bytes);
  cudaMemset(b, 0, bytes);
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return fail("cublasCreate failed");
  const float one = 1.f, zero = 0.f;
  const int ni = static_cast<int>(n);
  auto call = [&] { return cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, ni, ni, ni, &one, a, ni, b, ni, &zero, c, ni); };
  if (call() != CUBLAS_STATUS_SUCCESS) return fail("cublasSgemm failed");
  cudaDeviceSynchronize();
  int64_t calls = 0;
  const auto t0 = clock_type::now();
  do {
    call();
    ++calls;
    if (calls % 4 == 0) cudaDeviceSynchronize();
  } while (seconds_since(t0) < seconds || calls < 3);
  cudaDeviceSynchronize();
  const double per_call = seconds_since(t0) / static_cast<double>(calls);
  cublasDestroy(h);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / per_call / 1e9;
}
#endif

// A Linear layer's products at n x n x n through the backend, and the
// Freivalds check of the forward product.
nlohmann::json bench_products(compute_backend& be, const options& opt, int64_t n) {
  const int64_t nn = n * n;
  float* x = be.alloc(nn);
  float* w = be.alloc(nn);
  float* y = be.alloc(nn);
  float* dy = be.alloc(nn);
  float* dx = be.alloc(nn);
  float* dw = be.alloc(nn);
  {
    Rng rng(5);
    std::vector<float> host(static_cast<size_t>(nn));
    for (float* dst : {x, w, dy}) {
      for (auto& v : host) v = static_cast<float>(rng.normal());
      be.upload(dst, host.data(), nn);
    }
  }
  const double flop = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
  const double t_fwd = time_calls(be, opt.seconds / 3, [&] { be.gemm(false, true, n, n, n, 1.f, x, n, w, n, 0.f, y, n); });
  const double t_dx = time_calls(be, opt.seconds / 3, [&] { be.gemm(false, false, n, n, n, 1.f, dy, n, w, n, 0.f, dx, n); });
  const double t_dw = time_calls(be, opt.seconds / 3, [&] { be.gemm(true, false, n, n, n, 1.f, dy, n, x, n, 0.f, dw, n); });
  const double linear_gflops = 3 * flop / (t_fwd + t_dx + t_dw) / 1e9;
  std::printf("linear %lld^2: y = x W^T %.1f GFLOP/s, dx = dy W %.1f, dW = dy^T x %.1f; all three %.1f GFLOP/s\n",
              static_cast<long long>(n), flop / t_fwd / 1e9, flop / t_dx / 1e9, flop / t_dw / 1e9, linear_gflops);
  nlohmann::json out = {{"n", n},
                        {"forward_gflops", flop / t_fwd / 1e9},
                        {"grad_input_gflops", flop / t_dx / 1e9},
                        {"grad_weight_gflops", flop / t_dw / 1e9},
                        {"linear_gflops", linear_gflops}};
#ifdef MURMUR_WITH_CUDA
  if (!be.is_cpu()) {
    std::string error;
    const double bare = bare_cublas_gflops(opt.device, n, opt.seconds / 3, error);
    if (bare > 0) {
      std::printf("bare cublasSgemm %lld^3: %.1f GFLOP/s; linear / bare = %.3f\n", static_cast<long long>(n), bare,
                  linear_gflops / bare);
      out["bare_cublas_gflops"] = bare;
      out["linear_vs_bare"] = linear_gflops / bare;
    } else {
      std::printf("bare cublasSgemm: %s\n", error.c_str());
      out["bare_cublas_error"] = error;
    }
  }
#endif
  // The check of y = x W^T (trans_b), on the backend.
  backend_freivalds_checker checker(be);
  Rng rng(9);
  nlohmann::json checks = nlohmann::json::array();
  for (int rounds : {1, 8}) {
    freivalds_result res;
    const double t_check = time_calls(be, opt.seconds / 3, [&] { res = checker.check(false, true, n, n, n, x, w, y, rounds, rng); });
    std::printf("freivalds check of the %lld^3 product, %d round%s: %.3f ms, %.4f of the product (%.3f ms); ok %d, worst |d|/tol %.3g\n",
                static_cast<long long>(n), rounds, rounds > 1 ? "s" : "", 1e3 * t_check, t_check / t_fwd, 1e3 * t_fwd,
                res.ok ? 1 : 0, res.worst_ratio);
    checks.push_back({{"rounds", rounds},
                      {"check_ms", 1e3 * t_check},
                      {"product_ms", 1e3 * t_fwd},
                      {"check_vs_product", t_check / t_fwd},
                      {"ok", res.ok},
                      {"worst_ratio", res.worst_ratio}});
  }
  out["freivalds"] = checks;
  std::fflush(stdout);
  for (float* p : {x, w, y, dy, dx, dw}) be.free(p);
  return out;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--device N] [--backend cuda|cpu] [--seconds S] [--quick] [--json FILE]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) opt.device = std::atoi(argv[++i]);
    else if (a == "--backend" && i + 1 < argc) {
      const std::string b = argv[++i];
      if (b != "cuda" && b != "cpu") return usage(argv[0]);
      opt.cpu = b == "cpu";
    } else if (a == "--seconds" && i + 1 < argc) opt.seconds = std::atof(argv[++i]);
    else if (a == "--quick") opt.quick = true;
    else if (a == "--json" && i + 1 < argc) opt.json_path = argv[++i];
    else return usage(argv[0]);
  }
  if (opt.seconds <= 0 || opt.device < 0) return usage(argv[0]);

  nlohmann::json report = {{"program", "gpu_train"}};
  std::unique_ptr<compute_backend> be;
  if (opt.cpu) {
    set_blas_threads(1);
    be = make_cpu_backend();
  } else {
    const cuda_probe probe = probe_cuda();
    if (probe.device_count == 0) {
      std::printf("skipped: no CUDA device (%s)\n", probe.reason.c_str());
      return 77;
    }
    if (opt.device >= probe.device_count) {
      std::fprintf(stderr, "gpu_train: --device %d: only %d CUDA device(s)\n", opt.device, probe.device_count);
      return 2;
    }
    report["device_name"] = probe.names[static_cast<size_t>(opt.device)];
  }
  try {
    if (!be) be = make_cuda_backend(opt.device);
    report["backend"] = be->name();
    std::printf("gpu_train on %s\n", be->name().c_str());
    const std::vector<train_case> cases =
        opt.quick ? std::vector<train_case>{{"mlp", "mlp", 64}, {"cnn", "cnn", 32}, {"resnet9", "resnet9:8", 16}}
                  : std::vector<train_case>{{"mlp", "mlp", 64},
                                            {"mlp", "mlp", 1024},
                                            {"cnn", "cnn", 256},
                                            {"resnet9", "resnet9", 256}};
    nlohmann::json train = nlohmann::json::array();
    for (const auto& tc : cases) train.push_back(bench_training(*be, tc, opt));
    report["train"] = train;
    report["products"] = bench_products(*be, opt, opt.quick ? 512 : 4096);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_train: %s\n", e.what());
    return 1;
  }
  if (!opt.json_path.empty()) {
    std::ofstream f(opt.json_path);
    f << report.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "gpu_train: cannot write %s\n", opt.json_path.c_str());
      return 1;
    }
  }
  return 0;
}
