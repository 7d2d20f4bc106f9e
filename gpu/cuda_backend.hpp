// The CUDA backend: compute_backend (tensor/backend.hpp) on one NVIDIA GPU,
// cuBLAS for every product (FP32, TF32 off: CUBLAS_COMPUTE_32F with the
// default math mode, so products meet tensor/freivalds.hpp's rounding model)
// and kernels for every other op. One stream and one cuBLAS handle per
// backend instance (per peer); a pinned staging buffer for uploads.
//
// Built only when CMake found CUDA (MURMUR_CUDA); otherwise cuda_compiled()
// is false, probe_cuda() says "built without CUDA" and make_cuda_backend
// throws that.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tensor/backend.hpp"

namespace murmur {

bool cuda_compiled();

struct cuda_probe {
  int device_count = 0;
  // Why no device is usable, when device_count == 0, e.g. "no CUDA driver
  // (libcuda.so not found)", "no CUDA device", "built without CUDA".
  std::string reason;
  std::vector<std::string> names;  // per device, e.g. "NVIDIA H100 80GB HBM3"
};
// Never throws; cheap enough to call at start-up.
cuda_probe probe_cuda();

// Throws std::runtime_error naming the device and why it cannot be used
// (no driver, no such device, out of memory while creating the stream,
// cuBLAS handle or staging buffer).
std::unique_ptr<compute_backend> make_cuda_backend(int device);

}  // namespace murmur
