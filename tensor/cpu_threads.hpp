// cpu_threads: murmur's one thread setting for a model's CPU kernels, and the
// rule that keeps two thread pools off the same cores.
// Two pools can run a step: oneDNN's OpenMP team (Conv2d, MaxPool2d) and
// OpenBLAS's pthread pool (Linear's products, the im2col path). Their idle
// workers spin for a while after each call, so a pool that just finished
// still holds its cores when the other starts. The rule:
//  - a model with a oneDNN layer runs oneDNN's convolutions on n threads and
//    OpenBLAS on 1 (the calling thread alone, no second pool busy beside the
//    team); pooling and layout reorders stay on the calling thread (short,
//    memory-bound: each parallel region would add a barrier per call);
//  - a model without one runs OpenBLAS on n threads.
// Hosts that run several models at once on their own threads keep n = 1,
// the layers' default: the simulator takes turns on one thread, and
// `murmur sweep --jobs N` runs at most one simulation per core.
#pragma once

#include "tensor/sequential.hpp"

namespace murmur {

// Applies the rule to m's layers (residual bodies too) and the process's
// OpenBLAS pool;
// returns whether m has a oneDNN layer. n < 1 counts as 1.
bool set_model_threads(Sequential& m, int n);

}  // namespace murmur
