#include "tensor/freivalds.hpp"

#include <cfloat>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "tensor/double_dot.hpp"

namespace murmur {

namespace {

constexpr double kUnit = 0x1.0p-24;  // float32 unit roundoff
constexpr double kLambda = 5.0;      // see the header: Hoeffding tail 2 exp(-12.5)

void require(bool cond, const char* what) {
  if (!cond) throw std::invalid_argument(std::string("freivalds_check: ") + what);
}

// The shapes and pointers every check takes (std::invalid_argument).
void require_arguments(int64_t m, int64_t n, int64_t k, const float* a, const float* b, const float* c,
                       int rounds) {
  require(m >= 0 && n >= 0 && k >= 0, "negative size");
  require(rounds >= 1, "rounds must be >= 1");
  require(a || m * k == 0, "null A");
  require(b || k * n == 0, "null B");
  require(c || m * n == 0, "null C");
}

bool finite_all(const std::vector<double>& v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

}  // namespace

void freivalds_apply_round(freivalds_result& res, int64_t m, int64_t terms, int64_t n_r,
                           const double* cr, const double* abr, const double* a_norm,
                           double b_sq_r) {
  const double t = static_cast<double>(terms);
  const double c_prob = kLambda * kUnit * std::sqrt(t + 1);
  const double c_coh = kUnit * (t + 2);
  const double floor = (t + 2) * static_cast<double>(n_r) * FLT_MIN;
  const double b_norm_r = std::sqrt(b_sq_r);
  ++res.rounds;
  for (int64_t i = 0; i < m; ++i) {
    const double tol = c_prob * a_norm[i] * b_norm_r + c_coh * std::fabs(abr[i]) + floor;
    // An exact match passes even where tol is 0 (r = 0, k = 0), but not
    // against a NaN tolerance (a backend's sign of a non-finite operand).
    const double resid = std::fabs(cr[i] - abr[i]);
    const double ratio = resid == 0.0 && !std::isnan(tol) ? 0.0 : resid / tol;
    // Written so that a NaN residual (or norm) fails too.
    if (!(ratio <= 1.0)) {
      if (res.ok) res.bad_row = i;
      res.ok = false;
    }
    if (std::isnan(ratio)) res.worst_ratio = std::numeric_limits<double>::infinity();
    else if (ratio > res.worst_ratio) res.worst_ratio = ratio;
  }
}

freivalds_result freivalds_checker::check(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                          const float* a, const float* b, const float* c,
                                          int rounds, Rng& rng) {
  return check(ta, tb, m, n, k, a, b, nullptr, c, rounds, rng);
}

freivalds_result freivalds_checker::check(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                          const float* a, const float* b, const float* bias,
                                          const float* c, int rounds, Rng& rng) {
  require_arguments(m, n, k, a, b, c, rounds);

  freivalds_result res;
  if (m == 0 || n == 0) return res;

  // A non-finite entry of the claim may sit where r_j = 0 in every round:
  // look at all of them once.
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (!std::isfinite(c[i * n + j])) {
        res.ok = false;
        res.bad_row = i;
        res.worst_ratio = std::numeric_limits<double>::infinity();
        return res;
      }

  const auto mu = static_cast<size_t>(m), nu = static_cast<size_t>(n), ku = static_cast<size_t>(k);
  // resize() only allocates when a buffer has to grow.
  a_sq_.resize(mu);
  b_sq_.resize(nu);
  r_.resize(nu);
  br_.resize(ku);
  abr_.resize(mu);
  cr_.resize(mu);

  // Squared norms of the rows of op(A) and the columns of op(B), each
  // walked along its storage rows. The bias is a (k+1)-th term: a 1 in
  // every row of A, bias_j in column j of B.
  for (int64_t i = 0; i < m; ++i) a_sq_[i] = bias ? 1.0 : 0.0;
  if (!ta) {
    for (int64_t i = 0; i < m; ++i) a_sq_[i] += sum_sq_in_double(a + i * k, k);
  } else {
    for (int64_t p = 0; p < k; ++p) {
      const float* row = a + p * m;
      for (int64_t i = 0; i < m; ++i) a_sq_[i] += static_cast<double>(row[i]) * row[i];
    }
  }
  for (int64_t j = 0; j < n; ++j) b_sq_[j] = bias ? static_cast<double>(bias[j]) * bias[j] : 0.0;
  if (!tb) {
    for (int64_t p = 0; p < k; ++p) {
      const float* row = b + p * n;
      for (int64_t j = 0; j < n; ++j) b_sq_[j] += static_cast<double>(row[j]) * row[j];
    }
  } else {
    for (int64_t j = 0; j < n; ++j) b_sq_[j] += sum_sq_in_double(b + j * k, k);
  }
  // Squares of floats cannot overflow a double: non-finite means a NaN or
  // infinity in an operand, which no tolerance can vouch for.
  if (!finite_all(a_sq_, mu) || !finite_all(b_sq_, nu)) {
    res.ok = false;
    res.worst_ratio = std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < m && res.bad_row < 0; ++i)
      if (!std::isfinite(a_sq_[i])) res.bad_row = i;
    if (res.bad_row < 0) res.bad_row = 0;
    return res;
  }

  const int64_t terms = k + (bias ? 1 : 0);  // terms per dot product
  for (int64_t i = 0; i < m; ++i) a_sq_[i] = std::sqrt(a_sq_[i]);  // now |a_i|

  for (int round = 0; round < rounds; ++round) {
    // r in {0,1}^n, 64 coin flips per draw.
    int64_t n_r = 0;
    double b_sq_r = 0;
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
      uint64_t bits = rng.next_u64();
      for (int64_t j = j0; j < n && j < j0 + 64; ++j, bits >>= 1) {
        const bool on = bits & 1;
        r_[j] = on ? 1.0 : 0.0;
        n_r += on;
        if (on) b_sq_r += b_sq_[j];
      }
    }

    // B r, then A (B r) (+ bias . r), then C r.
    if (!tb) {
      for (int64_t p = 0; p < k; ++p) br_[p] = dot_in_double(b + p * n, r_.data(), n);
    } else {
      for (int64_t p = 0; p < k; ++p) br_[p] = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (r_[j] == 0.0) continue;
        const float* row = b + j * k;
        for (int64_t p = 0; p < k; ++p) br_[p] += row[p];
      }
    }
    double bias_r = 0;
    if (bias) bias_r = dot_in_double(bias, r_.data(), n);
    if (!ta) {
      for (int64_t i = 0; i < m; ++i) abr_[i] = dot_in_double(a + i * k, br_.data(), k) + bias_r;
    } else {
      for (int64_t i = 0; i < m; ++i) abr_[i] = bias_r;
      for (int64_t p = 0; p < k; ++p) {
        const float* row = a + p * m;
        const double y = br_[p];
        for (int64_t i = 0; i < m; ++i) abr_[i] += row[i] * y;
      }
    }
    for (int64_t i = 0; i < m; ++i) cr_[i] = dot_in_double(c + i * n, r_.data(), n);

    freivalds_apply_round(res, m, terms, n_r, cr_.data(), abr_.data(), a_sq_.data(), b_sq_r);
    if (!res.ok) break;
  }
  return res;
}

freivalds_result freivalds_check(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                 const float* a, const float* b, const float* c, int rounds,
                                 Rng& rng) {
  freivalds_checker checker;
  return checker.check(ta, tb, m, n, k, a, b, nullptr, c, rounds, rng);
}

freivalds_result freivalds_check(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                 const float* a, const float* b, const float* bias,
                                 const float* c, int rounds, Rng& rng) {
  freivalds_checker checker;
  return checker.check(ta, tb, m, n, k, a, b, bias, c, rounds, rng);
}

backend_freivalds_checker::~backend_freivalds_checker() { be_.free(r_dev_); }

freivalds_result backend_freivalds_checker::check(bool ta, bool tb, int64_t m, int64_t n,
                                                  int64_t k, const float* a, const float* b,
                                                  const float* c, int rounds, Rng& rng) {
  return check(ta, tb, m, n, k, a, b, nullptr, c, rounds, rng);
}

freivalds_result backend_freivalds_checker::check(bool ta, bool tb, int64_t m, int64_t n,
                                                  int64_t k, const float* a, const float* b,
                                                  const float* bias, const float* c, int rounds,
                                                  Rng& rng) {
  require_arguments(m, n, k, a, b, c, rounds);

  freivalds_result res;
  if (m == 0 || n == 0) return res;
  if (n > r_cap_) {
    be_.free(r_dev_);
    r_dev_ = nullptr;
    r_dev_ = be_.alloc(n);
    r_cap_ = n;
  }
  const auto mu = static_cast<size_t>(m);
  r_.resize(static_cast<size_t>(n));
  pieces_.resize(3 * mu + 1);
  const int64_t terms = k + (bias ? 1 : 0);  // terms per dot product, as the host check
  for (int round = 0; round < rounds; ++round) {
    // The same draws as freivalds_checker: 64 coin flips per next_u64.
    int64_t n_r = 0;
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
      uint64_t bits = rng.next_u64();
      for (int64_t j = j0; j < n && j < j0 + 64; ++j, bits >>= 1) {
        const bool on = bits & 1;
        r_[j] = on ? 1.f : 0.f;
        n_r += on;
      }
    }
    be_.upload(r_dev_, r_.data(), n);
    be_.freivalds_pieces(ta, tb, m, n, k, a, b, bias, c, r_dev_, pieces_.data());
    const double* cr = pieces_.data();
    freivalds_apply_round(res, m, terms, n_r, cr, cr + m, cr + 2 * m, cr[3 * m]);
    if (!res.ok) break;
  }
  return res;
}

freivalds_result freivalds_check_on_backend(compute_backend& be, bool ta, bool tb, int64_t m,
                                            int64_t n, int64_t k, const float* a, const float* b,
                                            const float* c, int rounds, Rng& rng) {
  backend_freivalds_checker checker(be);
  return checker.check(ta, tb, m, n, k, a, b, c, rounds, rng);
}

}  // namespace murmur
