#include <catch2/catch.hpp>
#include <cmath>

#include "tensor/gemm.hpp"
#include "tensor/rng.hpp"
#include "tensor/tensor.hpp"

using namespace murmur;

TEST_CASE("gemm matches a naive product in all transpose cases", "[tensor][gemm]") {
  Rng rng(2);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int64_t m = 7, n = 5, k = 9;
      std::vector<float> a(m * k), b(k * n), c(m * n, 1.f);
      for (auto& v : a) v = static_cast<float>(rng.normal());
      for (auto& v : b) v = static_cast<float>(rng.normal());
      // Stored as op(A) is m x k: A is k x m when transposed, etc.
      auto A = [&](int64_t i, int64_t p) { return ta ? a[p * m + i] : a[i * k + p]; };
      auto B = [&](int64_t p, int64_t j) { return tb ? b[j * k + p] : b[p * n + j]; };
      gemm(ta, tb, m, n, k, 2.f, a.data(), b.data(), 0.5f, c.data());
      INFO("trans_a " << ta << " trans_b " << tb);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double ref = 0.5;
          for (int64_t p = 0; p < k; ++p) ref += 2.0 * A(i, p) * B(p, j);
          CHECK(c[i * n + j] == Approx(ref).epsilon(1e-5).margin(1e-5));
        }
    }
}

// gemm() keeps one oneDNN primitive per shape and swaps only the data
// pointers: a second call of that shape on other buffers, row strides wider
// than the rows, and an empty inner dimension (C = beta C, left to OpenBLAS)
// must all come out as the naive product.
TEST_CASE("gemm: repeated shapes on other buffers, wide strides, empty k", "[tensor][gemm]") {
  Rng rng(3);
  const int64_t m = 6, n = 5, k = 4, lda = k + 3, ldb = n + 2, ldc = n + 1;
  for (int round = 0; round < 3; ++round) {
    std::vector<float> a(m * lda), b(k * ldb), c(m * ldc, -1.f);
    for (auto& v : a) v = static_cast<float>(rng.normal());
    for (auto& v : b) v = static_cast<float>(rng.normal());
    gemm(false, false, m, n, k, 1.f, a.data(), lda, b.data(), ldb, 1.f, c.data(), ldc);
    INFO("round " << round);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double ref = -1.0;
        for (int64_t p = 0; p < k; ++p) ref += static_cast<double>(a[i * lda + p]) * b[p * ldb + j];
        CHECK(c[i * ldc + j] == Approx(ref).epsilon(1e-5).margin(1e-5));
      }
      CHECK(c[i * ldc + n] == -1.f);  // past the row's end: untouched
    }
  }
  std::vector<float> c(m * n, 2.f);
  gemm(false, false, m, n, 0, 1.f, nullptr, nullptr, 0.5f, c.data());
  for (float v : c) CHECK(v == 1.f);
}

TEST_CASE("tensor views share storage; resize keeps capacity", "[tensor]") {
  Tensor t({4, 3});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i);
  Tensor r = t.rows(1, 3);
  CHECK(r.shape() == Shape{2, 3});
  CHECK(r[0] == 3.f);
  r[0] = 42.f;
  CHECK(t[3] == 42.f);
  Tensor flat = t.reshape({12});
  CHECK(flat.data() == t.data());
  CHECK_THROWS_WITH(t.reshape({5}), Catch::Contains("[4,3]"));
  CHECK_THROWS(t.rows(3, 5));
  const float* p = t.data();
  t.resize({2, 3});
  CHECK(t.data() == p);
  t.resize({4, 3});
  CHECK(t.data() == p);
  Tensor c = t.clone();
  CHECK(c.data() != t.data());
  CHECK(c[3] == 42.f);
}
