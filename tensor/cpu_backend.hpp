// cpu_backend: compute_backend (tensor/backend.hpp) on the host, through
// the same code paths as the Layer classes (OpenBLAS gemm, im2col, the
// loops of activation/maxpool/groupnorm/...). It is the reference the CUDA
// backend is tested against, and what backend_model uses in tests on
// machines without a GPU.
#pragma once
#include <memory>

#include "tensor/backend.hpp"

namespace murmur {

std::unique_ptr<compute_backend> make_cpu_backend();

}  // namespace murmur
