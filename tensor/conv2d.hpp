// Conv2d: as torch.nn.Conv2d (square kernel, zero padding, no dilation or
// groups). Input [B, C, H, W] -> [B, O, OH, OW], OH = (H + 2p - k) / s + 1.
// Parameters: weight [O, C, k, k] then bias [O].
// Done as one im2col over the whole batch (columns [C*k*k, B*OH*OW]) and one
// large gemm, which keeps OpenBLAS efficient at small per-sample sizes; the
// columns are kept for the weight gradient, so nothing is recomputed, and
// backward then reuses their buffer for dL/dcolumns: one backward per forward.
// By default the three products run on oneDNN (tensor/onednn_conv.hpp,
// faster here: docs/cpu_kernels.md) whenever it expresses the geometry; the
// im2col + gemm path stays for the rest and on request (set_kernel). On
// oneDNN, input and output may travel channel-blocked between this layer
// and its neighbours (Layer::set_layouts, tensor/channel_blocked.hpp).
#pragma once
#include "tensor/im2col.hpp"
#include "tensor/layer.hpp"
#include "tensor/onednn_conv.hpp"

namespace murmur {

enum class conv_kernel { onednn, onednn_plain, im2col_gemm };

class Conv2d : public Layer {
 public:
  Conv2d(int64_t in_ch, int64_t out_ch, int64_t k, int64_t stride = 1, int64_t pad = 0);
  std::string name() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t param_count() const override { return out_ * in_ * k_ * k_ + out_; }
  void bind(float* params, float* grads) override;
  void init(Rng& rng) override;  // U(-1/sqrt(C*k*k), +) for weight and bias
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  int64_t forward_flops(const Shape& in) const override;

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  int64_t kernel() const { return k_; }
  int64_t stride() const { return stride_; }
  int64_t pad() const { return pad_; }
  // The geometry of a per-sample input shape [C, H, W] at batch `batch`.
  conv_geometry geometry(const Shape& in, int64_t batch) const;
  // What the last forward/backward saw and produced (for step transcripts),
  // as Linear's: weight [O, C*k*k], input [B, C, H, W], output and output
  // gradient [B, O, OH, OW], always nchw; valid until the next forward, the
  // gradients until the next backward. A side that travelled channel-blocked
  // is copied to nchw on the first call after the pass that made it (and
  // then last_output's writes stay in that copy).
  const float* weight() const { return w_; }
  const float* bias() const { return b_; }
  float* weight_grad() { return dw_; }
  float* bias_grad() { return db_; }
  const float* last_input();
  Tensor& last_output();
  const float* last_output_grad();
  const conv_geometry& last_geometry() const { return g_; }
  // Which kernels run the products, and oneDNN's OpenMP team size (1 by
  // default: a thread count is the host's choice, tensor/cpu_threads.hpp).
  void set_kernel(conv_kernel k) { kernel_ = k; }
  void set_threads(int n) { threads_ = n < 1 ? 1 : n; }
  std::string onednn_kernels() const { return dnn_.kernels(); }
  void share_buffers(Layer& owner) override;  // im2col's columns too; oneDNN's state stays own
  // Channel-blocked sides on the oneDNN blocked path only (conv_kernel::onednn).
  bool blocked_input_ok(const Shape& in) const override;
  bool blocked_output_ok(const Shape& in) const override;
  void set_layouts(bool in_blocked, bool out_blocked) override {
    in_blocked_ = in_blocked;
    out_blocked_ = out_blocked;
  }

 private:
  int64_t in_, out_, k_, stride_, pad_;
  float *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  conv_geometry g_;
  // The input and output gradient are buffers of the neighbouring layers
  // (or the caller's batch), untouched until the next step: pointers, no copies.
  const float* x_ = nullptr;
  const float* dy_ = nullptr;
  Tensor cols_;  // [C*k*k, B*OH*OW], reused across calls
  Tensor ym_;    // gemm result / permuted dy, [O, B*OH*OW]
  Tensor y_, dx_;
  conv_kernel kernel_ = conv_kernel::onednn;
  int threads_ = 1;
  bool last_onednn_ = false;  // which path the last forward took
  bool in_blocked_ = false, out_blocked_ = false;
  // nchw copies of blocked sides for the accessors, and whether they hold
  // the last pass's values.
  Tensor x_nchw_, y_nchw_, dy_nchw_;
  bool x_nchw_ready_ = false, y_nchw_ready_ = false, dy_nchw_ready_ = false;
  bool blocked_path_ok(const Shape& in) const;
  // The geometry at an input size whose padded extent covers the kernel.
  conv_geometry geometry_at(int64_t batch, int64_t h, int64_t w) const;
  onednn_conv dnn_;
};

}  // namespace murmur
