// Per product shape: OpenBLAS's cblas_sgemm (the kernel OPENBLAS_CORETYPE
// selects) against oneDNN's matmul (tensor/onednn_matmul.hpp), one thread,
// on the shapes the MLP 784-256-128-10 and the cnn preset's im2col
// products have at batch 64. Rounds alternate the two (A B A B ...);
// prints the median time per product of each, GFLOP/s and the ratio, as a
// markdown table (docs/cpu_kernels.md, "Linear layers"), and the largest
// difference between the two results relative to the largest |C|.
// Usage: build/gemm_shapes [--rounds N]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tensor/gemm.hpp"
#include "tensor/onednn_matmul.hpp"
#include "tensor/rng.hpp"

using namespace murmur;

namespace {

struct shape {
  const char* what;
  bool ta, tb;
  int64_t m, n, k;
  float beta;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--rounds N]\n", argv[0]);
      return 2;
    }
  }
  set_blas_threads(1);
  const shape shapes[] = {
      {"mlp fc1 forward", false, true, 64, 256, 784, 1.f},  {"mlp fc1 dW", true, false, 256, 784, 64, 0.f},
      {"mlp fc2 forward", false, true, 64, 128, 256, 1.f},  {"mlp fc2 dW", true, false, 128, 256, 64, 0.f},
      {"mlp fc2 dX", false, false, 64, 256, 128, 0.f},      {"mlp fc3 forward", false, true, 64, 10, 128, 1.f},
      {"mlp fc3 dW", true, false, 10, 128, 64, 0.f},        {"mlp fc3 dX", false, false, 64, 128, 10, 0.f},
      {"cnn conv1 forward", false, false, 32, 36864, 25, 0.f}, {"cnn conv1 dW", false, true, 32, 25, 36864, 0.f},
      {"cnn conv2 forward", false, false, 64, 4096, 800, 0.f}, {"cnn conv2 dW", false, true, 64, 800, 4096, 0.f},
      {"cnn conv2 dX", true, false, 800, 4096, 64, 0.f},     {"cnn fc1 forward", false, true, 64, 256, 1024, 1.f},
      {"cnn fc1 dW", true, false, 256, 1024, 64, 0.f},       {"cnn fc1 dX", false, false, 64, 1024, 256, 0.f},
  };
  std::printf("%s\n\n", blas_kernel_description().c_str());
  std::printf("| product | m x n x k (op) | OpenBLAS us | GFLOP/s | oneDNN us | GFLOP/s | oneDNN speedup | max rel diff |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
  Rng rng(7);
  for (const shape& s : shapes) {
    std::vector<float> a(static_cast<size_t>(s.m * s.k)), b(static_cast<size_t>(s.k * s.n)),
        c1(static_cast<size_t>(s.m * s.n)), c2(c1.size());
    for (auto& v : a) v = static_cast<float>(rng.uniform(-1, 1));
    for (auto& v : b) v = static_cast<float>(rng.uniform(-1, 1));
    const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    auto blas = [&] {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                  static_cast<blasint>(s.m), static_cast<blasint>(s.n), static_cast<blasint>(s.k), 1.f, a.data(),
                  static_cast<blasint>(lda), b.data(), static_cast<blasint>(ldb), s.beta, c1.data(),
                  static_cast<blasint>(s.n));
    };
    auto dnnl = [&] {
      onednn_matmul(s.ta, s.tb, s.m, s.n, s.k, 1.f, a.data(), lda, b.data(), ldb, s.beta, c2.data(), s.n, 1);
    };
    // Same start for both (beta 1 adds into C), then the difference.
    std::fill(c1.begin(), c1.end(), 0.25f);
    std::fill(c2.begin(), c2.end(), 0.25f);
    blas();
    dnnl();
    double diff = 0, top = 0;
    for (size_t i = 0; i < c1.size(); ++i) {
      diff = std::max(diff, static_cast<double>(std::fabs(c1[i] - c2[i])));
      top = std::max(top, static_cast<double>(std::fabs(c1[i])));
    }
    const double flop = 2.0 * static_cast<double>(s.m * s.n) * static_cast<double>(s.k);
    const int reps = std::max(3, static_cast<int>(2e8 / flop));  // about 5-10 ms per timing
    std::vector<double> tb, td;
    using clock = std::chrono::steady_clock;
    for (int r = 0; r < rounds; ++r) {
      auto t0 = clock::now();
      for (int i = 0; i < reps; ++i) blas();
      auto t1 = clock::now();
      for (int i = 0; i < reps; ++i) dnnl();
      auto t2 = clock::now();
      tb.push_back(std::chrono::duration<double>(t1 - t0).count() / reps);
      td.push_back(std::chrono::duration<double>(t2 - t1).count() / reps);
    }
    const double mb = median(tb), md = median(td);
    char dims[64];
    std::snprintf(dims, sizeof dims, "%lldx%lldx%lld (%s%s)", static_cast<long long>(s.m),
                  static_cast<long long>(s.n), static_cast<long long>(s.k), s.ta ? "A^T" : "A",
                  s.tb ? " B^T" : " B");
    std::printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.2fx | %.1e |\n", s.what, dims, mb * 1e6, flop / mb / 1e9,
                md * 1e6, flop / md / 1e9, mb / md, top > 0 ? diff / top : 0.0);
    std::fflush(stdout);
  }
  return 0;
}
