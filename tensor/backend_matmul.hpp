// backend_matmul: C = A B for host row-major matrices (A m x k, B k x n),
// computed on a compute_backend: A and B are uploaded, multiplied by the
// backend's gemm, and C is downloaded. What a helper peer that trains on a
// GPU does with an offloaded product (actors/verifier_actor.hpp).
//  - The backend buffers grow to the largest operands seen and are reused:
//    a product no larger than an earlier one allocates nothing.
//  - The backend is used from the caller's thread only; give it a stream of
//    its own (compute_backend::another_stream) when another thread trains on
//    the same device.
//  - Products are float32 as the contract says (no TF32): an answer passes
//    a Freivalds check as a host product does.
#pragma once
#include <cstdint>

#include "tensor/backend.hpp"

namespace murmur {

class backend_matmul {
 public:
  explicit backend_matmul(compute_backend& be) : be_(be) {}
  ~backend_matmul();
  backend_matmul(const backend_matmul&) = delete;
  backend_matmul& operator=(const backend_matmul&) = delete;

  // c (m x n, host) = a (m x k, host) b (k x n, host). Waits for the result.
  void multiply(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c);

  compute_backend& backend() { return be_; }

 private:
  struct buffer {
    float* p = nullptr;
    int64_t capacity = 0;
  };
  float* fit(buffer& buf, int64_t n);

  compute_backend& be_;
  buffer a_, b_, c_;
};

}  // namespace murmur
