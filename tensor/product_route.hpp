// product_route: where a layer's matrix products run. By default a layer
// calls gemm() itself; a route installed on it (Linear::set_product_route)
// gets each product instead and must leave in C exactly what
//   gemm(trans_a, trans_b, m, n, k, 1, a, b, beta, c)
// would (beta is 0 or 1: Linear's forward adds into its bias-seeded output).
// Operands are dense row-major as in gemm.hpp; they stay valid and unchanged
// until run() returns. The route may hand the product to someone else (an
// offloading peer's helper) and must return only once C holds the answer.
#pragma once
#include <cstdint>

namespace murmur {

struct product_call {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  const float* b = nullptr;
  float beta = 0;
  float* c = nullptr;
  double flops() const { return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k); }
};

class product_route {
 public:
  virtual ~product_route() = default;
  virtual void run(const product_call& p) = 0;
};

}  // namespace murmur
