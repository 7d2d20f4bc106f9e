#include <catch2/catch.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <vector>

#include "tensor/freivalds.hpp"
#include "tensor/gemm.hpp"
#include "tensor/linear.hpp"
#include "tensor/rng.hpp"

using namespace murmur;

namespace {

using Mat = std::vector<float>;

// Operands as stored for op(A) m x k and op(B) k x n (gemm's convention).
struct Problem {
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
  Mat a, b;
  float A(int64_t i, int64_t p) const { return ta ? a[p * m + i] : a[i * k + p]; }
  float B(int64_t p, int64_t j) const { return tb ? b[j * k + p] : b[p * n + j]; }
  float& A(int64_t i, int64_t p) { return ta ? a[p * m + i] : a[i * k + p]; }
  float& B(int64_t p, int64_t j) { return tb ? b[j * k + p] : b[p * n + j]; }
};

Problem random_problem(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Rng& rng) {
  Problem p{ta, tb, m, n, k, Mat(m * k), Mat(k * n)};
  for (auto& v : p.a) v = static_cast<float>(rng.normal());
  for (auto& v : p.b) v = static_cast<float>(rng.normal());
  return p;
}

// Honest float32 products, each summing in another order.
Mat by_blas(const Problem& p) {
  Mat c(p.m * p.n);
  gemm(p.ta, p.tb, p.m, p.n, p.k, 1.f, p.a.data(), p.b.data(), 0.f, c.data());
  return c;
}

// C^T = op(B)^T op(A)^T through gemm, transposed back.
Mat by_blas_transposed(const Problem& p) {
  Mat ct(p.n * p.m), c(p.m * p.n);
  gemm(!p.tb, !p.ta, p.n, p.m, p.k, 1.f, p.b.data(), p.a.data(), 0.f, ct.data());
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) c[i * p.n + j] = ct[j * p.m + i];
  return c;
}

// k split into uneven chunks, one gemm each, accumulated in the float C.
Mat by_k_chunks(const Problem& p) {
  Mat c(p.m * p.n, 0.f);
  const int64_t lda = p.ta ? p.m : p.k, ldb = p.tb ? p.k : p.n;
  int64_t p0 = 0, chunk = std::max<int64_t>(1, p.k / 5);
  while (p0 < p.k) {
    const int64_t len = std::min(chunk, p.k - p0);
    const float* a = p.ta ? p.a.data() + p0 * p.m : p.a.data() + p0;
    const float* b = p.tb ? p.b.data() + p0 : p.b.data() + p0 * p.n;
    gemm(p.ta, p.tb, p.m, p.n, len, 1.f, a, lda, b, ldb, 1.f, c.data(), p.n);
    p0 += len;
    chunk = chunk * 3 / 2 + 1;
  }
  return c;
}

// One float running sum per entry, last k first.
Mat by_reverse_loop(const Problem& p) {
  Mat c(p.m * p.n);
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      float s = 0.f;
      for (int64_t q = p.k - 1; q >= 0; --q) s += p.A(i, q) * p.B(q, j);
      c[i * p.n + j] = s;
    }
  return c;
}

// Accumulated in double, rounded to float once.
Mat by_double(const Problem& p) {
  Mat c(p.m * p.n);
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      double s = 0;
      for (int64_t q = 0; q < p.k; ++q) s += static_cast<double>(p.A(i, q)) * p.B(q, j);
      c[i * p.n + j] = static_cast<float>(s);
    }
  return c;
}

struct Order {
  const char* name;
  Mat (*run)(const Problem&);
  int64_t max_mnk;  // the scalar loops only at small sizes
};
const Order kOrders[] = {{"blas", by_blas, INT64_MAX},
                         {"blas on transposes", by_blas_transposed, INT64_MAX},
                         {"k chunks", by_k_chunks, INT64_MAX},
                         {"reverse float loop", by_reverse_loop, 3'000'000},
                         {"double, rounded", by_double, 3'000'000}};

// Runs every order on p; every claim must pass with worst_ratio <= margin.
void expect_honest_pass(const Problem& p, Rng& rng, double margin, int rounds = 4) {
  freivalds_checker checker;
  for (const auto& order : kOrders) {
    if (p.m * p.n * p.k > order.max_mnk) continue;
    const Mat c = order.run(p);
    const auto r = checker.check(p.ta, p.tb, p.m, p.n, p.k, p.a.data(), p.b.data(), c.data(),
                                 rounds, rng);
    INFO(order.name << " " << p.m << "x" << p.n << "x" << p.k << " ta " << p.ta << " tb "
                    << p.tb << " worst_ratio " << r.worst_ratio << " bad_row " << r.bad_row);
    CHECK(r.ok);
    CHECK(r.rounds == rounds);
    CHECK(r.worst_ratio <= margin);
  }
}

double row_norm(const Mat& c, int64_t n, int64_t i) {
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += static_cast<double>(c[i * n + j]) * c[i * n + j];
  return std::sqrt(s);
}

// Adds +-rel * |row| to one random entry of c, runs the check, restores c.
// Returns true when the check missed it (accepted the claim).
bool missed_corruption(freivalds_checker& checker, const Problem& p, Mat& c, double rel,
                       int rounds, Rng& rng) {
  const auto i = static_cast<int64_t>(rng.below(static_cast<uint64_t>(p.m)));
  const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(p.n)));
  const float saved = c[i * p.n + j];
  const double delta = (rng.below(2) ? rel : -rel) * row_norm(c, p.n, i);
  c[i * p.n + j] = static_cast<float>(saved + delta);
  const auto r = checker.check(p.ta, p.tb, p.m, p.n, p.k, p.a.data(), p.b.data(), c.data(),
                               rounds, rng);
  c[i * p.n + j] = saved;
  if (!r.ok) CHECK(r.bad_row == i);
  return r.ok;
}

}  // namespace

TEST_CASE("freivalds: honest products in other summation orders pass, all transposes",
          "[freivalds]") {
  Rng rng(11);
  const int64_t shapes[][3] = {{1, 1, 1},   {1, 7, 3},    {7, 1, 5},     {3, 5, 1},
                               {2, 3, 2},   {13, 17, 19}, {64, 33, 127}, {100, 257, 64},
                               {31, 9, 600}, {150, 120, 130}};
  for (const auto& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) expect_honest_pass(random_problem(ta, tb, s[0], s[1], s[2], rng), rng, 0.25);
}

TEST_CASE("freivalds: honest 2048 x 2048 x 2048 products pass; 1e-3 corruptions are caught",
          "[freivalds]") {
  Rng rng(12);
  const Problem p = random_problem(false, true, 2048, 2048, 2048, rng);
  freivalds_checker checker;
  Mat c = by_blas(p);
  {
    const auto r = checker.check(p.ta, p.tb, p.m, p.n, p.k, p.a.data(), p.b.data(), c.data(), 2, rng);
    INFO("blas worst_ratio " << r.worst_ratio);
    CHECK(r.ok);
    CHECK(r.worst_ratio < 0.05);
  }
  {
    const Mat chunks = by_k_chunks(p);
    const auto r = checker.check(p.ta, p.tb, p.m, p.n, p.k, p.a.data(), p.b.data(),
                                 chunks.data(), 2, rng);
    INFO("k chunks worst_ratio " << r.worst_ratio);
    CHECK(r.ok);
    CHECK(r.worst_ratio < 0.05);
  }
  // 16 rounds: a miss would take 2^-16 luck per trial.
  int misses = 0;
  for (int t = 0; t < 6; ++t) misses += missed_corruption(checker, p, c, 1e-3, 16, rng);
  CHECK(misses == 0);
}

TEST_CASE("freivalds: ill-scaled, mixed-sign, zero and one-signed operands pass honestly",
          "[freivalds]") {
  Rng rng(13);
  auto scale = [&] { return std::pow(10.0, rng.uniform(-6, 6)); };
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      for (const auto& s : {std::array<int64_t, 3>{40, 50, 60}, {200, 150, 300}, {30, 40, 1}}) {
        // Rows of A and columns of B scaled over 1e-6..1e6.
        Problem p = random_problem(ta, tb, s[0], s[1], s[2], rng);
        for (int64_t i = 0; i < p.m; ++i) {
          const double f = scale();
          for (int64_t q = 0; q < p.k; ++q) p.A(i, q) = static_cast<float>(p.A(i, q) * f);
        }
        for (int64_t j = 0; j < p.n; ++j) {
          const double f = scale();
          for (int64_t q = 0; q < p.k; ++q) p.B(q, j) = static_cast<float>(p.B(q, j) * f);
        }
        expect_honest_pass(p, rng, 0.25);

        // Every entry of its own magnitude, 1e-6..1e6, random sign.
        for (auto& v : p.a) v = static_cast<float>((rng.below(2) ? 1 : -1) * scale());
        for (auto& v : p.b) v = static_cast<float>((rng.below(2) ? 1 : -1) * scale());
        expect_honest_pass(p, rng, 0.25);

        // Zero rows of A and zero columns of B: zero rows and columns of C.
        for (int64_t i = 0; i < p.m; i += 3)
          for (int64_t q = 0; q < p.k; ++q) p.A(i, q) = 0.f;
        for (int64_t j = 0; j < p.n; j += 4)
          for (int64_t q = 0; q < p.k; ++q) p.B(q, j) = 0.f;
        expect_honest_pass(p, rng, 0.25);
      }
    }
  // One-signed operands: rounding errors can add up coherently (summing a
  // constant), which the (k+2) u |A B r| term of the tolerance covers.
  for (const auto& s : {std::array<int64_t, 3>{3, 5, 2048}, {64, 64, 2048}, {50, 40, 700}}) {
    Problem p = random_problem(false, false, s[0], s[1], s[2], rng);
    for (auto& v : p.a) v = 1.f;
    for (auto& v : p.b) v = 0.1f;
    expect_honest_pass(p, rng, 1.0);
    for (auto& v : p.a) v = static_cast<float>(rng.uniform());
    for (auto& v : p.b) v = static_cast<float>(rng.uniform());
    expect_honest_pass(p, rng, 1.0);
  }
}

TEST_CASE("freivalds: Y = X W^T + b of a Linear layer, with and without the bias",
          "[freivalds]") {
  Rng rng(14);
  const int64_t batch = 64, in = 300, out = 70;
  Linear lin(in, out);
  std::vector<float> params(static_cast<size_t>(lin.param_count())), grads(params.size());
  lin.bind(params.data(), grads.data());
  lin.init(rng);
  for (float& v : params) v *= 10.f;  // a bias that matters against x W^T
  Tensor x({batch, in});
  for (auto& v : x) v = static_cast<float>(rng.normal());
  const Tensor& y = lin.forward(x);
  const float* w = params.data();
  const float* b = params.data() + out * in;
  freivalds_checker checker;

  auto r = checker.check(false, true, batch, out, in, x.data(), w, b, y.data(), 8, rng);
  INFO("worst_ratio " << r.worst_ratio);
  CHECK(r.ok);
  CHECK(r.worst_ratio < 0.1);

  // Bias added after the product, in float: another honest order.
  Mat y2(batch * out);
  gemm(false, true, batch, out, in, 1.f, x.data(), w, 0.f, y2.data());
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t j = 0; j < out; ++j) y2[i * out + j] += b[j];
  r = checker.check(false, true, batch, out, in, x.data(), w, b, y2.data(), 8, rng);
  CHECK(r.ok);
  CHECK(r.worst_ratio < 0.1);

  // Left out, or wrong by 1e-3 of a row's norm in one place, it fails.
  CHECK_FALSE(checker.check(false, true, batch, out, in, x.data(), w, y.data(), 16, rng).ok);
  std::vector<float> bad(b, b + out);
  bad[5] += static_cast<float>(1e-3 * row_norm(y2, out, 0));
  CHECK_FALSE(checker.check(false, true, batch, out, in, x.data(), w, bad.data(), y.data(), 16, rng).ok);
  y2[7 * out + 5] += static_cast<float>(1e-3 * row_norm(y2, out, 7));
  r = checker.check(false, true, batch, out, in, x.data(), w, b, y2.data(), 16, rng);
  CHECK_FALSE(r.ok);
  CHECK(r.bad_row == 7);
}

TEST_CASE("freivalds: a 1e-3 corruption is missed at rate 2^-rounds", "[freivalds]") {
  Rng rng(15);
  // 5 sigma of a binomial count: a bug that changes the rate fails, chance does not.
  auto within = [](int misses, int trials, double p) {
    const double mean = trials * p, sigma = std::sqrt(trials * p * (1 - p));
    INFO("misses " << misses << " of " << trials << ", expected " << mean << " +- " << sigma);
    CHECK(std::fabs(misses - mean) <= 5 * sigma);
  };
  for (bool ta : {false, true}) {
    const Problem p = random_problem(ta, !ta, 64, 96, 80, rng);
    Mat c = by_blas(p);
    freivalds_checker checker;
    const int trials = 10000;
    int miss1 = 0, miss2 = 0, miss16 = 0, miss32 = 0;
    for (int t = 0; t < trials; ++t) miss1 += missed_corruption(checker, p, c, 1e-3, 1, rng);
    for (int t = 0; t < trials; ++t) miss2 += missed_corruption(checker, p, c, 1e-3, 2, rng);
    for (int t = 0; t < trials; ++t) miss16 += missed_corruption(checker, p, c, 1e-3, 16, rng);
    for (int t = 0; t < trials; ++t) miss32 += missed_corruption(checker, p, c, 1e-3, 32, rng);
    within(miss1, trials, 0.5);
    within(miss2, trials, 0.25);
    // 10^4 * 2^-16 = 0.15 misses expected, so zero is likely but not
    // promised (this seed gives one); 3 or more has probability 5e-4.
    CHECK(miss16 <= 2);
    CHECK(miss32 == 0);
  }
}

TEST_CASE("freivalds: non-finite claims and operands fail", "[freivalds]") {
  Rng rng(16);
  const Problem p = random_problem(false, false, 20, 30, 10, rng);
  const Mat good = by_blas(p);
  freivalds_checker checker;
  REQUIRE(checker.check(false, false, 20, 30, 10, p.a.data(), p.b.data(), good.data(), 4, rng).ok);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    Mat c = good;
    c[13 * 30 + 29] = bad;  // seen whatever r is: the claim is scanned in full
    const auto r = checker.check(false, false, 20, 30, 10, p.a.data(), p.b.data(), c.data(), 1, rng);
    CHECK_FALSE(r.ok);
    CHECK(r.bad_row == 13);
    Problem q = p;
    q.a[3] = bad;
    CHECK_FALSE(checker.check(false, false, 20, 30, 10, q.a.data(), q.b.data(), good.data(), 1, rng).ok);
    q = p;
    q.b[3] = bad;
    CHECK_FALSE(checker.check(false, false, 20, 30, 10, q.a.data(), q.b.data(), good.data(), 1, rng).ok);
  }
}

TEST_CASE("freivalds: shapes, null pointers and empty products", "[freivalds]") {
  Rng rng(17);
  const Problem p = random_problem(false, false, 4, 5, 6, rng);
  const Mat c = by_blas(p);
  const float* a = p.a.data();
  const float* b = p.b.data();
  CHECK_THROWS_AS(freivalds_check(false, false, -1, 5, 6, a, b, c.data(), 1, rng), std::invalid_argument);
  CHECK_THROWS_AS(freivalds_check(false, false, 4, 5, -6, a, b, c.data(), 1, rng), std::invalid_argument);
  CHECK_THROWS_AS(freivalds_check(false, false, 4, 5, 6, a, b, c.data(), 0, rng), std::invalid_argument);
  CHECK_THROWS_AS(freivalds_check(false, false, 4, 5, 6, nullptr, b, c.data(), 1, rng), std::invalid_argument);
  CHECK_THROWS_AS(freivalds_check(false, false, 4, 5, 6, a, nullptr, c.data(), 1, rng), std::invalid_argument);
  CHECK_THROWS_AS(freivalds_check(false, false, 4, 5, 6, a, b, nullptr, 1, rng), std::invalid_argument);
  // Empty products: nothing to check, null allowed where nothing is read.
  CHECK(freivalds_check(false, false, 0, 5, 6, nullptr, b, nullptr, 1, rng).ok);
  CHECK(freivalds_check(false, false, 4, 0, 6, a, nullptr, nullptr, 1, rng).ok);
  // k = 0: the product is the zero matrix (plus the bias).
  const Mat zeros(20, 0.f), ones(20, 1.f), bias(5, 1.f);
  CHECK(freivalds_check(false, false, 4, 5, 0, nullptr, nullptr, zeros.data(), 8, rng).ok);
  CHECK_FALSE(freivalds_check(false, false, 4, 5, 0, nullptr, nullptr, ones.data(), 8, rng).ok);
  CHECK(freivalds_check(false, false, 4, 5, 0, nullptr, nullptr, bias.data(), ones.data(), 8, rng).ok);
  // The claim of another product (a transpose flag wrong) fails.
  const Problem sq = random_problem(false, false, 8, 8, 8, rng);
  const Mat csq = by_blas(sq);
  CHECK_FALSE(freivalds_check(false, true, 8, 8, 8, sq.a.data(), sq.b.data(), csq.data(), 8, rng).ok);
}

TEST_CASE("freivalds: a reused checker gives what a fresh one gives", "[freivalds]") {
  Rng setup(18);
  const Problem big = random_problem(true, false, 90, 70, 50, setup);
  const Problem small = random_problem(false, true, 9, 7, 5, setup);
  Mat cbig = by_blas(big), csmall = by_blas(small);
  csmall[12] += 1.f;  // missed by 20 rounds with probability 2^-20
  freivalds_checker reused;
  Rng r1(5), r2(5);
  for (const Problem* p : {&big, &small, &big}) {
    const Mat& c = p == &big ? cbig : csmall;
    const auto x = reused.check(p->ta, p->tb, p->m, p->n, p->k, p->a.data(), p->b.data(), c.data(), 20, r1);
    const auto y = freivalds_check(p->ta, p->tb, p->m, p->n, p->k, p->a.data(), p->b.data(), c.data(), 20, r2);
    CHECK(x.ok == y.ok);
    CHECK(x.rounds == y.rounds);
    CHECK(x.worst_ratio == y.worst_ratio);
    CHECK(x.bad_row == y.bad_row);
    CHECK(x.ok == (p == &big));
  }
}
