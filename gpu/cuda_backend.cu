// Placeholder until the CUDA backend lands: the contract of
// gpu/cuda_backend.hpp with no device code yet.
#include <stdexcept>

#include "gpu/cuda_backend.hpp"

namespace murmur {

std::unique_ptr<compute_backend> make_cuda_backend(int device) {
  const auto p = probe_cuda();
  if (p.device_count == 0) throw std::runtime_error("cuda:" + std::to_string(device) + ": " + p.reason);
  throw std::runtime_error("cuda:" + std::to_string(device) + ": the CUDA backend is not built yet");
}

}  // namespace murmur
