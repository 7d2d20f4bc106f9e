#include "tensor/channel_blocked.hpp"

namespace murmur {

void nchw_to_channel_blocked(const float* x, float* y, int64_t B, int64_t C, int64_t HW) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const float* src = x + (b * C + c) * HW;
      float* dst = y + (b * C + (c / channel_block) * channel_block) * HW + c % channel_block;
      for (int64_t p = 0; p < HW; ++p) dst[p * channel_block] = src[p];
    }
}

void channel_blocked_to_nchw(const float* x, float* y, int64_t B, int64_t C, int64_t HW) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const float* src = x + (b * C + (c / channel_block) * channel_block) * HW + c % channel_block;
      float* dst = y + (b * C + c) * HW;
      for (int64_t p = 0; p < HW; ++p) dst[p] = src[p * channel_block];
    }
}

}  // namespace murmur
