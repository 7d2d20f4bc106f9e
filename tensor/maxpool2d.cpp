#include "tensor/maxpool2d.hpp"

#include <cstring>
#include <stdexcept>

#include "tensor/channel_blocked.hpp"

namespace murmur {

void maxpool2d_forward(const float* xs, int64_t planes, int64_t H, int64_t W, int64_t k, float* y, int32_t* am) {
  const int64_t OH = H / k, OW = W / k;
  // Window elements are visited row by row, each pass over a whole output
  // row, with branch-free selects: the same choice as PyTorch's kernel
  // (v > max || isnan(v): the first maximum wins ties, NaN propagates).
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = xs + pl * H * W;
    for (int64_t oh = 0; oh < OH; ++oh, y += OW, am += OW) {
      const int32_t top = static_cast<int32_t>(oh * k * W);
      for (int64_t ow = 0; ow < OW; ++ow) {
        y[ow] = xp[top + ow * k];
        am[ow] = top + static_cast<int32_t>(ow * k);
      }
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = (i == 0 ? 1 : 0); j < k; ++j) {
          const int32_t base = static_cast<int32_t>((oh * k + i) * W + j);
          const float* r = xp + base;
          for (int64_t ow = 0; ow < OW; ++ow) {
            const float v = r[ow * k];
            const bool take = (v > y[ow]) | (v != v);
            y[ow] = take ? v : y[ow];
            am[ow] = take ? base + static_cast<int32_t>(ow * k) : am[ow];
          }
        }
    }
  }
}

void maxpool2d_backward(const float* g, const int32_t* am, int64_t planes, int64_t H, int64_t W, int64_t k,
                        float* dx) {
  const int64_t HW = H * W, per_plane = (H / k) * (W / k);
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(planes * HW));
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* dp = dx + pl * HW;
    for (int64_t q = 0; q < per_plane; ++q) dp[*am++] += *g++;
  }
}

MaxPool2d::MaxPool2d(int64_t k) : k_(k) {
  if (k <= 0) throw std::invalid_argument("maxpool2d: kernel must be positive");
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  if (in.size() != 3 || in[1] < k_ || in[2] < k_)
    throw std::invalid_argument(name() + " expects input [C,H,W] with H,W >= " +
                                std::to_string(k_) + ", got " + shape_str(in));
  return {in[0], in[1] / k_, in[2] / k_};
}

bool MaxPool2d::blocked_input_ok(const Shape& in) const {
  return onednn_ && channel_blockable(in) && onednn_pool::supports(in[1], in[2], k_);
}

const Tensor& MaxPool2d::forward(const Tensor& x) {
  if (x.ndim() != 4 || x.dim(2) < k_ || x.dim(3) < k_)
    throw std::invalid_argument(name() + ": bad input " + shape_str(x.shape()));
  if (x_shape_ != x.shape()) x_shape_ = x.shape();
  const int64_t planes = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = H / k_, OW = W / k_;
  ensure_shape(y_, {x.dim(0), x.dim(1), OH, OW});
  last_onednn_ = onednn_ && planes > 0 && onednn_pool::supports(H, W, k_);
  if (last_onednn_) {
    dnn_.prepare(x.dim(0), x.dim(1), H, W, k_, threads_, in_blocked_, out_blocked_);
    dnn_.forward(x.data(), y_.data());
    return y_;
  }
  if (in_blocked_ || out_blocked_)  // the plan (Sequential::plan_layouts) rules this out
    throw std::logic_error(name() + ": channel-blocked sides off the oneDNN path");
  argmax_.resize(static_cast<size_t>(planes * OH * OW));  // keeps capacity
  maxpool2d_forward(x.data(), planes, H, W, k_, y_.data(), argmax_.data());
  return y_;
}

const Tensor& MaxPool2d::backward(const Tensor& dy) {
  if (dy.numel() != y_.numel())
    throw std::invalid_argument(name() + ": bad gradient " + shape_str(dy.shape()));
  if (!need_input_grad_) return dx_;
  ensure_shape(dx_, x_shape_);
  if (last_onednn_) {
    dnn_.backward(dy.data(), dx_.data());
    return dx_;
  }
  maxpool2d_backward(dy.data(), argmax_.data(), x_shape_[0] * x_shape_[1], x_shape_[2], x_shape_[3], k_,
                     dx_.data());
  return dx_;
}

void MaxPool2d::share_buffers(Layer& owner) {
  auto& o = dynamic_cast<MaxPool2d&>(owner);
  share_buffer(y_, o.y_);
  share_buffer(dx_, o.dx_);
}

}  // namespace murmur
