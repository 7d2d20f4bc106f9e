// onednn_matmul: C = alpha * op(A) * op(B) + beta * C (gemm.hpp's contract,
// row-major with row strides) through oneDNN's matmul primitive, whose JIT
// kernels use the CPU's widest vector ISA (AVX-512 where present), which
// OPENBLAS_CORETYPE does not constrain. A primitive is made once per
// (transposes, shape, strides, alpha, beta) and kept in a small per-thread
// cache (primitives are not shared across threads, so no lock), then only
// executed with this call's pointers: a product of a shape seen before
// makes no primitive.
// Threads: oneDNN here runs on OpenMP; each call sets the calling thread's
// OpenMP team to `threads` first, so it uses what OpenBLAS was told (never
// both pools busy: a gemm runs on one of them).
// Returns false (and computes nothing) for shapes it does not take: an
// empty dimension (m, n or k of 0), or a layout oneDNN has no primitive
// for; gemm() leaves those to OpenBLAS. Throws dnnl::error only when a
// primitive it made fails to run.
#pragma once
#include <cstdint>
#include <string>

namespace murmur {

bool onednn_matmul(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads);

// Whether this CPU gets oneDNN's AVX-512 kernels (its effective ISA is
// avx512_core or wider), the condition under which gemm() uses it.
bool onednn_has_avx512();

// "oneDNN 2.6.3 isa avx512_core": what decides how its products round
// (with the thread count, which the caller adds).
std::string onednn_description();

}  // namespace murmur
