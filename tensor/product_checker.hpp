// product_checker: the Freivalds check (tensor/freivalds.hpp) of a claimed
// product whose operands are HOST arrays, run where the checking peer
// computes: on the host (freivalds_checker), or on a compute_backend (a GPU
// verifier's own device), where the operands are uploaded into buffers this
// checker keeps and each round's pieces are computed there
// (backend_freivalds_checker). Either way the verdict comes from the one
// host rule, freivalds_apply_round, with the same random vectors for the
// same Rng state: a backend verifier accepts and rejects what a host one
// does (up to the double rounding of the pieces, ~1e-16 relative).
// Shapes, errors and the bias as freivalds_checker::check. Buffers grow to
// the largest operands seen and are reused: repeated checks of shapes no
// larger than before do not allocate.
#pragma once
#include <array>
#include <cstdint>
#include <memory>

#include "tensor/backend.hpp"
#include "tensor/backend_buffer.hpp"
#include "tensor/freivalds.hpp"

namespace murmur {

class product_checker {
 public:
  // be: null = the host; otherwise it must outlive the checker.
  explicit product_checker(compute_backend* be = nullptr);
  ~product_checker();
  product_checker(const product_checker&) = delete;
  product_checker& operator=(const product_checker&) = delete;

  // C = op(A) op(B) (+ bias, n entries, may be null), all host arrays.
  freivalds_result check(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                         const float* b, const float* bias, const float* c, int rounds, Rng& rng);
  bool on_backend() const { return be_ != nullptr; }

 private:
  // A backend copy of n host floats in `slot` (grown when too small).
  const float* stage(size_t slot, const float* host, int64_t n);
  compute_backend* be_;
  freivalds_checker host_;
  std::unique_ptr<backend_freivalds_checker> dev_;
  std::array<backend_buffer<float>, 4> staged_;  // a, b, bias, c
};

}  // namespace murmur
