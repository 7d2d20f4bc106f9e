// gemm: C = alpha * op(A) * op(B) + beta * C on row-major float buffers,
// through oneDNN's matmul where the CPU has AVX-512 (tensor/onednn_matmul.hpp;
// faster there on every shape measured), else OpenBLAS cblas_sgemm. op(X) is X or X^T. Shapes: op(A) is m x k,
// op(B) is k x n, C is m x n; lda/ldb/ldc are the row strides as stored.
#pragma once
#include <cstdint>
#include <string>

namespace murmur {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc);

// Convenience for densely stored operands (lda etc. follow from the shapes).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, const float* b, float beta, float* c);

// Sets OpenBLAS's own thread pool size (it ignores OpenMP settings); the
// oneDNN path gives each product the same count of OpenMP threads.
void set_blas_threads(int n);

// What decides how the BLAS rounds: the library's build (OpenBLAS's config
// string), the kernel path it chose for this CPU (its core name, which
// OPENBLAS_CORETYPE can force) and its thread count, e.g.
// "OpenBLAS 0.3.26 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64; core Haswell; threads 1",
// then "; products by oneDNN 2.6.3 isa avx512_core_bf16 (empty shapes by OpenBLAS)"
// where gemm() uses oneDNN.
// Two processes with equal strings compute the same sgemm bit for bit.
std::string blas_kernel_description();

}  // namespace murmur
