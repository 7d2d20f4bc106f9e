#include "tensor/conv2d.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "tensor/channel_blocked.hpp"
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

conv_geometry Conv2d::geometry_at(int64_t batch, int64_t h, int64_t w) const {
  conv_geometry g;
  g.batch = batch;
  g.channels = in_;
  g.height = h;
  g.width = w;
  g.kernel = k_;
  g.stride = stride_;
  g.pad = pad_;
  g.out_h = (h + 2 * pad_ - k_) / stride_ + 1;
  g.out_w = (w + 2 * pad_ - k_) / stride_ + 1;
  return g;
}

conv_geometry Conv2d::geometry(const Shape& in, int64_t batch) const {
  (void)output_shape(in);  // throws on a shape this layer cannot take
  return geometry_at(batch, in[1], in[2]);
}

bool Conv2d::blocked_path_ok(const Shape& in) const {
  // No output_shape here: its Shape would allocate, and Sequential plans
  // before every forward.
  if (kernel_ != conv_kernel::onednn || in.size() != 3 || in[0] != in_) return false;
  if (in[1] + 2 * pad_ < k_ || in[2] + 2 * pad_ < k_) return false;
  return onednn_conv::supports(geometry_at(1, in[1], in[2]));
}

bool Conv2d::blocked_input_ok(const Shape& in) const { return channel_blockable(in) && blocked_path_ok(in); }

bool Conv2d::blocked_output_ok(const Shape& in) const {
  return out_ % channel_block == 0 && blocked_path_ok(in);
}

const Tensor& Conv2d::forward(const Tensor& x) {
  if (x.ndim() != 4 || x.dim(1) != in_)
    throw std::invalid_argument(name() + ": bad input " + shape_str(x.shape()));
  x_nchw_ready_ = y_nchw_ready_ = dy_nchw_ready_ = false;
  if (x.dim(2) + 2 * pad_ < k_ || x.dim(3) + 2 * pad_ < k_)
    throw std::invalid_argument(name() + ": input too small " + shape_str(x.shape()));
  g_ = geometry_at(x.dim(0), x.dim(2), x.dim(3));
  x_ = x.data();
  const int64_t B = g_.batch, P = g_.out_h * g_.out_w, N = B * P, K = g_.patch();
  ensure_shape(y_, {B, out_, g_.out_h, g_.out_w});
  last_onednn_ = kernel_ != conv_kernel::im2col_gemm && N > 0 && onednn_conv::supports(g_);
  if (last_onednn_) {
    dnn_.prepare(g_, out_, threads_, kernel_ == conv_kernel::onednn ? onednn_layout::blocked : onednn_layout::plain,
                 in_blocked_, out_blocked_);
    dnn_.forward(x_, w_, b_, y_.data());
    return y_;
  }
  if (in_blocked_ || out_blocked_)  // the plan (Sequential::plan_layouts) rules this out
    throw std::logic_error(name() + ": channel-blocked sides off the oneDNN path");
  ensure_shape(cols_, {K, N});
  ensure_shape(ym_, {out_, N});
  if (N == 0) return y_;
  im2col(g_, x.data(), cols_.data());
  gemm(false, false, out_, N, K, 1.f, w_, cols_.data(), 0.f, ym_.data());
  // [O, B*P] -> [B, O, P], adding the bias on the way.
  const float* src = ym_.data();
  float* y = y_.data();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < out_; ++o) {
      const float* s = src + o * N + b * P;
      float* d = y + (b * out_ + o) * P;
      const float bias = b_[o];
      for (int64_t p = 0; p < P; ++p) d[p] = s[p] + bias;
    }
  return y_;
}

const Tensor& Conv2d::backward(const Tensor& dy) {
  const int64_t B = g_.batch, P = g_.out_h * g_.out_w, N = B * P, K = g_.patch();
  if (dy.numel() != B * out_ * P)
    throw std::invalid_argument(name() + ": bad gradient " + shape_str(dy.shape()));
  dy_ = dy.data();
  dy_nchw_ready_ = false;
  if (last_onednn_) {
    if (need_input_grad_) ensure_shape(dx_, {B, in_, g_.height, g_.width});
    dnn_.backward(x_, dy_, w_, dw_, db_, need_input_grad_ ? dx_.data() : nullptr);
    return dx_;
  }
  // dy [B, O, P] -> [O, B*P] (reusing ym_); then each row sums to db.
  float* g = ym_.data();
  const float* src = dy.data();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < out_; ++o)
      std::memcpy(g + o * N + b * P, src + (b * out_ + o) * P, sizeof(float) * static_cast<size_t>(P));
  for (int64_t o = 0; o < out_; ++o) db_[o] = row_sum(g + o * N, N);
  if (N > 0) {
    gemm(false, true, out_, K, N, 1.f, g, cols_.data(), 0.f, dw_);  // dW = dY cols^T
  } else {
    for (int64_t i = 0; i < out_ * K; ++i) dw_[i] = 0.f;
  }
  if (!need_input_grad_) return dx_;
  ensure_shape(dx_, {B, in_, g_.height, g_.width});
  if (N == 0) return dx_;
  // dcols = W^T dY overwrites the columns: the forward's are no longer needed.
  gemm(true, false, K, N, out_, 1.f, w_, g, 0.f, cols_.data());
  col2im(g_, cols_.data(), dx_.data());
  return dx_;
}

namespace {

// The nchw copy of a blocked [B, C, H, W] side, made once per pass.
void to_nchw(const float* blocked, Tensor& copy, bool& ready, int64_t B, int64_t C, int64_t H, int64_t W) {
  if (ready) return;
  ensure_shape(copy, {B, C, H, W});
  channel_blocked_to_nchw(blocked, copy.data(), B, C, H * W);
  ready = true;
}

}  // namespace

const float* Conv2d::last_input() {
  if (!in_blocked_ || !x_) return x_;
  to_nchw(x_, x_nchw_, x_nchw_ready_, g_.batch, in_, g_.height, g_.width);
  return x_nchw_.data();
}

Tensor& Conv2d::last_output() {
  if (!out_blocked_) return y_;
  to_nchw(y_.data(), y_nchw_, y_nchw_ready_, g_.batch, out_, g_.out_h, g_.out_w);
  return y_nchw_;
}

const float* Conv2d::last_output_grad() {
  if (!out_blocked_ || !dy_) return dy_;
  to_nchw(dy_, dy_nchw_, dy_nchw_ready_, g_.batch, out_, g_.out_h, g_.out_w);
  return dy_nchw_.data();
}

void Conv2d::share_buffers(Layer& owner) {
  auto& o = dynamic_cast<Conv2d&>(owner);
  share_buffer(x_nchw_, o.x_nchw_);
  share_buffer(y_nchw_, o.y_nchw_);
  share_buffer(dy_nchw_, o.dy_nchw_);
  share_buffer(cols_, o.cols_);
  share_buffer(ym_, o.ym_);
  share_buffer(y_, o.y_);
  share_buffer(dx_, o.dx_);
}

}  // namespace murmur
