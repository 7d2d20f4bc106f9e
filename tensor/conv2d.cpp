#include "tensor/conv2d.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "tensor/gemm.hpp"

namespace murmur {

namespace {

// Eight running sums: a single float accumulator would serialise the loop
// (the compiler may not reorder float additions).
float row_sum(const float* v, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += v[i + l];
  float s = 0.f;
  for (; i < n; ++i) s += v[i];
  for (float a : acc) s += a;
  return s;
}

}  // namespace

Conv2d::Conv2d(int64_t in_ch, int64_t out_ch, int64_t k, int64_t stride, int64_t pad)
    : in_(in_ch), out_(out_ch), k_(k), stride_(stride), pad_(pad) {
  if (in_ch <= 0 || out_ch <= 0 || k <= 0 || stride <= 0 || pad < 0)
    throw std::invalid_argument("conv2d: bad arguments " + name());
}

std::string Conv2d::name() const {
  return "conv2d(" + std::to_string(in_) + "->" + std::to_string(out_) + ",k" +
         std::to_string(k_) + ",s" + std::to_string(stride_) + ",p" + std::to_string(pad_) + ")";
}

Shape Conv2d::output_shape(const Shape& in) const {
  if (in.size() != 3 || in[0] != in_)
    throw std::invalid_argument(name() + " expects input [" + std::to_string(in_) +
                                ",H,W], got " + shape_str(in));
  const int64_t h = in[1] + 2 * pad_ - k_, w = in[2] + 2 * pad_ - k_;
  if (h < 0 || w < 0)
    throw std::invalid_argument(name() + ": kernel larger than padded input " + shape_str(in));
  return {out_, h / stride_ + 1, w / stride_ + 1};
}

int64_t Conv2d::forward_flops(const Shape& in) const {
  Shape o = output_shape(in);
  return o[0] * o[1] * o[2] * in_ * k_ * k_;
}

void Conv2d::bind(float* params, float* grads) {
  const int64_t nw = out_ * in_ * k_ * k_;
  w_ = params;
  b_ = params + nw;
  dw_ = grads;
  db_ = grads + nw;
}

void Conv2d::init(Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_ * k_ * k_));
  for (int64_t i = 0; i < out_ * in_ * k_ * k_; ++i)
    w_[i] = static_cast<float>(rng.uniform(-bound, bound));
  for (int64_t i = 0; i < out_; ++i) b_[i] = static_cast<float>(rng.uniform(-bound, bound));
}

// cols[(c*k + i)*k + j][b*OH*OW + oh*OW + ow] = x[b, c, oh*s - p + i, ow*s - p + j] (0 outside)
void Conv2d::im2col(const float* x) {
  const int64_t P = OH_ * OW_, N = B_ * P;
  float* cols = cols_.data();
  for (int64_t c = 0; c < in_; ++c)
    for (int64_t i = 0; i < k_; ++i)
      for (int64_t j = 0; j < k_; ++j) {
        float* row = cols + ((c * k_ + i) * k_ + j) * N;
        // Output columns whose input column is inside the image: [ow0, ow1).
        const int64_t off = j - pad_;  // input column = ow * stride + off
        int64_t ow0 = 0, ow1 = OW_;
        while (ow0 < OW_ && ow0 * stride_ + off < 0) ++ow0;
        while (ow1 > ow0 && (ow1 - 1) * stride_ + off >= W_) --ow1;
        for (int64_t b = 0; b < B_; ++b) {
          const float* xc = x + (b * in_ + c) * H_ * W_;
          for (int64_t oh = 0; oh < OH_; ++oh) {
            float* out = row + b * P + oh * OW_;
            const int64_t ih = oh * stride_ - pad_ + i;
            if (ih < 0 || ih >= H_) {
              for (int64_t ow = 0; ow < OW_; ++ow) out[ow] = 0.f;
              continue;
            }
            const float* xr = xc + ih * W_;
            for (int64_t ow = 0; ow < ow0; ++ow) out[ow] = 0.f;
            if (stride_ == 1) {
              for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] = xr[ow + off];
            } else {
              for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] = xr[ow * stride_ + off];
            }
            for (int64_t ow = ow1; ow < OW_; ++ow) out[ow] = 0.f;
          }
        }
      }
}

// The adjoint of im2col: scatter-add the column gradients back into dx.
void Conv2d::col2im(const float* cols, float* dx) const {
  const int64_t P = OH_ * OW_, N = B_ * P;
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(B_ * in_ * H_ * W_));
  for (int64_t c = 0; c < in_; ++c)
    for (int64_t i = 0; i < k_; ++i)
      for (int64_t j = 0; j < k_; ++j) {
        const float* row = cols + ((c * k_ + i) * k_ + j) * N;
        const int64_t off = j - pad_;  // input column = ow * stride + off
        int64_t ow0 = 0, ow1 = OW_;
        while (ow0 < OW_ && ow0 * stride_ + off < 0) ++ow0;
        while (ow1 > ow0 && (ow1 - 1) * stride_ + off >= W_) --ow1;
        for (int64_t b = 0; b < B_; ++b) {
          float* xc = dx + (b * in_ + c) * H_ * W_;
          for (int64_t oh = 0; oh < OH_; ++oh) {
            const int64_t ih = oh * stride_ - pad_ + i;
            if (ih < 0 || ih >= H_) continue;
            const float* g = row + b * P + oh * OW_;
            float* xr = xc + ih * W_;
            if (stride_ == 1) {
              for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow + off] += g[ow];
            } else {
              for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow * stride_ + off] += g[ow];
            }
          }
        }
      }
}

const Tensor& Conv2d::forward(const Tensor& x) {
  if (x.ndim() != 4 || x.dim(1) != in_)
    throw std::invalid_argument(name() + ": bad input " + shape_str(x.shape()));
  B_ = x.dim(0);
  H_ = x.dim(2);
  W_ = x.dim(3);
  const int64_t h = H_ + 2 * pad_ - k_, w = W_ + 2 * pad_ - k_;
  if (h < 0 || w < 0) throw std::invalid_argument(name() + ": input too small " + shape_str(x.shape()));
  OH_ = h / stride_ + 1;
  OW_ = w / stride_ + 1;
  const int64_t P = OH_ * OW_, N = B_ * P, K = in_ * k_ * k_;
  ensure_shape(cols_, {K, N});
  ensure_shape(ym_, {out_, N});
  ensure_shape(y_, {B_, out_, OH_, OW_});
  if (N == 0) return y_;
  im2col(x.data());
  gemm(false, false, out_, N, K, 1.f, w_, cols_.data(), 0.f, ym_.data());
  // [O, B*P] -> [B, O, P], adding the bias on the way.
  const float* src = ym_.data();
  float* y = y_.data();
  for (int64_t b = 0; b < B_; ++b)
    for (int64_t o = 0; o < out_; ++o) {
      const float* s = src + o * N + b * P;
      float* d = y + (b * out_ + o) * P;
      const float bias = b_[o];
      for (int64_t p = 0; p < P; ++p) d[p] = s[p] + bias;
    }
  return y_;
}

const Tensor& Conv2d::backward(const Tensor& dy) {
  const int64_t P = OH_ * OW_, N = B_ * P, K = in_ * k_ * k_;
  if (dy.numel() != B_ * out_ * P)
    throw std::invalid_argument(name() + ": bad gradient " + shape_str(dy.shape()));
  // dy [B, O, P] -> [O, B*P] (reusing ym_); then each row sums to db.
  float* g = ym_.data();
  const float* src = dy.data();
  for (int64_t b = 0; b < B_; ++b)
    for (int64_t o = 0; o < out_; ++o)
      std::memcpy(g + o * N + b * P, src + (b * out_ + o) * P, sizeof(float) * static_cast<size_t>(P));
  for (int64_t o = 0; o < out_; ++o) db_[o] = row_sum(g + o * N, N);
  if (N > 0) {
    gemm(false, true, out_, K, N, 1.f, g, cols_.data(), 0.f, dw_);  // dW = dY cols^T
  } else {
    for (int64_t i = 0; i < out_ * K; ++i) dw_[i] = 0.f;
  }
  if (!need_input_grad_) return dx_;
  ensure_shape(dx_, {B_, in_, H_, W_});
  if (N == 0) return dx_;
  // dcols = W^T dY overwrites the columns: the forward's are no longer needed.
  gemm(true, false, K, N, out_, 1.f, w_, g, 0.f, cols_.data());
  col2im(cols_.data(), dx_.data());
  return dx_;
}

}  // namespace murmur
