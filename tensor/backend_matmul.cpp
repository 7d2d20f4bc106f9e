#include "tensor/backend_matmul.hpp"

#include <stdexcept>
#include <string>

namespace murmur {

backend_matmul::~backend_matmul() {
  be_.free(a_.p);
  be_.free(b_.p);
  be_.free(c_.p);
}

float* backend_matmul::fit(buffer& buf, int64_t n) {
  if (n <= buf.capacity) return buf.p;
  // Grow only: the next product of this size or less reuses it. The old
  // buffer's last use (an earlier product) is done: multiply waits for C.
  be_.free(buf.p);
  buf.p = nullptr;
  buf.capacity = 0;
  buf.p = be_.alloc(n);
  buf.capacity = n;
  return buf.p;
}

void backend_matmul::multiply(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("backend_matmul: negative shape " + std::to_string(m) + " x " + std::to_string(k) +
                                " by " + std::to_string(k) + " x " + std::to_string(n));
  if (m == 0 || n == 0) return;
  float* dc = fit(c_, m * n);
  if (k == 0) {  // an empty sum: C = 0, as gemm with beta 0 gives
    be_.fill(dc, 0.f, m * n);
  } else {
    float* da = fit(a_, m * k);
    float* db = fit(b_, k * n);
    be_.upload(da, a, m * k);
    be_.upload(db, b, k * n);
    be_.gemm(false, false, m, n, k, 1.f, da, k, db, n, 0.f, dc, n);
  }
  be_.download(c, dc, m * n);
}

}  // namespace murmur
