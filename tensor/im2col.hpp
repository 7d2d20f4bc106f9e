// im2col: the column matrix a 2-D convolution multiplies its weight with,
// and its adjoint. Conv2d runs its forward as W [O, C*k*k] x cols
// [C*k*k, B*OH*OW]; step verification (actors/transcript_check.hpp) rebuilds
// the same columns from a committed input to check that product with
// Freivalds, so both use this one definition.
//   cols[(c*k + i)*k + j][b*OH*OW + oh*OW + ow] = x[b, c, oh*s - p + i, ow*s - p + j]
// (0 outside the image). x is [B, C, H, W], row-major.
#pragma once
#include <cstdint>

namespace murmur {

struct conv_geometry {
  int64_t batch = 0, channels = 0, height = 0, width = 0;
  int64_t kernel = 1, stride = 1, pad = 0;
  int64_t out_h = 0, out_w = 0;
  int64_t patch() const { return channels * kernel * kernel; }  // rows of cols
  int64_t positions() const { return batch * out_h * out_w; }  // columns of cols
};

// Writes patch() x positions() floats to cols.
void im2col(const conv_geometry& g, const float* x, float* cols);
// Overwrites dx ([B, C, H, W]) with the scatter-add of cols into the image.
void col2im(const conv_geometry& g, const float* cols, float* dx);

}  // namespace murmur
