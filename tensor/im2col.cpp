#include "tensor/im2col.hpp"

#include <cstring>

namespace murmur {

namespace {

// Output columns whose input column ow * stride + off lies inside the image.
void inside_columns(const conv_geometry& g, int64_t off, int64_t& ow0, int64_t& ow1) {
  ow0 = 0;
  ow1 = g.out_w;
  while (ow0 < g.out_w && ow0 * g.stride + off < 0) ++ow0;
  while (ow1 > ow0 && (ow1 - 1) * g.stride + off >= g.width) --ow1;
}

}  // namespace

void im2col(const conv_geometry& g, const float* x, float* cols) {
  const int64_t OH = g.out_h, OW = g.out_w, P = OH * OW, N = g.positions(), k = g.kernel, s = g.stride;
  const int64_t H = g.height, W = g.width;
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        float* row = cols + ((c * k + i) * k + j) * N;
        const int64_t off = j - g.pad;  // input column = ow * stride + off
        int64_t ow0, ow1;
        inside_columns(g, off, ow0, ow1);
        for (int64_t b = 0; b < g.batch; ++b) {
          const float* xc = x + (b * g.channels + c) * H * W;
          for (int64_t oh = 0; oh < OH; ++oh) {
            float* out = row + b * P + oh * OW;
            const int64_t ih = oh * s - g.pad + i;
            if (ih < 0 || ih >= H) {
              for (int64_t ow = 0; ow < OW; ++ow) out[ow] = 0.f;
              continue;
            }
            const float* xr = xc + ih * W;
            for (int64_t ow = 0; ow < ow0; ++ow) out[ow] = 0.f;
            if (s == 1) {
              for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] = xr[ow + off];
            } else {
              for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] = xr[ow * s + off];
            }
            for (int64_t ow = ow1; ow < OW; ++ow) out[ow] = 0.f;
          }
        }
      }
}

void col2im(const conv_geometry& g, const float* cols, float* dx) {
  const int64_t OH = g.out_h, OW = g.out_w, P = OH * OW, N = g.positions(), k = g.kernel, s = g.stride;
  const int64_t H = g.height, W = g.width;
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(g.batch * g.channels * H * W));
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        const float* row = cols + ((c * k + i) * k + j) * N;
        const int64_t off = j - g.pad;
        int64_t ow0, ow1;
        inside_columns(g, off, ow0, ow1);
        for (int64_t b = 0; b < g.batch; ++b) {
          float* xc = dx + (b * g.channels + c) * H * W;
          for (int64_t oh = 0; oh < OH; ++oh) {
            const int64_t ih = oh * s - g.pad + i;
            if (ih < 0 || ih >= H) continue;
            const float* gr = row + b * P + oh * OW;
            float* xr = xc + ih * W;
            if (s == 1) {
              for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow + off] += gr[ow];
            } else {
              for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow * s + off] += gr[ow];
            }
          }
        }
      }
}

}  // namespace murmur
