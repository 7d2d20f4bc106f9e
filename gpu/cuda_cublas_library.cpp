#include "gpu/cuda_cublas_library.hpp"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace murmur {

namespace {

template <class F>
void bind(void* handle, F& f, const char* symbol, const std::string& lib) {
  f = reinterpret_cast<F>(dlsym(handle, symbol));
  if (!f) throw std::runtime_error(lib + " has no " + symbol + " (a cuBLAS older than " +
                                   std::to_string(CUBLAS_VER_MAJOR) + "?)");
}

}  // namespace

cublas_library::cublas_library() {
  // The major version this was compiled against: its ABI is what the
  // signatures above describe.
  const std::string lib = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  handle_ = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char* why = dlerror();
    throw std::runtime_error("cannot load " + lib + " (cuBLAS " + std::to_string(CUBLAS_VER_MAJOR) +
                             ", from the CUDA toolkit; add its lib directory to LD_LIBRARY_PATH): " +
                             (why ? why : "unknown error"));
  }
  try {
    bind(handle_, create, "cublasCreate_v2", lib);
    bind(handle_, destroy, "cublasDestroy_v2", lib);
    bind(handle_, set_stream, "cublasSetStream_v2", lib);
    bind(handle_, set_math_mode, "cublasSetMathMode", lib);
    bind(handle_, sgeam, "cublasSgeam", lib);
    bind(handle_, gemm_ex, "cublasGemmEx", lib);
    bind(handle_, gemm_strided_batched_ex, "cublasGemmStridedBatchedEx", lib);
    bind(handle_, status_name, "cublasGetStatusName", lib);
    bind(handle_, status_string, "cublasGetStatusString", lib);
  } catch (...) {
    dlclose(handle_);
    throw;
  }
}

cublas_library::~cublas_library() {
  if (handle_) dlclose(handle_);
}

}  // namespace murmur
