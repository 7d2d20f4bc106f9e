// What a GPU product must satisfy for a CPU verifier, on the GPU side:
// cuBLAS products (FP32, TF32 off) pass the host Freivalds check with no
// false alarm at murmur's sizes and beyond; a corrupted element of
// realistic size (1e-3 of its row's norm) is caught; and the check run on
// the device (freivalds_check_on_backend) gives the host check's verdicts.
// The CPU side of the same rule: tests/tensor/test_gpu_rounding.cpp.
#include <cmath>

#include "backend_pair.hpp"
#include "tensor/freivalds.hpp"

using namespace murmur;
using namespace murmur::gpu_test;

namespace {

struct shape3 {
  int64_t m, n, k;
};

// C = op(A) op(B) on the GPU, back on the host.
std::vector<float> gpu_product(bool ta, bool tb, const shape3& s, const std::vector<float>& a,
                               const std::vector<float>& b) {
  fbuf A(gpu(), a), B(gpu(), b), C(gpu(), s.m * s.n);
  gpu().gemm(ta, tb, s.m, s.n, s.k, 1.f, A.get(), ta ? s.m : s.k, B.get(), tb ? s.k : s.n, 0.f, C.get(), s.n);
  return C.host();
}

}  // namespace

TEST_CASE("GPU products pass a CPU verifier, and a corrupted element is caught on both sides", "[gpu][freivalds]") {
  Rng rng(2024);
  // murmur's products (MLP forward, weight and input gradients at batch 64),
  // a conv's im2col product, and large square ones.
  for (shape3 s : {shape3{64, 256, 784}, shape3{256, 784, 64}, shape3{64, 784, 256}, shape3{64, 576, 800},
                   shape3{1024, 1024, 1024}, shape3{256, 512, 4096}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("m n k " << s.m << " " << s.n << " " << s.k << " ta " << ta << " tb " << tb);
        const auto a = normal(rng, s.m * s.k), b = normal(rng, s.k * s.n);
        auto c = gpu_product(ta, tb, s, a, b);
        // Honest: the CPU verifier and the device check both accept.
        Rng r1(7), r2(7);
        const auto host = freivalds_check(ta, tb, s.m, s.n, s.k, a.data(), b.data(), c.data(), 8, r1);
        fbuf A(gpu(), a), B(gpu(), b), C(gpu(), c);
        const auto dev = freivalds_check_on_backend(gpu(), ta, tb, s.m, s.n, s.k, A.get(), B.get(), C.get(), 8, r2);
        INFO("honest worst |d|/tol: host " << host.worst_ratio << ", device " << dev.worst_ratio);
        CHECK(host.ok);
        CHECK(dev.ok);
        CHECK(host.worst_ratio < 0.5);  // ~0.1 measured for GPU summation orders emulated on the CPU
        // One element off by 1e-3 of its row's norm (|a_i| |b_j| scale).
        const int64_t i = s.m / 2, j = s.n / 3;
        double row = 0;
        for (int64_t p = 0; p < s.k; ++p) {
          const double v = ta ? a[static_cast<size_t>(p * s.m + i)] : a[static_cast<size_t>(i * s.k + p)];
          row += v * v;
        }
        c[static_cast<size_t>(i * s.n + j)] += static_cast<float>(1e-3 * std::sqrt(row) * std::sqrt(static_cast<double>(s.k)));
        Rng r3(9), r4(9);
        const auto host_bad = freivalds_check(ta, tb, s.m, s.n, s.k, a.data(), b.data(), c.data(), 16, r3);
        fbuf C2(gpu(), c);
        const auto dev_bad =
            freivalds_check_on_backend(gpu(), ta, tb, s.m, s.n, s.k, A.get(), B.get(), C2.get(), 16, r4);
        CHECK_FALSE(host_bad.ok);
        CHECK_FALSE(dev_bad.ok);
        CHECK(host_bad.bad_row == i);
        CHECK(dev_bad.bad_row == i);
        CHECK(host_bad.rounds == dev_bad.rounds);
      }
}
