#include "tensor/product_checker.hpp"

namespace murmur {

product_checker::product_checker(compute_backend* be) : be_(be) {
  if (be_) dev_ = std::make_unique<backend_freivalds_checker>(*be_);
}

// Members go in reverse order (the staged buffers, then the backend
// checker's), each freed by the backend, which the owner keeps alive.
product_checker::~product_checker() = default;

const float* product_checker::stage(size_t slot, const float* host, int64_t n) {
  if (!host || n <= 0) return nullptr;  // an empty operand; the checker refuses a null non-empty one
  backend_buffer<float>& buf = staged_[slot];
  if (buf.size() < n) buf = backend_buffer<float>(*be_, n);
  be_->upload(buf.get(), host, n);
  return buf.get();
}

freivalds_result product_checker::check(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
                                        const float* b, const float* bias, const float* c, int rounds, Rng& rng) {
  if (!be_) return host_.check(ta, tb, m, n, k, a, b, bias, c, rounds, rng);
  // Sizes are checked by the backend checker before any use; a negative one stages nothing.
  const int64_t na = m > 0 && k > 0 ? m * k : 0, nb = k > 0 && n > 0 ? k * n : 0, nc = m > 0 && n > 0 ? m * n : 0;
  const float* da = stage(0, a, na);
  const float* db = stage(1, b, nb);
  const float* dbias = bias ? stage(2, bias, n) : nullptr;
  const float* dc = stage(3, c, nc);
  // A bias of an empty product (n = 0) stays null; the check returns before using it.
  return dev_->check(ta, tb, m, n, k, da, db, dbias, dc, rounds, rng);
}

}  // namespace murmur
