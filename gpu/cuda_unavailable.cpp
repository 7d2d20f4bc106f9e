// The answers of gpu/cuda_backend.hpp in a build without CUDA (MURMUR_CUDA
// OFF, or AUTO with no CUDA compiler found).
#include <stdexcept>

#include "gpu/cuda_backend.hpp"

namespace murmur {

bool cuda_compiled() { return false; }

cuda_probe probe_cuda() {
  cuda_probe p;
  p.reason = "built without CUDA (configure with a CUDA compiler on the PATH, or -DMURMUR_CUDA=ON)";
  return p;
}

std::unique_ptr<compute_backend> make_cuda_backend(int device) {
  throw std::runtime_error("cuda:" + std::to_string(device) + ": " + probe_cuda().reason);
}

}  // namespace murmur
