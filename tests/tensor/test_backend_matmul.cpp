// backend_matmul (tensor/backend_matmul.hpp) on the CPU backend: a product
// of host matrices computed by the backend's gemm equals the host gemm's
// and passes a Freivalds check; its buffers grow to the largest product
// seen, so a product no larger than an earlier one allocates nothing.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "tensor/backend_matmul.hpp"
#include "tensor/cpu_backend.hpp"
#include "tensor/freivalds.hpp"
#include "tensor/gemm.hpp"
#include "tensor/rng.hpp"
#include "tests/counting_backend.hpp"

using namespace murmur;

namespace {

std::vector<float> random_matrix(int64_t rows, int64_t cols, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

}  // namespace

TEST_CASE("backend_matmul: the backend's product of host matrices, buffers reused", "[backend][offload]") {
  auto cpu = make_cpu_backend();
  testing::counting_backend be(*cpu);
  backend_matmul mm(be);
  Rng rng(17);
  freivalds_checker fv;
  int64_t products = 0;
  // Odd sizes; the largest first, then smaller and equal ones: one
  // allocation per operand, at the first product.
  const int64_t shapes[][3] = {{67, 45, 129}, {33, 45, 64}, {67, 45, 129}, {1, 1, 1}, {5, 31, 7}};
  for (const auto& s : shapes) {
    const int64_t m = s[0], n = s[1], k = s[2];
    INFO(m << " x " << k << " by " << k << " x " << n);
    const auto a = random_matrix(m, k, rng), b = random_matrix(k, n, rng);
    std::vector<float> got(static_cast<size_t>(m * n), -1.f), want(static_cast<size_t>(m * n));
    mm.multiply(m, n, k, a.data(), b.data(), got.data());
    ++products;
    gemm(false, false, m, n, k, 1.f, a.data(), b.data(), 0.f, want.data());
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(double{got[i]} - want[i]));
    CHECK(worst < 1e-4);
    CHECK(fv.check(false, false, m, n, k, a.data(), b.data(), got.data(), 16, rng).ok);
    CHECK(be.gemms == products);  // through the backend's gemm, one call each
    CHECK(be.allocs == 3);
    CHECK(be.uploaded > 0);
  }
  // A larger product grows what it must (A and C here; B fits), once.
  const auto a = random_matrix(200, 129, rng), b = random_matrix(129, 45, rng);
  std::vector<float> c(200 * 45);
  mm.multiply(200, 45, 129, a.data(), b.data(), c.data());
  mm.multiply(200, 45, 129, a.data(), b.data(), c.data());
  CHECK(be.allocs == 5);
  // An empty sum (k = 0) is zero; empty results touch nothing.
  std::vector<float> z(6, 7.f);
  mm.multiply(2, 3, 0, nullptr, nullptr, z.data());
  for (float v : z) CHECK(v == 0.f);
  mm.multiply(0, 3, 4, nullptr, nullptr, nullptr);
  CHECK_THROWS_WITH(mm.multiply(-1, 3, 4, nullptr, nullptr, nullptr), Catch::Contains("negative shape"));
}
