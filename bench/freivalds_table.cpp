// Measured false-accept rate of freivalds_check against the size of a single
// corrupted entry (relative to the L2 norm of its row of C) and the number
// of rounds, plus the time of a check against the time of the product it
// checks, both measured in this run on one thread. Prints Markdown
// (docs/freivalds.md holds a copy). Usage: build/freivalds_table
//
// Each trial corrupts one random entry by +-rel * |row| and runs 8 rounds;
// the claim was missed by k rounds when the first k all passed, so the four
// columns of a row come from the same trials (nested, not independent).
#include <algorithm>
#include <array>
#include <utility>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "tensor/freivalds.hpp"
#include "tensor/gemm.hpp"
#include "tensor/rng.hpp"

using namespace murmur;

namespace {

constexpr int kMaxRounds = 8;
constexpr int kRounds[] = {1, 2, 4, 8};

struct Claim {
  int64_t n = 0;  // square: m = n = k
  std::vector<float> a, b, c;
};

// x (n x n) times w^T, as Linear's forward, random normal operands.
Claim make_claim(int64_t n, Rng& rng) {
  Claim cl{n, std::vector<float>(n * n), std::vector<float>(n * n), std::vector<float>(n * n)};
  for (auto& v : cl.a) v = static_cast<float>(rng.normal());
  for (auto& v : cl.b) v = static_cast<float>(rng.normal());
  gemm(false, true, n, n, n, 1.f, cl.a.data(), cl.b.data(), 0.f, cl.c.data());
  return cl;
}

// misses[i]: trials that kRounds[i] rounds accepted.
std::array<int, 4> count_misses(freivalds_checker& checker, Claim& cl, double rel, int trials,
                                Rng& rng) {
  std::array<int, 4> misses{};
  const int64_t n = cl.n;
  for (int t = 0; t < trials; ++t) {
    const auto i = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
    double norm = 0;
    for (int64_t q = 0; q < n; ++q) norm += static_cast<double>(cl.c[i * n + q]) * cl.c[i * n + q];
    const float saved = cl.c[i * n + j];
    cl.c[i * n + j] = static_cast<float>(saved + (rng.below(2) ? rel : -rel) * std::sqrt(norm));
    const auto r = checker.check(false, true, n, n, n, cl.a.data(), cl.b.data(), cl.c.data(),
                                 kMaxRounds, rng);
    cl.c[i * n + j] = saved;
    // r.rounds is the first failing round when !r.ok.
    for (size_t q = 0; q < 4; ++q) misses[q] += r.ok || r.rounds > kRounds[q];
  }
  return misses;
}

template <class F>
double median_seconds(int reps, F&& f) {
  std::vector<double> s;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

}  // namespace

int main() {
  set_blas_threads(1);
  Rng rng(2024);
  freivalds_checker checker;
  const double rels[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1};

  std::printf("### False-accept rate, 256 x 256 x 256, 10000 trials per row\n\n");
  std::printf("| corruption / row norm | 1 round | 2 rounds | 4 rounds | 8 rounds |\n");
  std::printf("|---|---|---|---|---|\n");
  Claim mid = make_claim(256, rng);
  for (double rel : rels) {
    const int trials = 10000;
    const auto misses = count_misses(checker, mid, rel, trials, rng);
    std::printf("| %.0e |", rel);
    for (int m : misses) std::printf(" %.4f |", static_cast<double>(m) / trials);
    std::printf("\n");
    std::fflush(stdout);
  }
  std::printf("| 2^-rounds | 0.5000 | 0.2500 | 0.0625 | 0.0039 |\n\n");

  std::printf("### False-accept rate, 2048 x 2048 x 2048\n\n");
  std::printf("| corruption / row norm | trials | 1 round | 2 rounds | 4 rounds | 8 rounds |\n");
  std::printf("|---|---|---|---|---|---|\n");
  Claim big = make_claim(2048, rng);
  for (auto [rel, trials] : {std::pair{1e-4, 50}, std::pair{1e-3, 300}}) {
    const auto misses = count_misses(checker, big, rel, trials, rng);
    std::printf("| %.0e | %d |", rel, trials);
    for (int m : misses) std::printf(" %.4f |", static_cast<double>(m) / trials);
    std::printf("\n");
    std::fflush(stdout);
  }

  std::printf("\n### Time of a check against the product (one thread, median)\n\n");
  std::printf("| m = n = k | sgemm | check, 1 round | ratio | check, 8 rounds | ratio | honest worst residual / tol |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int64_t n : {256, 1024, 2048}) {
    Claim cl = n == 2048 ? std::move(big) : make_claim(n, rng);
    const int reps = n == 2048 ? 3 : n == 1024 ? 5 : 21;
    std::vector<float> out(n * n);
    const double t_gemm = median_seconds(reps, [&] {
      gemm(false, true, n, n, n, 1.f, cl.a.data(), cl.b.data(), 0.f, out.data());
    });
    double worst = 0;
    auto timed_check = [&](int rounds) {
      return median_seconds(reps, [&] {
        const auto r = checker.check(false, true, n, n, n, cl.a.data(), cl.b.data(),
                                     cl.c.data(), rounds, rng);
        if (!r.ok) std::fprintf(stderr, "honest claim rejected at n = %lld\n", static_cast<long long>(n));
        worst = std::max(worst, r.worst_ratio);
      });
    };
    const double t1 = timed_check(1), t8 = timed_check(8);
    std::printf("| %lld | %.2f ms | %.3f ms | %.4f | %.3f ms | %.4f | %.2e |\n",
                static_cast<long long>(n), 1e3 * t_gemm, 1e3 * t1, t1 / t_gemm, 1e3 * t8,
                t8 / t_gemm, worst);
    std::fflush(stdout);
  }
  return 0;
}
