// cublas_library: cuBLAS loaded with dlopen when a CUDA backend is created,
// not when the program starts. Linked normally, libcublas and libcublasLt
// (~600 MB) are mapped and relocated by every murmur command: `murmur
// --version` went from 0.07 s to 0.39 s, on machines that never use a GPU
// too. Loaded here, a CPU-only run never touches them, and a binary built
// with CUDA runs on machines without the CUDA toolkit.
// The members are cuBLAS's own functions (cublas_v2.h names, _v2 symbols).
#pragma once
#include <cublas_v2.h>

namespace murmur {

class cublas_library {
 public:
  // Throws std::runtime_error naming the library and dlerror's reason.
  cublas_library();
  ~cublas_library();
  cublas_library(const cublas_library&) = delete;
  cublas_library& operator=(const cublas_library&) = delete;

  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgeam) sgeam = nullptr;
  // Spelled out: C++ sees an inline overload of each taking a cudaDataType
  // compute type (old code); these are the exported cublasComputeType_t ones.
  using gemm_ex_fn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                        const void*, const void*, cudaDataType, int, const void*, cudaDataType, int,
                                        const void*, void*, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  using gemm_strided_batched_ex_fn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                                        int, int, const void*, const void*, cudaDataType, int,
                                                        long long int, const void*, cudaDataType, int, long long int,
                                                        const void*, void*, cudaDataType, int, long long int, int,
                                                        cublasComputeType_t, cublasGemmAlgo_t);
  gemm_ex_fn gemm_ex = nullptr;
  gemm_strided_batched_ex_fn gemm_strided_batched_ex = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;

 private:
  void* handle_ = nullptr;
};

}  // namespace murmur
