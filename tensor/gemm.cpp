#include "tensor/gemm.hpp"

#include <cblas.h>

#include "tensor/onednn_matmul.hpp"

namespace murmur {

namespace {

// Measured per product shape (docs/cpu_kernels.md, "Linear layers"): with
// AVX-512, oneDNN's kernels beat OpenBLAS's forced Haswell kernel on every
// shape tried, so the rule is by ISA, not by shape.
bool use_onednn() {
  static const bool yes = onednn_has_avx512();  // a property of the CPU, fixed for the process
  return yes;
}

}  // namespace

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (use_onednn() &&
      onednn_matmul(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, openblas_get_num_threads()))
    return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          const float* b, float beta, float* c) {
  gemm(ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

void set_blas_threads(int n) { openblas_set_num_threads(n); }

std::string blas_kernel_description() {
  const char* config = openblas_get_config();
  const char* core = openblas_get_corename();
  std::string d = std::string(config ? config : "OpenBLAS ?") + "; core " + (core ? core : "?") + "; threads " +
                  std::to_string(openblas_get_num_threads());
  if (use_onednn()) d += "; products by " + onednn_description() + " (empty shapes by OpenBLAS)";
  return d;
}

}  // namespace murmur
