// freivalds_check_on_backend (tensor/freivalds.hpp) on the CPU backend:
// the same verdicts as the host check, draw for draw, on honest and
// corrupted products and on non-finite claims and operands. The CUDA
// backend's pieces are held to the CPU backend's in the cross-backend op
// test; the verdict rule is this one function for both.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "tensor/cpu_backend.hpp"
#include "tensor/freivalds.hpp"
#include "tensor/gemm.hpp"
#include "tensor/rng.hpp"

using namespace murmur;

namespace {

using Mat = std::vector<float>;

struct Problem {
  bool ta, tb;
  int64_t m, n, k;
  Mat a, b, c;
  Mat bias = {};  // n entries added to every row of C; empty: none
};

Problem honest(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Rng& rng) {
  Problem p{ta, tb, m, n, k, Mat(m * k), Mat(k * n), Mat(m * n)};
  for (auto& v : p.a) v = static_cast<float>(rng.normal());
  for (auto& v : p.b) v = static_cast<float>(rng.normal());
  gemm(ta, tb, m, n, k, 1.f, p.a.data(), p.b.data(), 0.f, p.c.data());
  return p;
}

// The operands in backend buffers, freed with it.
struct on_backend {
  compute_backend& be;
  float *a, *b, *c, *bias = nullptr;
  on_backend(compute_backend& be_, const Problem& p) : be(be_) {
    a = be.alloc(p.m * p.k);
    b = be.alloc(p.k * p.n);
    c = be.alloc(p.m * p.n);
    be.upload(a, p.a.data(), p.m * p.k);
    be.upload(b, p.b.data(), p.k * p.n);
    be.upload(c, p.c.data(), p.m * p.n);
    if (!p.bias.empty()) {
      bias = be.alloc(p.n);
      be.upload(bias, p.bias.data(), p.n);
    }
  }
  ~on_backend() {
    be.free(a);
    be.free(b);
    be.free(c);
    be.free(bias);
  }
};

// Host and backend checks from the same seed: the same r every round, so
// the same verdict, failing row and (to double rounding) worst ratio.
void expect_same_verdict(compute_backend& be, backend_freivalds_checker& bc, const Problem& p, int rounds,
                         uint64_t seed) {
  on_backend d(be, p);
  Rng r_host(seed), r_be(seed);
  const float* bias = p.bias.empty() ? nullptr : p.bias.data();
  const auto h = freivalds_check(p.ta, p.tb, p.m, p.n, p.k, p.a.data(), p.b.data(), bias, p.c.data(), rounds, r_host);
  const auto g = bc.check(p.ta, p.tb, p.m, p.n, p.k, d.a, d.b, d.bias, d.c, rounds, r_be);
  INFO(p.m << "x" << p.n << "x" << p.k << " ta " << p.ta << " tb " << p.tb << " host ok " << h.ok << " ratio "
           << h.worst_ratio << " row " << h.bad_row << "; backend ok " << g.ok << " ratio " << g.worst_ratio
           << " row " << g.bad_row);
  CHECK(g.ok == h.ok);
  CHECK(g.rounds == h.rounds);
  CHECK(g.bad_row == h.bad_row);
  if (std::isfinite(h.worst_ratio)) CHECK(g.worst_ratio == Approx(h.worst_ratio).epsilon(1e-9).margin(1e-12));
  else CHECK_FALSE(std::isfinite(g.worst_ratio));
}

double row_norm(const Mat& c, int64_t n, int64_t i) {
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += static_cast<double>(c[i * n + j]) * c[i * n + j];
  return std::sqrt(s);
}

}  // namespace

TEST_CASE("freivalds on a backend: the host check's verdicts on honest and corrupted products",
          "[freivalds][backend]") {
  auto be = make_cpu_backend();
  backend_freivalds_checker bc(*be);  // reused: grows its r buffer as needed
  Rng rng(1401);
  const int64_t shapes[][3] = {{1, 1, 1}, {3, 70, 5}, {64, 33, 127}, {100, 257, 64}, {31, 9, 600}, {200, 300, 256}};
  int honest_checks = 0, caught = 0, corrupted_checks = 0;
  for (const auto& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Problem p = honest(ta, tb, s[0], s[1], s[2], rng);
        expect_same_verdict(*be, bc, p, 4, rng.next_u64());
        ++honest_checks;
        // One element off by 1e-3 of its row's norm: caught by both, in
        // the same round, at the same row (or missed by both, 2^-rounds).
        const auto i = static_cast<int64_t>(rng.below(static_cast<uint64_t>(p.m)));
        const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(p.n)));
        p.c[i * p.n + j] += static_cast<float>(1e-3 * std::max(row_norm(p.c, p.n, i), 1e-3));
        for (int rounds : {1, 16}) {
          Rng probe(77);
          const auto h = freivalds_check(ta, tb, p.m, p.n, p.k, p.a.data(), p.b.data(), p.c.data(), rounds, probe);
          caught += !h.ok;
          ++corrupted_checks;
          expect_same_verdict(*be, bc, p, rounds, 77);
        }
      }
  INFO("caught " << caught << " of " << corrupted_checks << " corrupted claims");
  CHECK(honest_checks == 24);
  CHECK(caught >= 24);  // every 16-round check at least
}

TEST_CASE("freivalds on a backend with a bias: the host check's verdicts, honest, corrupted, non-finite",
          "[freivalds][backend]") {
  auto be = make_cpu_backend();
  backend_freivalds_checker bc(*be);
  Rng rng(1402);
  const int64_t shapes[][3] = {{1, 1, 1}, {64, 33, 127}, {31, 9, 600}, {200, 300, 256}};
  for (const auto& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Problem p = honest(ta, tb, s[0], s[1], s[2], rng);
        p.bias.resize(static_cast<size_t>(p.n));
        for (auto& v : p.bias) v = static_cast<float>(rng.normal());
        for (int64_t i = 0; i < p.m; ++i)
          for (int64_t j = 0; j < p.n; ++j) p.c[i * p.n + j] += p.bias[j];
        expect_same_verdict(*be, bc, p, 4, rng.next_u64());
        // A bias entry the claim did not add: every row is off in that column.
        Problem q = p;
        const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(p.n)));
        q.bias[j] += 0.5f;
        expect_same_verdict(*be, bc, q, 16, 5);
        Rng probe(5);
        CHECK_FALSE(freivalds_check(ta, tb, q.m, q.n, q.k, q.a.data(), q.b.data(), q.bias.data(), q.c.data(), 16,
                                    probe)
                        .ok);
        // A non-finite bias entry fails on both, wherever r is (the host
        // before its first round, the backend in it).
        for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
          q = p;
          q.bias[j] = bad;
          on_backend dq(*be, q);
          for (uint64_t seed = 0; seed < 4; ++seed) {
            Rng r1(seed), r2(seed);
            INFO("bias " << bad << " at " << j << " seed " << seed);
            CHECK_FALSE(freivalds_check(ta, tb, q.m, q.n, q.k, q.a.data(), q.b.data(), q.bias.data(), q.c.data(), 1,
                                        r1)
                            .ok);
            CHECK_FALSE(bc.check(ta, tb, q.m, q.n, q.k, dq.a, dq.b, dq.bias, dq.c, 1, r2).ok);
          }
        }
      }
}

TEST_CASE("freivalds on a backend: NaN and infinity in the claim or the operands fail, as on the host",
          "[freivalds][backend]") {
  auto be = make_cpu_backend();
  backend_freivalds_checker bc(*be);
  Rng rng(1402);
  for (bool tb : {false, true})
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      const Problem good = honest(false, tb, 20, 30, 10, rng);
      Problem p = good;
      p.c[13 * 30 + 29] = bad;
      on_backend dc(*be, p);
      Rng r1(5);
      auto g = bc.check(false, tb, 20, 30, 10, dc.a, dc.b, dc.c, 1, r1);
      CHECK_FALSE(g.ok);
      CHECK(g.bad_row == 13);
      CHECK_FALSE(std::isfinite(g.worst_ratio));
      for (int which : {0, 1}) {  // A, then B
        Problem q = good;
        (which == 0 ? q.a : q.b)[3] = bad;
        on_backend dq(*be, q);
        // Whatever r is: also the columns of B a round does not draw.
        for (uint64_t seed = 0; seed < 8; ++seed) {
          Rng r2(seed);
          INFO("tb " << tb << " bad " << bad << (which == 0 ? " in A" : " in B") << " seed " << seed);
          CHECK_FALSE(bc.check(false, tb, 20, 30, 10, dq.a, dq.b, dq.c, 1, r2).ok);
        }
      }
    }
}

TEST_CASE("freivalds on a backend: shapes and empty products as the host check", "[freivalds][backend]") {
  auto be = make_cpu_backend();
  Rng rng(1403);
  float* a = be->alloc(24);
  float* b = be->alloc(30);
  float* c = be->alloc(20);
  CHECK_THROWS_AS(freivalds_check_on_backend(*be, false, false, -1, 5, 6, a, b, c, 1, rng), std::invalid_argument);
  CHECK_THROWS_AS(freivalds_check_on_backend(*be, false, false, 4, 5, 6, a, b, c, 0, rng), std::invalid_argument);
  CHECK_THROWS_AS(freivalds_check_on_backend(*be, false, false, 4, 5, 6, nullptr, b, c, 1, rng),
                  std::invalid_argument);
  CHECK(freivalds_check_on_backend(*be, false, false, 0, 5, 6, nullptr, b, nullptr, 1, rng).ok);
  // All zeros: the zero product of zero operands, and k = 0.
  CHECK(freivalds_check_on_backend(*be, false, false, 4, 5, 6, a, b, c, 8, rng).ok);
  CHECK(freivalds_check_on_backend(*be, false, false, 4, 5, 0, nullptr, nullptr, c, 8, rng).ok);
  const std::vector<float> ones(20, 1.f);
  be->upload(c, ones.data(), 20);
  CHECK_FALSE(freivalds_check_on_backend(*be, false, false, 4, 5, 0, nullptr, nullptr, c, 8, rng).ok);
  be->free(a);
  be->free(b);
  be->free(c);
}
