// counting_backend: a compute_backend that forwards every op to another and
// counts allocations, products (gemm and gemm_batched calls) and what
// crosses between host and backend (elements uploaded and downloaded), for
// tests that show what a round or a step allocates, computes and transfers.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "tensor/backend.hpp"

namespace murmur::testing {

class counting_backend : public compute_backend {
 public:
  explicit counting_backend(compute_backend& inner) : in_(inner) {}
  // Owning: for code that takes a backend by unique_ptr (a trainer).
  explicit counting_backend(std::unique_ptr<compute_backend> inner) : own_(std::move(inner)), in_(*own_) {}
  int64_t uploaded = 0, downloaded = 0;  // elements (floats, int32s, or squared_distances' doubles)
  int64_t allocs = 0;                    // alloc and alloc_int calls
  int64_t gemms = 0;                     // gemm and gemm_batched calls
  std::function<void(int64_t)> on_download;  // also told of each download's size, when set
  // When set, another_stream() returns a counting_backend too (counting on
  // its own), told here, so a test can see what a second stream does.
  std::function<void(counting_backend&)> on_another_stream;

  std::string name() const override { return "counting(" + in_.name() + ")"; }
  bool is_cpu() const override { return in_.is_cpu(); }
  std::unique_ptr<compute_backend> another_stream() const override {
    if (!on_another_stream) return in_.another_stream();
    auto s = std::make_unique<counting_backend>(in_.another_stream());
    on_another_stream(*s);
    return s;
  }
  float* alloc(int64_t n) override {
    ++allocs;
    return in_.alloc(n);
  }
  void free(float* p) override { in_.free(p); }
  int32_t* alloc_int(int64_t n) override {
    ++allocs;
    return in_.alloc_int(n);
  }
  void free_int(int32_t* p) override { in_.free_int(p); }
  void upload(float* d, const float* h, int64_t n) override { uploaded += n; in_.upload(d, h, n); }
  void upload_int(int32_t* d, const int32_t* h, int64_t n) override { uploaded += n; in_.upload_int(d, h, n); }
  void download(float* h, const float* s, int64_t n) override {
    downloaded += n;
    if (on_download) on_download(n);
    in_.download(h, s, n);
  }
  void download_int(int32_t* h, const int32_t* s, int64_t n) override { downloaded += n; in_.download_int(h, s, n); }
  void copy(float* d, const float* s, int64_t n) override { in_.copy(d, s, n); }
  void fill(float* d, float v, int64_t n) override { in_.fill(d, v, n); }
  void sync() override { in_.sync(); }
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float beta, float* c, int64_t ldc) override {
    ++gemms;
    in_.gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  void gemm_batched(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                    int64_t sa, const float* b, int64_t ldb, int64_t sb, float beta, float* c, int64_t ldc, int64_t sc,
                    int64_t count) override {
    ++gemms;
    in_.gemm_batched(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, count);
  }
  void add_row_bias(float* y, const float* b, int64_t r, int64_t c) override { in_.add_row_bias(y, b, r, c); }
  void sum_rows(float* o, const float* x, int64_t r, int64_t c, float beta) override { in_.sum_rows(o, x, r, c, beta); }
  void add_channel_bias(float* y, const float* b, int64_t n, int64_t c, int64_t s) override {
    in_.add_channel_bias(y, b, n, c, s);
  }
  void sum_channels(float* o, const float* x, int64_t n, int64_t c, int64_t s) override { in_.sum_channels(o, x, n, c, s); }
  void activation_forward(activation_kind f, const float* x, float* y, int64_t n) override {
    in_.activation_forward(f, x, y, n);
  }
  void activation_backward(activation_kind f, const float* y, const float* dy, float* dx, int64_t n) override {
    in_.activation_backward(f, y, dy, dx, n);
  }
  void add(const float* a, const float* b, float* o, int64_t n) override { in_.add(a, b, o, n); }
  void axpy(float alpha, const float* x, float* y, int64_t n) override { in_.axpy(alpha, x, y, n); }
  void im2col(const float* x, int64_t c, int64_t h, int64_t w, int64_t k, int64_t st, int64_t p, float* cols) override {
    in_.im2col(x, c, h, w, k, st, p, cols);
  }
  void col2im(const float* cols, int64_t c, int64_t h, int64_t w, int64_t k, int64_t st, int64_t p, float* dx) override {
    in_.col2im(cols, c, h, w, k, st, p, dx);
  }
  void maxpool_forward(const float* x, int64_t pl, int64_t h, int64_t w, int64_t k, float* y, int32_t* am) override {
    in_.maxpool_forward(x, pl, h, w, k, y, am);
  }
  void maxpool_backward(const float* dy, const int32_t* am, int64_t pl, int64_t h, int64_t w, int64_t k,
                        float* dx) override {
    in_.maxpool_backward(dy, am, pl, h, w, k, dx);
  }
  void gap_forward(const float* x, int64_t pl, int64_t s, float* y) override { in_.gap_forward(x, pl, s, y); }
  void gap_backward(const float* dy, int64_t pl, int64_t s, float* dx) override { in_.gap_backward(dy, pl, s, dx); }
  void groupnorm_forward(const float* x, int64_t b, int64_t c, int64_t s, int64_t g, const float* w, const float* bb,
                         float* y, float* xhat, float* rstd) override {
    in_.groupnorm_forward(x, b, c, s, g, w, bb, y, xhat, rstd);
  }
  void groupnorm_backward(const float* dy, const float* xhat, const float* rstd, const float* w, int64_t b, int64_t c,
                          int64_t s, int64_t g, float* dx, float* dw, float* db) override {
    in_.groupnorm_backward(dy, xhat, rstd, w, b, c, s, g, dx, dw, db);
  }
  void dropout_forward(const float* x, float* y, float* m, int64_t n, double p, uint64_t key) override {
    in_.dropout_forward(x, y, m, n, p, key);
  }
  void mul(const float* a, const float* b, float* o, int64_t n) override { in_.mul(a, b, o, n); }
  loss_result softmax_cross_entropy(const float* l, const int32_t* y, int64_t b, int64_t c, float* dl) override {
    return in_.softmax_cross_entropy(l, y, b, c, dl);
  }
  void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float mom, float wd, bool first) override {
    in_.sgd_step(p, g, buf, n, lr, mom, wd, first);
  }
  void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float b1, float b2, float eps,
                 float wd, uint64_t t) override {
    in_.adam_step(p, g, m, v, n, lr, b1, b2, eps, wd, t);
  }
  void gossip_mix(float* x, const float* self_hat, const float* const* hats, const float* w, int count, float gamma,
                  int64_t n) override {
    in_.gossip_mix(x, self_hat, hats, w, count, gamma, n);
  }
  int64_t gossip_select(const float* x, float* hat, int64_t n, float thr, float grid, int32_t* idx,
                        float* val) override {
    return in_.gossip_select(x, hat, n, thr, grid, idx, val);
  }
  void scatter(float* d, const int32_t* idx, const float* val, int64_t count) override { in_.scatter(d, idx, val, count); }
  // The distances come back to the host: counted as downloaded (doubles).
  void squared_distances(const float* self, const float* const* others, int count, int64_t n,
                         double* out) override {
    downloaded += count;
    in_.squared_distances(self, others, count, n, out);
  }
  void coordinatewise_mix(float* x, const float* self_hat, const float* const* hats, int count, int drop,
                          float gamma, int64_t n) override {
    in_.coordinatewise_mix(x, self_hat, hats, count, drop, gamma, n);
  }
  void clip_mix(float* x, const float* self_hat, const float* const* hats, const float* scales, int count,
                float gamma, int64_t n) override {
    in_.clip_mix(x, self_hat, hats, scales, count, gamma, n);
  }
  void freivalds_pieces(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                        const float* bias, const float* c, const float* r, double* out) override {
    in_.freivalds_pieces(ta, tb, m, n, k, a, b, bias, c, r, out);
  }

 private:
  std::unique_ptr<compute_backend> own_;
  compute_backend& in_;
};

}  // namespace murmur::testing
