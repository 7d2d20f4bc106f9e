// Convolution columns and max pooling on the device, in tensor/im2col.hpp's
// and tensor/maxpool2d.hpp's layouts. Every output element is computed by
// one thread in the CPU's order, so results match the CPU bit for bit.
#include "gpu/cuda_kernels.hpp"
#include "gpu/cuda_launch.cuh"

namespace murmur::gpu_kernels {

namespace {

// cols[(c*k + i)*k + j][oh*OW + ow] = x[c, oh*s - p + i, ow*s - p + j], 0 outside.
__global__ void im2col_kernel(const float* x, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                              int64_t OH, int64_t OW, int64_t total, float* cols) {
  const int64_t P = OH * OW;
  for (int64_t e = global_index(); e < total; e += global_stride()) {
    const int64_t row = e / P, pos = e % P;
    const int64_t c = row / (k * k), i = (row / k) % k, j = row % k;
    const int64_t ih = (pos / OW) * stride - pad + i, iw = (pos % OW) * stride - pad + j;
    cols[e] = (ih >= 0 && ih < h && iw >= 0 && iw < w) ? x[(c * h + ih) * w + iw] : 0.f;
  }
}

// One thread per input pixel gathers its columns in (i, j) order, the order
// in which the CPU's col2im adds them, onto what dx already holds.
__global__ void col2im_kernel(const float* cols, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                              int64_t OH, int64_t OW, int64_t total, float* dx) {
  const int64_t P = OH * OW;
  for (int64_t e = global_index(); e < total; e += global_stride()) {
    const int64_t c = e / (h * w), ih = (e / w) % h, iw = e % w;
    float acc = dx[e];
    for (int64_t i = 0; i < k; ++i) {
      const int64_t ty = ih + pad - i;  // = oh * stride when this row of the window covers ih
      if (ty < 0 || ty % stride != 0 || ty / stride >= OH) continue;
      const int64_t oh = ty / stride;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t tx = iw + pad - j;
        if (tx < 0 || tx % stride != 0 || tx / stride >= OW) continue;
        acc += cols[((c * k + i) * k + j) * P + oh * OW + tx / stride];
      }
    }
    dx[e] = acc;
  }
}

// Window elements in the CPU's order (row by row, (0,0) first); a later
// element wins when greater or NaN.
__global__ void maxpool_forward_kernel(const float* x, int64_t h, int64_t w, int64_t k, int64_t OH, int64_t OW,
                                       int64_t total, float* y, int32_t* argmax) {
  const int64_t per_plane = OH * OW;
  for (int64_t e = global_index(); e < total; e += global_stride()) {
    const int64_t pl = e / per_plane, oh = (e % per_plane) / OW, ow = e % OW;
    const float* xp = x + pl * h * w;
    const int64_t top = oh * k * w + ow * k;
    float best = xp[top];
    int64_t at = top;
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = (i == 0 ? 1 : 0); j < k; ++j) {
        const int64_t q = top + i * w + j;
        const float v = xp[q];
        if (v > best || v != v) {
          best = v;
          at = q;
        }
      }
    y[e] = best;
    argmax[e] = static_cast<int32_t>(at);
  }
}

// Windows do not overlap (stride k): each input pixel takes dy of its
// window when it is that window's argmax, else 0 (0 + dy, as the CPU's +=).
__global__ void maxpool_backward_kernel(const float* dy, const int32_t* argmax, int64_t h, int64_t w, int64_t k,
                                        int64_t OH, int64_t OW, int64_t total, float* dx) {
  const int64_t hw = h * w;
  for (int64_t e = global_index(); e < total; e += global_stride()) {
    const int64_t pl = e / hw, q = e % hw, oh = (q / w) / k, ow = (q % w) / k;
    float v = 0.f;
    if (oh < OH && ow < OW) {
      const int64_t o = (pl * OH + oh) * OW + ow;
      if (argmax[o] == q) v = 0.f + dy[o];
    }
    dx[e] = v;
  }
}

}  // namespace

void im2col(cudaStream_t s, const float* x, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride,
            int64_t pad, int64_t oh, int64_t ow, float* cols) {
  const int64_t total = c * k * k * oh * ow;
  im2col_kernel<<<blocks_for(total), kThreads, 0, s>>>(x, h, w, k, stride, pad, oh, ow, total, cols);
}

void col2im(cudaStream_t s, const float* cols, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride,
            int64_t pad, int64_t oh, int64_t ow, float* dx) {
  const int64_t total = c * h * w;
  col2im_kernel<<<blocks_for(total), kThreads, 0, s>>>(cols, h, w, k, stride, pad, oh, ow, total, dx);
}

void maxpool_forward(cudaStream_t s, const float* x, int64_t planes, int64_t h, int64_t w, int64_t k, float* y,
                     int32_t* argmax) {
  const int64_t OH = h / k, OW = w / k, total = planes * OH * OW;
  maxpool_forward_kernel<<<blocks_for(total), kThreads, 0, s>>>(x, h, w, k, OH, OW, total, y, argmax);
}

void maxpool_backward(cudaStream_t s, const float* dy, const int32_t* argmax, int64_t planes, int64_t h,
                      int64_t w, int64_t k, float* dx) {
  const int64_t total = planes * h * w;
  maxpool_backward_kernel<<<blocks_for(total), kThreads, 0, s>>>(dy, argmax, h, w, k, h / k, w / k, total, dx);
}

}  // namespace murmur::gpu_kernels
