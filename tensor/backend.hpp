// compute_backend: THE contract every place that runs murmur's math
// implements: the CPU (tensor/cpu_backend.hpp, the reference, built on the
// same code as the Layer classes) and CUDA (gpu/cuda_backend.hpp).
// backend_model (tensor/backend_model.hpp) runs a whole training step
// through it, so a model's parameters, gradients, activations and optimizer
// state live where the backend keeps its buffers.
//
// Rules every implementation keeps (the cross-backend test checks them):
//  - Pointers passed to ops are the backend's own buffers (alloc*), never
//    host memory, except where an argument says "host".
//  - Ops are asynchronous and ordered (one stream per backend instance);
//    download*, sync() and any op that returns a value wait for all
//    earlier ops.
//  - Same layouts as the Layer classes: row-major, batch first, NCHW.
//  - Products are float32 without TF32 or any reduced-precision mode, so
//    they satisfy tensor/freivalds.hpp's rounding model (any summation
//    order, FMA or not): a CPU verifier holds GPU work to the same
//    tolerance as CPU work.
//  - Random draws (dropout) use the same counter-based stream as
//    tensor/dropout.cpp: the mask is a pure function of (key, index), so a
//    GPU peer and a CPU peer drop the same units.
//  - No op allocates: buffers are sized by the caller, once, and reused.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace murmur {

enum class activation_kind : uint8_t { relu, sigmoid, tanh };

class compute_backend {
 public:
  virtual ~compute_backend() = default;
  // "cpu", or "cuda:0 (NVIDIA H100 80GB HBM3)".
  virtual std::string name() const = 0;
  virtual bool is_cpu() const = 0;
  // A second backend on the same device with its own stream (and staging),
  // for a second thread, e.g. gossip beside training. Buffers of either are
  // valid operands of the other's ops once the producer's work is done
  // (sync() on it).
  virtual std::unique_ptr<compute_backend> another_stream() const = 0;

  // ---- memory: zero-filled on alloc; free(nullptr) is a no-op.
  virtual float* alloc(int64_t n) = 0;
  virtual void free(float* p) = 0;
  virtual int32_t* alloc_int(int64_t n) = 0;
  virtual void free_int(int32_t* p) = 0;
  // host -> backend. The host buffer may be reused as soon as this returns
  // (a GPU backend stages through its own pinned buffer).
  virtual void upload(float* dst, const float* host, int64_t n) = 0;
  virtual void upload_int(int32_t* dst, const int32_t* host, int64_t n) = 0;
  // backend -> host; waits for every earlier op.
  virtual void download(float* host, const float* src, int64_t n) = 0;
  virtual void download_int(int32_t* host, const int32_t* src, int64_t n) = 0;
  virtual void copy(float* dst, const float* src, int64_t n) = 0;
  virtual void fill(float* dst, float value, int64_t n) = 0;
  virtual void sync() = 0;

  // ---- products: C = alpha op(A) op(B) + beta C, as tensor/gemm.hpp.
  virtual void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                    int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) = 0;

  // `count` independent products C_i = alpha op(A_i) op(B_i) + beta C_i with
  // X_i = X + i * stride_x (a per-sample convolution over a batch). The
  // default loops over gemm; a GPU backend runs one batched launch.
  virtual void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                            const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                            int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c, int64_t count) {
    for (int64_t i = 0; i < count; ++i)
      gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta, c + i * stride_c,
           ldc);
  }

  // ---- element-wise and reductions
  // y[r, j] += bias[j] for r < rows, j < cols (Linear's bias).
  virtual void add_row_bias(float* y, const float* bias, int64_t rows, int64_t cols) = 0;
  // out[j] = beta * out[j] + sum_r x[r, j] (Linear's bias gradient).
  virtual void sum_rows(float* out, const float* x, int64_t rows, int64_t cols, float beta) = 0;
  // y[b, c, s] += bias[c] (Conv2d's bias), x laid out [batch, channels, spatial].
  virtual void add_channel_bias(float* y, const float* bias, int64_t batch, int64_t channels, int64_t spatial) = 0;
  // out[c] = sum_{b, s} x[b, c, s] (Conv2d's bias gradient; overwrites).
  virtual void sum_channels(float* out, const float* x, int64_t batch, int64_t channels, int64_t spatial) = 0;
  // y = f(x); dx = dy * f'(x), written in terms of y = f(x) as activation.hpp.
  virtual void activation_forward(activation_kind f, const float* x, float* y, int64_t n) = 0;
  virtual void activation_backward(activation_kind f, const float* y, const float* dy, float* dx, int64_t n) = 0;
  // out = a + b (a residual block's join); out may alias a or b.
  virtual void add(const float* a, const float* b, float* out, int64_t n) = 0;
  // y += alpha * x
  virtual void axpy(float alpha, const float* x, float* y, int64_t n) = 0;

  // ---- convolution through im2col (tensor/im2col.hpp's layout, one sample):
  // x [C, H, W] -> cols [C*K*K, OH*OW]; col2im adds cols back into dx
  // (which the caller zeroes first). backend_model passes a whole batch as
  // c = B*C planes (cols [B][C*K*K][OH*OW]), so c may be large.
  virtual void im2col(const float* x, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                      float* cols) = 0;
  virtual void col2im(const float* cols, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                      float* dx) = 0;

  // ---- MaxPool2d(k), stride k, floor mode, first maximum wins (maxpool2d.hpp):
  // x [planes, H, W] -> y [planes, H/k, W/k]; argmax holds the flat index
  // within the plane of each output's input. backward zeroes dx, then
  // routes dy to the argmax positions.
  virtual void maxpool_forward(const float* x, int64_t planes, int64_t h, int64_t w, int64_t k, float* y,
                               int32_t* argmax) = 0;
  virtual void maxpool_backward(const float* dy, const int32_t* argmax, int64_t planes, int64_t h, int64_t w,
                                int64_t k, float* dx) = 0;

  // ---- global average pooling: x [planes, spatial] -> y [planes]; backward
  // spreads dy / spatial over the plane.
  virtual void gap_forward(const float* x, int64_t planes, int64_t spatial, float* y) = 0;
  virtual void gap_backward(const float* dy, int64_t planes, int64_t spatial, float* dx) = 0;

  // ---- GroupNorm (groupnorm.hpp): x [batch, channels, spatial], eps 1e-5;
  // forward keeps xhat (same size as x) and rstd [batch * groups] for
  // backward, which overwrites dw, db [channels] and writes dx (skipped
  // when dx is null).
  virtual void groupnorm_forward(const float* x, int64_t batch, int64_t channels, int64_t spatial, int64_t groups,
                                 const float* w, const float* b, float* y, float* xhat, float* rstd) = 0;
  virtual void groupnorm_backward(const float* dy, const float* xhat, const float* rstd, const float* w,
                                  int64_t batch, int64_t channels, int64_t spatial, int64_t groups, float* dx,
                                  float* dw, float* db) = 0;

  // ---- Dropout(p), training mode: mask[i] = 1/(1-p) when
  // u_i = (splitmix64(key + i) >> 11) * 2^-53 >= p, else 0; y = x * mask.
  // key as tensor/dropout.cpp derives it per forward. Backward: dx = dy * mask.
  virtual void dropout_forward(const float* x, float* y, float* mask, int64_t n, double p, uint64_t key) = 0;
  virtual void mul(const float* a, const float* b, float* out, int64_t n) = 0;

  // ---- softmax cross-entropy, mean over the batch (loss.hpp): logits
  // [batch, classes], labels [batch] in [0, classes). Writes dlogits (null:
  // skip) and returns {sum of per-sample losses, correct argmax count}
  // (waits, like download).
  struct loss_result {
    double loss_sum = 0;
    int64_t correct = 0;
  };
  virtual loss_result softmax_cross_entropy(const float* logits, const int32_t* labels, int64_t batch,
                                            int64_t classes, float* dlogits) = 0;

  // ---- optimizers (optimizer.hpp, torch.optim semantics), on n floats:
  // SGD: d = g + wd p; buf = first ? d : momentum buf + d; p -= lr buf
  // (momentum 0: p -= lr d, buf unused and may be null).
  virtual void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                        float weight_decay, bool first) = 0;
  // Adam with L2 (as torch.optim.Adam); t is the 1-based step count.
  virtual void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, uint64_t t) = 0;

  // ---- gossip (actors/gossip_state.hpp's threshold modes), on the backend:
  // x += gamma * sum_j weights[j] (hats[j] - self_hat); hats and weights are
  // host arrays of `count` entries (hats hold backend pointers).
  virtual void gossip_mix(float* x, const float* self_hat, const float* const* hats, const float* weights,
                          int count, float gamma, int64_t n) = 0;
  // Publish (gossip_state::compress, sparse path): every k with
  // |x[k] - hat[k]| >= threshold gets v = x[k], or with grid > 0
  // v = nearbyint(clamp(x[k] / grid, +-1e9)) * grid, skipped when v == hat[k];
  // then hat[k] = v and (k, v) is appended, in increasing k, to idx / val
  // (backend buffers of n entries). Returns how many (waits).
  virtual int64_t gossip_select(const float* x, float* hat, int64_t n, float threshold, float grid, int32_t* idx,
                                float* val) = 0;
  // dst[idx[i]] = val[i] for i < count (a received frame applied to x_hat_j).
  virtual void scatter(float* dst, const int32_t* idx, const float* val, int64_t count) = 0;

  // ---- clipping gossip rules (actors/robust_mix.hpp: centered_clip,
  // clipped_gossip), on the backend; the radius is chosen on the host from
  // the distances, so only `count` doubles cross per round.
  // HOST out[j] = sum_k (double(others[j][k]) - double(self[k]))^2 (waits).
  // The CPU sums in k order (robust_mix's order, the same bits); a GPU in a
  // fixed tree of double partials (deterministic, no atomics), within
  // n * 2^-52 relative of the CPU's sum.
  virtual void squared_distances(const float* self, const float* const* others, int count, int64_t n,
                                 double* out) = 0;
  // robust_mix's clipped mean, then the mix toward it, per coordinate, in
  // float and in this order (the same bits on every backend):
  //   v = self_hat[k]; v += scales[j] * (hats[j][k] - self_hat[k]) for j < count;
  //   x[k] += gamma * (v - self_hat[k]).
  // hats and scales are host arrays of `count` entries (hats hold backend pointers).
  virtual void clip_mix(float* x, const float* self_hat, const float* const* hats, const float* scales, int count,
                        float gamma, int64_t n) = 0;
  // The coordinate-wise rules (median, trimmed_mean), then the mix toward
  // their aggregate, per coordinate k, in float (the same bits on every
  // backend): the m = count + 1 values (self_hat[k], hats[0][k], ...) are
  // sorted by robust_mix's odd-even transposition network (m passes of
  // compare-exchanges lo = y < x ? y : x, hi = x < y ? y : x, as std::min and
  // std::max); agg = (0.f + sorted[drop] + ... + sorted[m - drop - 1]) *
  // (1.f / (m - 2 drop)); x[k] += gamma * (agg - self_hat[k]).
  // 0 <= 2 drop < m; hats is a host array of count backend pointers.
  virtual void coordinatewise_mix(float* x, const float* self_hat, const float* const* hats, int count, int drop,
                                  float gamma, int64_t n) = 0;

  // ---- Freivalds (tensor/freivalds.hpp), one round's pieces in double, on
  // the backend, for the claim C = op(A) op(B) (+ bias, n entries added to
  // every row, as Linear's y = x W^T + b; null: none); r is n entries of 0
  // or 1. Writes to the HOST array out (3m + 1 doubles): out[i] = (C r)_i,
  // out[m + i] = (op(A) (op(B) r))_i (+ bias . r), out[2m + i] = |a_i|
  // (2-norm of row i of op(A); with a bias sqrt(|a_i|^2 + 1), the bias
  // being a (k+1)-th term of each dot product), out[3m] = sum_j r_j |b_j|^2
  // (b_j column j of op(B); with a bias + bias_j^2). A NaN or infinity
  // anywhere in C, op(A), op(B) or the bias must make a piece NaN, so the
  // check fails as the host check (which scans for them) does: (C r)_i
  // summed over every j, r_j = 0 included (0 * NaN is NaN), and out[3m]
  // NaN (not infinite: an infinite tolerance passes anything) when any
  // |b_j|^2 or bias_j^2 is not finite. The verdict and tolerance are
  // computed on the host from these (freivalds_check_on_backend), so both
  // backends apply the same rule.
  virtual void freivalds_pieces(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                                const float* b, const float* bias, const float* c, const float* r,
                                double* out) = 0;
};

}  // namespace murmur
