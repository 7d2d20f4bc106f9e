// probe_cuda / cuda_compiled: which CUDA devices this process can use, and
// if none, why, in words a user can act on.
#include <cuda_runtime.h>

#include <string>

#include "gpu/cuda_backend.hpp"

namespace murmur {

bool cuda_compiled() { return true; }

cuda_probe probe_cuda() {
  cuda_probe p;
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error for later calls
    switch (rc) {
      case cudaErrorNoDevice:
        p.reason = "no CUDA device";
        break;
      case cudaErrorInsufficientDriver:
        p.reason = "no CUDA driver, or one older than this build's CUDA runtime " + std::to_string(CUDART_VERSION / 1000) +
                   "." + std::to_string(CUDART_VERSION % 1000 / 10) + " (" + cudaGetErrorString(rc) + ")";
        break;
      default:
        p.reason = std::string("CUDA unusable: ") + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
    }
    return p;
  }
  if (count == 0) {
    p.reason = "no CUDA device";
    return p;
  }
  p.device_count = count;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) == cudaSuccess)
      p.names.emplace_back(prop.name);
    else
      p.names.emplace_back("CUDA device " + std::to_string(i));
  }
  return p;
}

}  // namespace murmur
