// channel_blocked: the activation layout that oneDNN's direct convolution
// and pooling kernels run on, nChw16c: channels in blocks of 16, the 16 of a
// block innermost, element (b, c, h, w) at
// ((b * C/16 + c/16) * H*W + h*W + w) * 16 + c % 16.
// Sequential passes activations in it between layers that all take it (a
// conv, ReLU and pool chain), so they are not reordered to and from nchw at
// every layer (docs/cpu_kernels.md). Only channel counts that are multiples
// of 16 use it: then the blocked tensor has exactly the plain one's size and
// shape [B, C, H, W] (the shape names the logical dimensions; the layout is
// what the two neighbouring layers agreed, Layer::set_layouts).
#pragma once
#include <cstdint>

#include "tensor/tensor.hpp"

namespace murmur {

inline constexpr int64_t channel_block = 16;

// Whether a per-sample shape [C, H, W] can travel blocked.
inline bool channel_blockable(const Shape& chw) {
  return chw.size() == 3 && chw[0] > 0 && chw[0] % channel_block == 0 && chw[1] > 0 && chw[2] > 0;
}

// Plain loops for the rare reader that needs nchw (step transcripts) and for
// tests; the hot path never converts. C must be a multiple of 16.
void nchw_to_channel_blocked(const float* x, float* y, int64_t batch, int64_t channels, int64_t hw);
void channel_blocked_to_nchw(const float* x, float* y, int64_t batch, int64_t channels, int64_t hw);

}  // namespace murmur
