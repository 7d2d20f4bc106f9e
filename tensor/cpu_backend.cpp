#include "tensor/cpu_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/double_dot.hpp"
#include "tensor/dropout.hpp"
#include "tensor/gemm.hpp"
#include "tensor/groupnorm.hpp"
#include "tensor/im2col.hpp"
#include "tensor/loss.hpp"
#include "tensor/maxpool2d.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/squared_distance.hpp"

namespace murmur {

namespace {

conv_geometry one_sample(int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad) {
  conv_geometry g;
  g.batch = 1;
  g.channels = c;
  g.height = h;
  g.width = w;
  g.kernel = k;
  g.stride = stride;
  g.pad = pad;
  g.out_h = (h + 2 * pad - k) / stride + 1;
  g.out_w = (w + 2 * pad - k) / stride + 1;
  return g;
}

class cpu_backend final : public compute_backend {
 public:
  std::string name() const override { return "cpu"; }
  bool is_cpu() const override { return true; }
  std::unique_ptr<compute_backend> another_stream() const override { return make_cpu_backend(); }

  float* alloc(int64_t n) override { return n > 0 ? new float[static_cast<size_t>(n)]() : nullptr; }
  void free(float* p) override { delete[] p; }
  int32_t* alloc_int(int64_t n) override { return n > 0 ? new int32_t[static_cast<size_t>(n)]() : nullptr; }
  void free_int(int32_t* p) override { delete[] p; }
  void upload(float* dst, const float* host, int64_t n) override { copy_bytes(dst, host, n); }
  void upload_int(int32_t* dst, const int32_t* host, int64_t n) override { copy_bytes(dst, host, n); }
  void download(float* host, const float* src, int64_t n) override { copy_bytes(host, src, n); }
  void download_int(int32_t* host, const int32_t* src, int64_t n) override { copy_bytes(host, src, n); }
  void copy(float* dst, const float* src, int64_t n) override { copy_bytes(dst, src, n); }
  void fill(float* dst, float value, int64_t n) override { std::fill(dst, dst + n, value); }
  void sync() override {}

  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float beta, float* c, int64_t ldc) override {
    if (m == 0 || n == 0) return;
    murmur::gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }

  void add_row_bias(float* y, const float* bias, int64_t rows, int64_t cols) override {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) y[r * cols + j] += bias[j];
  }
  void sum_rows(float* out, const float* x, int64_t rows, int64_t cols, float beta) override {
    // Linear's order: each column summed row by row from beta * out.
    for (int64_t j = 0; j < cols; ++j) out[j] = beta == 0.f ? 0.f : beta * out[j];
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) out[j] += x[r * cols + j];
  }
  void add_channel_bias(float* y, const float* bias, int64_t batch, int64_t channels, int64_t spatial) override {
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t c = 0; c < channels; ++c) {
        float* d = y + (b * channels + c) * spatial;
        const float v = bias[c];
        for (int64_t s = 0; s < spatial; ++s) d[s] += v;
      }
  }
  void sum_channels(float* out, const float* x, int64_t batch, int64_t channels, int64_t spatial) override {
    // Conv2d's row_sum over the channel's (b, s) sequence: eight running
    // sums over whole blocks of 8, the tail in order, then the eight.
    const int64_t n = batch * spatial, full = n - n % 8;
    for (int64_t c = 0; c < channels; ++c) {
      float acc[8] = {};
      float tail = 0.f;
      int64_t i = 0;
      for (int64_t b = 0; b < batch; ++b) {
        const float* v = x + (b * channels + c) * spatial;
        for (int64_t s = 0; s < spatial; ++s, ++i) {
          if (i < full)
            acc[i & 7] += v[s];
          else
            tail += v[s];
        }
      }
      for (float a : acc) tail += a;
      out[c] = tail;
    }
  }

  // The loops of tensor/activation.cpp.
  void activation_forward(activation_kind f, const float* x, float* y, int64_t n) override {
    switch (f) {
      case activation_kind::relu:
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
        return;
      case activation_kind::sigmoid:
        for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
        return;
      case activation_kind::tanh:
        for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
        return;
    }
  }
  void activation_backward(activation_kind f, const float* y, const float* dy, float* dx, int64_t n) override {
    switch (f) {
      case activation_kind::relu:
        for (int64_t i = 0; i < n; ++i) {
          const float g = dy[i];
          dx[i] = y[i] > 0.f ? g : 0.f;
        }
        return;
      case activation_kind::sigmoid:
        for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.f - y[i]);
        return;
      case activation_kind::tanh:
        for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
        return;
    }
  }
  void add(const float* a, const float* b, float* out, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
  }
  void axpy(float alpha, const float* x, float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
  }

  void im2col(const float* x, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
              float* cols) override {
    murmur::im2col(one_sample(c, h, w, k, stride, pad), x, cols);
  }
  void col2im(const float* cols, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
              float* dx) override {
    // murmur::col2im overwrites dx, which equals adding into the zeroed dx
    // the contract asks the caller for.
    murmur::col2im(one_sample(c, h, w, k, stride, pad), cols, dx);
  }

  void maxpool_forward(const float* x, int64_t planes, int64_t h, int64_t w, int64_t k, float* y,
                       int32_t* argmax) override {
    maxpool2d_forward(x, planes, h, w, k, y, argmax);
  }
  void maxpool_backward(const float* dy, const int32_t* argmax, int64_t planes, int64_t h, int64_t w, int64_t k,
                        float* dx) override {
    maxpool2d_backward(dy, argmax, planes, h, w, k, dx);
  }

  // The loops of tensor/global_avg_pool.cpp.
  void gap_forward(const float* x, int64_t planes, int64_t spatial, float* y) override {
    for (int64_t p = 0; p < planes; ++p) {
      double s = 0;
      for (int64_t i = 0; i < spatial; ++i) s += x[p * spatial + i];
      y[p] = static_cast<float>(s / static_cast<double>(spatial));
    }
  }
  void gap_backward(const float* dy, int64_t planes, int64_t spatial, float* dx) override {
    const float inv = 1.f / static_cast<float>(spatial);
    for (int64_t p = 0; p < planes; ++p) {
      const float v = dy[p] * inv;
      for (int64_t i = 0; i < spatial; ++i) dx[p * spatial + i] = v;
    }
  }

  void groupnorm_forward(const float* x, int64_t batch, int64_t channels, int64_t spatial, int64_t groups,
                         const float* w, const float* b, float* y, float* xhat, float* rstd) override {
    murmur::groupnorm_forward(x, batch, channels, spatial, groups, w, b, y, xhat, rstd);
  }
  void groupnorm_backward(const float* dy, const float* xhat, const float* rstd, const float* w, int64_t batch,
                          int64_t channels, int64_t spatial, int64_t groups, float* dx, float* dw,
                          float* db) override {
    murmur::groupnorm_backward(dy, xhat, rstd, w, batch, channels, spatial, groups, dx, dw, db);
  }

  void dropout_forward(const float* x, float* y, float* mask, int64_t n, double p, uint64_t key) override {
    dropout_mask_apply(x, y, mask, n, p, key);
  }
  void mul(const float* a, const float* b, float* out, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
  }

  loss_result softmax_cross_entropy(const float* logits, const int32_t* labels, int64_t batch, int64_t classes,
                                    float* dlogits) override {
    loss_result r;
    if (batch <= 0) return r;
    r.loss_sum = softmax_cross_entropy_rows(logits, labels, batch, classes, dlogits, &r.correct);
    return r;
  }

  void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay,
                bool first) override {
    sgd_update(p, g, buf, n, lr, momentum, weight_decay, first);
  }
  void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                 float eps, float weight_decay, uint64_t t) override {
    adam_update(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
  }

  void gossip_mix(float* x, const float* self_hat, const float* const* hats, const float* weights, int count,
                  float gamma, int64_t n) override {
    for (int64_t k = 0; k < n; ++k) {
      float acc = 0.f;
      for (int j = 0; j < count; ++j) acc += weights[j] * (hats[j][k] - self_hat[k]);
      x[k] += gamma * acc;
    }
  }
  int64_t gossip_select(const float* x, float* hat, int64_t n, float threshold, float grid, int32_t* idx,
                        float* val) override {
    int64_t count = 0;
    const float limit = 1e9f;
    for (int64_t k = 0; k < n; ++k) {
      if (!(std::fabs(x[k] - hat[k]) >= threshold)) continue;
      float v = x[k];
      if (grid > 0.f) {
        v = std::nearbyint(std::clamp(x[k] / grid, -limit, limit)) * grid;
        if (v == hat[k]) continue;
      }
      hat[k] = v;
      idx[count] = static_cast<int32_t>(k);
      val[count] = v;
      ++count;
    }
    return count;
  }
  void scatter(float* dst, const int32_t* idx, const float* val, int64_t count) override {
    for (int64_t i = 0; i < count; ++i) dst[idx[i]] = val[i];
  }
  // robust_mix::centered_clip's loops, in its order, so a backend gossip
  // round gives the host path's distances and parameters bit for bit.
  void squared_distances(const float* self, const float* const* others, int count, int64_t n,
                         double* out) override {
    // The host gossip's order (tensor/squared_distance.hpp), so both paths clip alike.
    if (count > 0) ::murmur::squared_distances(self, others, static_cast<size_t>(count), static_cast<size_t>(n), out);
  }
  // robust_mix::coordinatewise's network and sums, one coordinate at a
  // time (the compare-exchanges of one coordinate do not depend on others).
  void coordinatewise_mix(float* x, const float* self_hat, const float* const* hats, int count, int drop,
                          float gamma, int64_t n) override {
    const int m = count + 1;
    if (count < 0 || drop < 0 || 2 * drop >= m)
      throw std::invalid_argument("cpu: coordinatewise_mix: drop " + std::to_string(drop) + " of " +
                                  std::to_string(m) + " members leaves none");
    column_.resize(std::max(column_.size(), static_cast<size_t>(m)));  // grows only
    float* v = column_.data();
    const float inv = 1.f / static_cast<float>(m - 2 * drop);
    for (int64_t k = 0; k < n; ++k) {
      v[0] = self_hat[k];
      for (int j = 0; j < count; ++j) v[j + 1] = hats[j][k];
      for (int pass = 0; pass < m; ++pass)
        for (int i = pass % 2; i + 1 < m; i += 2) {
          const float a = v[i], b = v[i + 1];
          v[i] = std::min(a, b);
          v[i + 1] = std::max(a, b);
        }
      float sum = 0.f;
      for (int i = drop; i < m - drop; ++i) sum += v[i];
      x[k] += gamma * (sum * inv - self_hat[k]);
    }
  }
  void clip_mix(float* x, const float* self_hat, const float* const* hats, const float* scales, int count,
                float gamma, int64_t n) override {
    for (int64_t k = 0; k < n; ++k) {
      float v = self_hat[k];
      for (int j = 0; j < count; ++j) v += scales[j] * (hats[j][k] - self_hat[k]);
      x[k] += gamma * (v - self_hat[k]);
    }
  }

  // As freivalds_checker, in its order of additions: B r, then A (B r)
  // (+ bias . r), and C r, each in double; the bias is a (k+1)-th term.
  void freivalds_pieces(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                        const float* bias, const float* c, const float* r, double* out) override {
    br_.resize(static_cast<size_t>(k));   // grows only
    b_sq_.resize(static_cast<size_t>(n));
    if (!tb) {
      for (int64_t p = 0; p < k; ++p) br_[p] = dot_in_double(b + p * n, r, n);
    } else {
      for (int64_t p = 0; p < k; ++p) br_[p] = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (r[j] == 0.f) continue;
        const float* row = b + j * k;
        for (int64_t p = 0; p < k; ++p) br_[p] += row[p];
      }
    }
    const double bias_r = bias ? dot_in_double(bias, r, n) : 0.0;
    const double bias_row = bias ? 1.0 : 0.0;  // the bias's term in |a_i|^2
    double* cr = out;
    double* abr = out + m;
    double* a_norm = out + 2 * m;
    if (!ta) {
      for (int64_t i = 0; i < m; ++i) {
        abr[i] = dot_in_double(a + i * k, br_.data(), k) + bias_r;
        a_norm[i] = bias_row + sum_sq_in_double(a + i * k, k);
      }
    } else {
      for (int64_t i = 0; i < m; ++i) {
        abr[i] = bias_r;
        a_norm[i] = bias_row;
      }
      for (int64_t p = 0; p < k; ++p) {
        const float* row = a + p * m;
        const double y = br_[p];
        for (int64_t i = 0; i < m; ++i) {
          abr[i] += row[i] * y;
          a_norm[i] += static_cast<double>(row[i]) * row[i];
        }
      }
    }
    for (int64_t i = 0; i < m; ++i) a_norm[i] = std::sqrt(a_norm[i]);
    for (int64_t i = 0; i < m; ++i) cr[i] = dot_in_double(c + i * n, r, n);
    for (int64_t j = 0; j < n; ++j) b_sq_[j] = bias ? static_cast<double>(bias[j]) * bias[j] : 0.0;
    if (!tb) {
      for (int64_t p = 0; p < k; ++p) {
        const float* row = b + p * n;
        for (int64_t j = 0; j < n; ++j) b_sq_[j] += static_cast<double>(row[j]) * row[j];
      }
    } else {
      for (int64_t j = 0; j < n; ++j) b_sq_[j] += sum_sq_in_double(b + j * k, k);
    }
    double b_sq_r = 0;
    for (int64_t j = 0; j < n; ++j)
      if (!std::isfinite(b_sq_[j])) b_sq_r = std::nan("");  // a NaN/Inf column or bias fails (backend.hpp)
      else if (r[j] != 0.f) b_sq_r += b_sq_[j];
    out[3 * m] = b_sq_r;
  }

 private:
  template <class T>
  static void copy_bytes(T* dst, const T* src, int64_t n) {
    if (n > 0) std::memcpy(dst, src, sizeof(T) * static_cast<size_t>(n));
  }
  // Freivalds scratch (B r, column norms of op(B)): grows, never shrinks.
  std::vector<double> br_, b_sq_;
  std::vector<float> column_;  // coordinatewise_mix's one sorted coordinate
};

}  // namespace

std::unique_ptr<compute_backend> make_cpu_backend() { return std::make_unique<cpu_backend>(); }

}  // namespace murmur
