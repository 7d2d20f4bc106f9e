// Freivalds check: verifies a claimed product C = op(A) op(B) (+ bias) in
// O(rounds * (mk + kn + mn)) + O(mk + kn + mn) instead of recomputing it in
// O(mnk). Shapes and storage as gemm() in tensor/gemm.hpp: row-major, dense,
// op(A) is m x k (A stored k x m when trans_a), op(B) is k x n, C is m x n.
//
// Each round draws r in {0,1}^n and compares, row by row, C r with A (B r),
// both in double. An element of C that is off by more than the tolerance is
// seen by a round exactly when its r_j is 1: each round misses it with
// probability 1/2, `rounds` rounds with 2^-rounds.
//
// Tolerance. The honest claim was computed in float32 (u = 2^-24), in any
// summation order, blocked or not, with or without FMA, possibly accumulated
// wider and rounded once. Let S_ij = sum_p |a_ip b_pj| <= |a_i| |b_j|
// (Cauchy-Schwarz; a_i row i of op(A), b_j column j of op(B)). To first
// order the error of C_ij is a sum of terms delta * s, |delta| <= u: the k-1
// additions and the final rounding, each of a partial sum |s| <= S_ij, and
// the k products, |s| = |a_ip b_pj|. Their s^2 sum to at most (k+1) S_ij^2.
// The row's residual d_i = sum_j r_j (error of C_ij) gathers those of the
// n_r columns with r_j = 1, and the check accepts |d_i| <= tol_i with
//   tol_i = u * [ lambda * sqrt(k+1) * |a_i| * sqrt(sum_j r_j |b_j|^2)   (1)
//               + (k+2) * |(A B r)_i| ]                                  (2)
//         + (k+2) * n_r * FLT_MIN                                        (3)
// (1) is the root of the summed squares of all those worst-case terms,
// times lambda = 5: if rounding errors are independent and of mean zero
// (the model of Higham & Mary's probabilistic error analysis), Hoeffding's
// inequality puts |d_i| above it with probability <= 2 exp(-lambda^2 / 2)
// < 1e-5, and in practice far less, since partial sums are rarely as large
// as S_ij: on random-sign data the measured worst |d_i| / tol_i is ~2e-3 at
// k = 2048. Growing as sqrt(k) and, through the sum, as sqrt(n_r) is what
// catches a corruption of 1e-3 of its row's norm at k = 2048: on
// random-sign data (1) is about lambda * u * k / sqrt(2) ~= 4.3e-4 of the
// row norm there, while the worst-case bound k u (|A| |B| r)_i would be
// ~8e-2 and even sqrt(k) u (|A| |B| r)_i ~2e-3 (it sums over j linearly).
// (2) covers what the independence model misses: identically rounded
// partial sums (e.g. summing one constant) add coherently, up to the
// worst-case bound, gamma_{k+1} (|A| |B| r)_i, which for operands of one
// sign is at most (2) (while k < 4000), so for those the tolerance is
// rigorous. On random-sign data (2) is ~k u |C_i|
// (~1e-4 of the row norm at k = 2048).
// (3) absorbs underflow (and flush-to-zero) in tiny products; it is what an
// all-zero row is held to. The check's own double arithmetic errs by about
// (n + k) 2^-53 relative, negligible against (1) up to sizes of ~2^20.
// With a bias, it is a (k+1)-th term of each dot product: k becomes k+1,
// |a_i|^2 gains 1 and |b_j|^2 gains bias_j^2.
// Below the tolerance a corruption is indistinguishable from rounding and
// is accepted; docs/freivalds.md has the measured rates.
//
// A claim with a NaN or infinity anywhere, or non-finite operands, fails.
// Bad shapes (negative sizes, rounds < 1) and null pointers to non-empty
// buffers throw std::invalid_argument.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/backend.hpp"
#include "tensor/rng.hpp"

namespace murmur {

struct freivalds_result {
  bool ok = true;          // every round within tolerance
  int rounds = 0;          // rounds run (stops at the first failing round)
  double worst_ratio = 0;  // max over rows and rounds run of |residual_i| / tol_i
  int64_t bad_row = -1;    // a failing row, -1 if none
};

// The verdict of one round, the rule every check applies (host or backend):
// row i (of m) passes when |cr_i - abr_i| <= tol_i, tol_i as above, with
// `terms` products per dot product (k, or k + 1 with a bias), n_r ones in
// r, a_norm[i] = |a_i| (bias: sqrt(|a_i|^2 + 1)) and b_sq_r =
// sum_j r_j |b_j|^2 (bias: + bias_j^2). Counts the round in res.rounds,
// raises res.worst_ratio, and on a failing row clears res.ok (bad_row:
// the first failing row). A NaN anywhere fails its row.
void freivalds_apply_round(freivalds_result& res, int64_t m, int64_t terms, int64_t n_r,
                           const double* cr, const double* abr, const double* a_norm,
                           double b_sq_r);

// Holds the work buffers, so repeated checks of shapes no larger than
// before do not allocate.
class freivalds_checker {
 public:
  // C = op(A) op(B).
  freivalds_result check(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         const float* a, const float* b, const float* c, int rounds, Rng& rng);
  // C = op(A) op(B) + bias, bias (length n) added to every row, as
  // Linear's y = x W^T + b (trans_b).
  freivalds_result check(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         const float* a, const float* b, const float* bias, const float* c,
                         int rounds, Rng& rng);

 private:
  std::vector<double> a_sq_;  // |a_i|^2 for each row of op(A), then |a_i|
  std::vector<double> b_sq_;  // |b_j|^2 for each column of op(B) (+ bias_j^2)
  std::vector<double> r_;     // the round's r, as 0.0 / 1.0
  std::vector<double> br_;    // B r (k)
  std::vector<double> abr_;   // A (B r) (+ bias . r) (m)
  std::vector<double> cr_;    // C r (m)
};

// One-off checks (allocate their buffers each call).
freivalds_result freivalds_check(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                 const float* a, const float* b, const float* c, int rounds,
                                 Rng& rng);
freivalds_result freivalds_check(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                 const float* a, const float* b, const float* bias,
                                 const float* c, int rounds, Rng& rng);

// The same check of a product held by a compute_backend (a, b, c are the
// backend's buffers): each round draws r on the host exactly as the host
// check does (same Rng draws, so with the same seed the same r), uploads
// it, has the backend compute the round's pieces (compute_backend::
// freivalds_pieces: C r, A (B r) and the norms, in double) and applies
// freivalds_apply_round. So a product checked on a GPU gets the verdict a
// CPU verifier would give. A NaN or infinity in C or the operands makes
// a piece NaN (backend.hpp requires it of freivalds_pieces) and fails. Holds a backend buffer for r (n floats, grown when needed, freed
// with the checker) and host buffers, so repeated checks do not allocate.
class backend_freivalds_checker {
 public:
  explicit backend_freivalds_checker(compute_backend& be) : be_(be) {}
  ~backend_freivalds_checker();
  backend_freivalds_checker(const backend_freivalds_checker&) = delete;
  backend_freivalds_checker& operator=(const backend_freivalds_checker&) = delete;
  // Same shapes, errors and result as freivalds_checker::check.
  freivalds_result check(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         const float* a, const float* b, const float* c, int rounds, Rng& rng);
  // With a bias (a backend buffer of n floats), as freivalds_checker's.
  freivalds_result check(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                         const float* a, const float* b, const float* bias, const float* c,
                         int rounds, Rng& rng);

 private:
  compute_backend& be_;
  float* r_dev_ = nullptr;     // backend buffer of r_cap_ floats
  int64_t r_cap_ = 0;
  std::vector<float> r_;       // the round's r on the host
  std::vector<double> pieces_; // 3m + 1, see compute_backend::freivalds_pieces
};

// One-off check on a backend (allocates the backend buffer for r per call).
freivalds_result freivalds_check_on_backend(compute_backend& be, bool trans_a, bool trans_b,
                                            int64_t m, int64_t n, int64_t k, const float* a,
                                            const float* b, const float* c, int rounds, Rng& rng);

}  // namespace murmur
