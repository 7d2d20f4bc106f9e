// The CUDA backend (gpu/cuda_backend.hpp): compute_backend on one device.
// This file holds the host side: device binding, memory and transfers,
// cuBLAS products, argument checks and error reporting; the kernels are in
// gpu/cuda_kernels_*.cu (gpu/cuda_kernels.hpp).
//
// Ordering: every op is enqueued on the backend's one stream (created
// non-blocking, so peers sharing a GPU do not serialize on the legacy
// default stream); the cuBLAS handle is bound to it. Ops that return data
// (download*, softmax_cross_entropy, gossip_select, squared_distances,
// freivalds_pieces, sync) wait on the stream, so an error of an earlier
// asynchronous op surfaces there, and the message says so.
//
// Errors throw std::runtime_error "cuda:N: <op>: <CUDA or cuBLAS error>";
// a failed allocation says "out of memory on cuda:N allocating X MiB";
// arguments the contract forbids throw std::invalid_argument.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "gpu/cuda_backend.hpp"
#include "gpu/cuda_cublas_library.hpp"
#include "gpu/cuda_kernels.hpp"

namespace murmur {

namespace {

namespace k = gpu_kernels;

// Transfers go through pinned staging in pieces of at most this size, two
// buffers per direction: the host copy of one piece overlaps the DMA of the
// other, and a large upload (a whole model) needs no large pinned buffer.
constexpr size_t kStagingPiece = size_t{16} << 20;
constexpr size_t kStagingMin = size_t{1} << 20;
// Device scratch (reduction partials, results read back) grows in MiB steps,
// the first time an op of a larger size runs, never afterwards.
constexpr size_t kScratchStep = size_t{1} << 20;
// Where a small result sits in the scratch, ahead of the kernels' own part.
constexpr size_t kResultBytes = 64;

std::string mib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

class cuda_backend final : public compute_backend {
 public:
  cuda_backend(int device, const std::string& device_name);
  ~cuda_backend() override { release(); }
  cuda_backend(const cuda_backend&) = delete;
  cuda_backend& operator=(const cuda_backend&) = delete;

  std::string name() const override { return name_; }
  bool is_cpu() const override { return false; }
  std::unique_ptr<compute_backend> another_stream() const override { return make_cuda_backend(device_); }

  float* alloc(int64_t n) override { return static_cast<float*>(alloc_bytes(n, sizeof(float), "alloc")); }
  void free(float* p) override { free_bytes(p, "free"); }
  int32_t* alloc_int(int64_t n) override {
    return static_cast<int32_t*>(alloc_bytes(n, sizeof(int32_t), "alloc_int"));
  }
  void free_int(int32_t* p) override { free_bytes(p, "free_int"); }

  void upload(float* dst, const float* host, int64_t n) override {
    upload_bytes(dst, host, count_bytes(n, sizeof(float), "upload"), "upload");
  }
  void upload_int(int32_t* dst, const int32_t* host, int64_t n) override {
    upload_bytes(dst, host, count_bytes(n, sizeof(int32_t), "upload_int"), "upload_int");
  }
  void download(float* host, const float* src, int64_t n) override {
    download_bytes(host, src, count_bytes(n, sizeof(float), "download"), "download");
  }
  void download_int(int32_t* host, const int32_t* src, int64_t n) override {
    download_bytes(host, src, count_bytes(n, sizeof(int32_t), "download_int"), "download_int");
  }
  void copy(float* dst, const float* src, int64_t n) override {
    const size_t bytes = count_bytes(n, sizeof(float), "copy");
    if (bytes == 0) return;
    use_device("copy");
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copy");
  }
  void fill(float* dst, float value, int64_t n) override {
    if (!begin(n, "fill")) return;
    k::fill(stream_, dst, value, n);
    launched("fill");
  }
  void sync() override {
    use_device("sync");
    check(cudaStreamSynchronize(stream_), "sync", true);
  }

  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t kk, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float beta, float* c, int64_t ldc) override;

  void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t kk, float alpha, const float* a,
                    int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                    int64_t ldc, int64_t stride_c, int64_t count) override;

  void add_row_bias(float* y, const float* bias, int64_t rows, int64_t cols) override {
    if (!begin(product(rows, cols, "add_row_bias"), "add_row_bias")) return;
    k::add_row_bias(stream_, y, bias, rows, cols);
    launched("add_row_bias");
  }
  void sum_rows(float* out, const float* x, int64_t rows, int64_t cols, float beta) override {
    nonnegative(rows, "sum_rows");
    if (!begin(cols, "sum_rows")) return;
    k::sum_rows(stream_, out, x, rows, cols, beta);
    launched("sum_rows");
  }
  void add_channel_bias(float* y, const float* bias, int64_t batch, int64_t channels, int64_t spatial) override {
    if (!begin(product(product(batch, channels, "add_channel_bias"), spatial, "add_channel_bias"),
               "add_channel_bias"))
      return;
    k::add_channel_bias(stream_, y, bias, batch, channels, spatial);
    launched("add_channel_bias");
  }
  void sum_channels(float* out, const float* x, int64_t batch, int64_t channels, int64_t spatial) override {
    product(product(batch, channels, "sum_channels"), spatial, "sum_channels");
    if (!begin(channels, "sum_channels")) return;
    if (batch * spatial == 0) {  // an empty sum: zeros, as the CPU's loop
      k::fill(stream_, out, 0.f, channels);
      launched("sum_channels");
      return;
    }
    void* part = scratch(k::sum_channels_scratch_bytes(batch, channels, spatial), "sum_channels");
    k::sum_channels(stream_, out, x, batch, channels, spatial, part);
    launched("sum_channels");
  }
  void activation_forward(activation_kind f, const float* x, float* y, int64_t n) override {
    known(f, "activation_forward");
    if (!begin(n, "activation_forward")) return;
    k::activation_forward(stream_, f, x, y, n);
    launched("activation_forward");
  }
  void activation_backward(activation_kind f, const float* y, const float* dy, float* dx, int64_t n) override {
    known(f, "activation_backward");
    if (!begin(n, "activation_backward")) return;
    k::activation_backward(stream_, f, y, dy, dx, n);
    launched("activation_backward");
  }
  void add(const float* a, const float* b, float* out, int64_t n) override {
    if (!begin(n, "add")) return;
    k::add(stream_, a, b, out, n);
    launched("add");
  }
  void axpy(float alpha, const float* x, float* y, int64_t n) override {
    if (!begin(n, "axpy")) return;
    k::axpy(stream_, alpha, x, y, n);
    launched("axpy");
  }

  void im2col(const float* x, int64_t c, int64_t h, int64_t w, int64_t kernel, int64_t stride, int64_t pad,
              float* cols) override {
    int64_t oh, ow;
    conv_output(c, h, w, kernel, stride, pad, &oh, &ow, "im2col");
    if (!begin(c * oh * ow, "im2col")) return;
    k::im2col(stream_, x, c, h, w, kernel, stride, pad, oh, ow, cols);
    launched("im2col");
  }
  void col2im(const float* cols, int64_t c, int64_t h, int64_t w, int64_t kernel, int64_t stride, int64_t pad,
              float* dx) override {
    int64_t oh, ow;
    conv_output(c, h, w, kernel, stride, pad, &oh, &ow, "col2im");
    if (!begin(c * h * w, "col2im")) return;
    k::col2im(stream_, cols, c, h, w, kernel, stride, pad, oh, ow, dx);
    launched("col2im");
  }

  void maxpool_forward(const float* x, int64_t planes, int64_t h, int64_t w, int64_t kernel, float* y,
                       int32_t* argmax) override {
    pool_shape(planes, h, w, kernel, "maxpool_forward");
    if (!begin(planes, "maxpool_forward")) return;
    k::maxpool_forward(stream_, x, planes, h, w, kernel, y, argmax);
    launched("maxpool_forward");
  }
  void maxpool_backward(const float* dy, const int32_t* argmax, int64_t planes, int64_t h, int64_t w,
                        int64_t kernel, float* dx) override {
    pool_shape(planes, h, w, kernel, "maxpool_backward");
    if (!begin(planes, "maxpool_backward")) return;
    k::maxpool_backward(stream_, dy, argmax, planes, h, w, kernel, dx);
    launched("maxpool_backward");
  }

  void gap_forward(const float* x, int64_t planes, int64_t spatial, float* y) override {
    positive(spatial, "gap_forward", "spatial size");
    if (!begin(product(planes, spatial, "gap_forward"), "gap_forward")) return;
    k::gap_forward(stream_, x, planes, spatial, y);
    launched("gap_forward");
  }
  void gap_backward(const float* dy, int64_t planes, int64_t spatial, float* dx) override {
    positive(spatial, "gap_backward", "spatial size");
    if (!begin(product(planes, spatial, "gap_backward"), "gap_backward")) return;
    k::gap_backward(stream_, dy, planes, spatial, dx);
    launched("gap_backward");
  }

  void groupnorm_forward(const float* x, int64_t batch, int64_t channels, int64_t spatial, int64_t groups,
                         const float* w, const float* b, float* y, float* xhat, float* rstd) override {
    norm_shape(batch, channels, spatial, groups, "groupnorm_forward");
    if (!begin(batch, "groupnorm_forward")) return;
    k::groupnorm_forward(stream_, x, batch, channels, spatial, groups, w, b, y, xhat, rstd);
    launched("groupnorm_forward");
  }
  void groupnorm_backward(const float* dy, const float* xhat, const float* rstd, const float* w, int64_t batch,
                          int64_t channels, int64_t spatial, int64_t groups, float* dx, float* dw,
                          float* db) override {
    norm_shape(batch, channels, spatial, groups, "groupnorm_backward");
    use_device("groupnorm_backward");
    if (batch == 0) {  // empty sums: dw = db = 0, no dx to write
      k::fill(stream_, dw, 0.f, channels);
      k::fill(stream_, db, 0.f, channels);
      launched("groupnorm_backward");
      return;
    }
    void* part = scratch(k::groupnorm_backward_scratch_bytes(batch, channels), "groupnorm_backward");
    k::groupnorm_backward(stream_, dy, xhat, rstd, w, batch, channels, spatial, groups, dx, dw, db, part);
    launched("groupnorm_backward");
  }

  void dropout_forward(const float* x, float* y, float* mask, int64_t n, double p, uint64_t key) override {
    if (!(p >= 0.0 && p < 1.0))
      throw std::invalid_argument(name_ + ": dropout_forward: probability " + std::to_string(p) +
                                  " is not in [0, 1)");
    if (!begin(n, "dropout_forward")) return;
    // As tensor/dropout.cpp: the scale rounded once from double.
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    k::dropout_forward(stream_, x, y, mask, n, p, scale, key);
    launched("dropout_forward");
  }
  void mul(const float* a, const float* b, float* out, int64_t n) override {
    if (!begin(n, "mul")) return;
    k::mul(stream_, a, b, out, n);
    launched("mul");
  }

  loss_result softmax_cross_entropy(const float* logits, const int32_t* labels, int64_t batch, int64_t classes,
                                    float* dlogits) override;

  void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay,
                bool first) override {
    if (momentum != 0.f && !buf && n > 0)
      throw std::invalid_argument(name_ + ": sgd_step: momentum " + std::to_string(momentum) +
                                  " needs a momentum buffer");
    if (!begin(n, "sgd_step")) return;
    k::sgd_step(stream_, p, g, buf, n, lr, momentum, weight_decay, first);
    launched("sgd_step");
  }
  void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                 float eps, float weight_decay, uint64_t t) override {
    if (t == 0) throw std::invalid_argument(name_ + ": adam_step: the step count t is 1-based, got 0");
    if (!begin(n, "adam_step")) return;
    // tensor/optimizer.cpp's Adam::step: bias corrections in double, the
    // step size and sqrt(bc2) rounded to float once.
    const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
    const float step_size = static_cast<float>(lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    k::adam_step(stream_, p, g, m, v, n, step_size, bc2_sqrt, beta1, beta2, 1.f - beta1, 1.f - beta2, eps,
                 weight_decay);
    launched("adam_step");
  }

  void gossip_mix(float* x, const float* self_hat, const float* const* hats, const float* weights, int count,
                  float gamma, int64_t n) override {
    if (count < 0) throw std::invalid_argument(name_ + ": gossip_mix: negative neighbour count");
    if (!begin(n, "gossip_mix")) return;
    // More than kMixBatch neighbours: one pass per batch (rounded per batch).
    for (int j0 = 0; j0 < count; j0 += k::kMixBatch) {
      const int c = std::min(k::kMixBatch, count - j0);
      k::gossip_mix(stream_, x, self_hat, hats + j0, weights + j0, c, gamma, n);
    }
    launched("gossip_mix");
  }
  int64_t gossip_select(const float* x, float* hat, int64_t n, float threshold, float grid, int32_t* idx,
                        float* val) override;
  void scatter(float* dst, const int32_t* idx, const float* val, int64_t count) override {
    if (!begin(count, "scatter")) return;
    k::scatter(stream_, dst, idx, val, count);
    launched("scatter");
  }

  void squared_distances(const float* self, const float* const* others, int count, int64_t n,
                         double* out) override;
  void coordinatewise_mix(float* x, const float* self_hat, const float* const* hats, int count, int drop,
                          float gamma, int64_t n) override;
  void clip_mix(float* x, const float* self_hat, const float* const* hats, const float* scales, int count,
                float gamma, int64_t n) override {
    if (count < 0) throw std::invalid_argument(name_ + ": clip_mix: negative neighbour count");
    if (count == 0 || !begin(n, "clip_mix")) return;
    void* part = count > k::kMixBatch ? scratch(k::clip_mix_scratch_bytes(count, n), "clip_mix") : nullptr;
    k::clip_mix(stream_, x, self_hat, hats, scales, count, gamma, n, part);
    launched("clip_mix");
  }

  void freivalds_pieces(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t kk, const float* a,
                        const float* b, const float* bias, const float* c, const float* r, double* out) override;

 private:
  [[noreturn]] void fail(const char* op, const std::string& what, bool at_sync) const {
    throw std::runtime_error(name_prefix_ + op + ": " + what +
                             (at_sync ? " (an asynchronous error: it may come from an earlier op)" : ""));
  }
  void check(cudaError_t rc, const char* op, bool at_sync = false) const {
    if (rc == cudaSuccess) return;
    cudaGetLastError();  // clear a non-sticky error for later ops
    fail(op, std::string(cudaGetErrorName(rc)) + ": " + cudaGetErrorString(rc), at_sync || kernel_fault(rc));
  }
  // Errors a kernel raises while it runs: reported by whatever call comes
  // next, and they leave the context unusable.
  static bool kernel_fault(cudaError_t rc) {
    return rc == cudaErrorIllegalAddress || rc == cudaErrorLaunchFailure || rc == cudaErrorMisalignedAddress ||
           rc == cudaErrorIllegalInstruction || rc == cudaErrorInvalidPc || rc == cudaErrorHardwareStackError ||
           rc == cudaErrorAssert || rc == cudaErrorLaunchTimeout;
  }
  void check_blas(cublasStatus_t st, const char* op) const {
    if (st == CUBLAS_STATUS_SUCCESS) return;
    fail(op, std::string(cublas_.status_name(st)) + " (" + cublas_.status_string(st) + ")", false);
  }
  void launched(const char* op) const { check(cudaGetLastError(), op); }
  void use_device(const char* op) const { check(cudaSetDevice(device_), op); }

  void nonnegative(int64_t n, const char* op) const {
    if (n < 0) throw std::invalid_argument(name_prefix_ + op + ": negative size " + std::to_string(n));
  }
  void positive(int64_t n, const char* op, const char* what) const {
    if (n <= 0)
      throw std::invalid_argument(name_prefix_ + op + ": " + what + " must be positive, got " + std::to_string(n));
  }
  // a * b for sizes, refusing negatives and int64 overflow.
  int64_t product(int64_t a, int64_t b, const char* op) const {
    nonnegative(a, op);
    nonnegative(b, op);
    if (a != 0 && b > std::numeric_limits<int64_t>::max() / a)
      throw std::invalid_argument(name_prefix_ + op + ": size overflows int64");
    return a * b;
  }
  size_t count_bytes(int64_t n, size_t elem, const char* op) const {
    nonnegative(n, op);
    return static_cast<size_t>(n) * elem;
  }
  // Checks n and binds the device; false when there is nothing to do.
  bool begin(int64_t n, const char* op) const {
    nonnegative(n, op);
    if (n == 0) return false;
    use_device(op);
    return true;
  }
  void known(activation_kind f, const char* op) const {
    if (f != activation_kind::relu && f != activation_kind::sigmoid && f != activation_kind::tanh)
      throw std::invalid_argument(name_prefix_ + op + ": unknown activation " + std::to_string(static_cast<int>(f)));
  }
  void conv_output(int64_t c, int64_t h, int64_t w, int64_t kernel, int64_t stride, int64_t pad, int64_t* oh,
                   int64_t* ow, const char* op) const {
    nonnegative(c, op);
    positive(kernel, op, "kernel");
    positive(stride, op, "stride");
    nonnegative(pad, op);
    if (h + 2 * pad < kernel || w + 2 * pad < kernel)
      throw std::invalid_argument(name_prefix_ + op + ": a " + std::to_string(h) + "x" + std::to_string(w) +
                                  " image with padding " + std::to_string(pad) + " is smaller than the kernel " +
                                  std::to_string(kernel));
    *oh = (h + 2 * pad - kernel) / stride + 1;
    *ow = (w + 2 * pad - kernel) / stride + 1;
    product(product(product(c * kernel, kernel, op), *oh, op), *ow, op);
  }
  void pool_shape(int64_t planes, int64_t h, int64_t w, int64_t kernel, const char* op) const {
    positive(kernel, op, "kernel");
    if (h < kernel || w < kernel)
      throw std::invalid_argument(name_prefix_ + op + ": a " + std::to_string(h) + "x" + std::to_string(w) +
                                  " plane is smaller than the kernel " + std::to_string(kernel));
    if (h * w > std::numeric_limits<int32_t>::max())
      throw std::invalid_argument(name_prefix_ + op + ": a plane of " + std::to_string(h * w) +
                                  " elements does not fit argmax's int32");
    product(planes, h * w, op);
  }
  void norm_shape(int64_t batch, int64_t channels, int64_t spatial, int64_t groups, const char* op) const {
    positive(channels, op, "channel count");
    positive(groups, op, "group count");
    if (channels % groups != 0)
      throw std::invalid_argument(name_prefix_ + op + ": " + std::to_string(channels) +
                                  " channels do not split into " + std::to_string(groups) + " groups");
    product(product(batch, channels, op), spatial, op);
  }

  bool product_shape(int64_t m, int64_t n, int64_t kk, int64_t lda, int64_t ldb, int64_t ldc, int64_t count,
                     const char* op) const;
  void* alloc_bytes(int64_t n, size_t elem, const char* op);
  void free_bytes(void* p, const char* op);
  [[noreturn]] void out_of_memory(size_t bytes) const;
  void* scratch(int64_t bytes, const char* op);
  struct staging {
    void* host = nullptr;
    size_t capacity = 0;
    cudaEvent_t done = nullptr;  // recorded after the last copy that used `host`
  };
  void reserve(staging& s, size_t bytes, const char* op);
  void upload_bytes(void* dst, const void* host, size_t bytes, const char* op);
  void download_bytes(void* host, const void* src, size_t bytes, const char* op);
  void release() noexcept;

  int device_;
  cublas_library cublas_;  // declared before the handle, so it outlives what release() destroys
  std::string name_, name_prefix_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  staging up_[2], down_[2];
  int next_up_ = 0;
  void* scratch_ = nullptr;
  std::vector<const float*> member_ptrs_;  // coordinatewise_mix's pointer table, on the host
  size_t scratch_capacity_ = 0;
};

cuda_backend::cuda_backend(int device, const std::string& device_name)
    : device_(device),
      name_("cuda:" + std::to_string(device) + " (" + device_name + ")"),
      name_prefix_("cuda:" + std::to_string(device) + ": ") {
  try {
    use_device("create");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "create stream");
    check_blas(cublas_.create(&blas_), "create cuBLAS handle");
    check_blas(cublas_.set_stream(blas_, stream_), "create cuBLAS handle");
    // FP32 products without TF32 (CUBLAS_DEFAULT_MATH, stated even though it
    // is cuBLAS's default): TF32 rounds operands to 11 bits, errors ~2^-11
    // relative, far beyond the float32 rounding model (u = 2^-24) that
    // tensor/freivalds.hpp's tolerance is derived from, so a CPU verifier
    // would quarantine honest GPU work.
    check_blas(cublas_.set_math_mode(blas_, CUBLAS_DEFAULT_MATH), "create cuBLAS handle");
    for (staging* s : {&up_[0], &up_[1], &down_[0], &down_[1]})
      check(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming), "create event");
  } catch (...) {
    release();
    throw;
  }
}

void cuda_backend::release() noexcept {
  if (cudaSetDevice(device_) != cudaSuccess) return;  // nothing was created on it
  if (stream_) cudaStreamSynchronize(stream_);
  for (staging* s : {&up_[0], &up_[1], &down_[0], &down_[1]}) {
    if (s->host) cudaFreeHost(s->host);
    if (s->done) cudaEventDestroy(s->done);
    *s = staging{};
  }
  if (scratch_) cudaFree(scratch_);
  scratch_ = nullptr;
  if (blas_) cublas_.destroy(blas_);
  blas_ = nullptr;
  if (stream_) cudaStreamDestroy(stream_);
  stream_ = nullptr;
  cudaGetLastError();
}

void cuda_backend::out_of_memory(size_t bytes) const {
  cudaGetLastError();
  size_t free_b = 0, total_b = 0;
  std::string detail;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
    detail = " (" + mib(free_b) + " free of " + mib(total_b) + ")";
  cudaGetLastError();
  throw std::runtime_error("out of memory on cuda:" + std::to_string(device_) + " allocating " + mib(bytes) +
                           detail);
}

void* cuda_backend::alloc_bytes(int64_t n, size_t elem, const char* op) {
  nonnegative(n, op);
  use_device(op);
  // At least one element: every alloc returns a distinct, freeable pointer.
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * elem;
  void* p = nullptr;
  const cudaError_t rc = cudaMalloc(&p, bytes);
  if (rc == cudaErrorMemoryAllocation) out_of_memory(bytes);
  check(rc, op);
  const cudaError_t z = cudaMemsetAsync(p, 0, bytes, stream_);
  if (z != cudaSuccess) {
    cudaFree(p);
    check(z, op);
  }
  return p;
}

void cuda_backend::free_bytes(void* p, const char* op) {
  if (!p) return;
  use_device(op);
  // Earlier ops on the stream may still read or write p.
  check(cudaStreamSynchronize(stream_), op, true);
  check(cudaFree(p), op);
}

void* cuda_backend::scratch(int64_t bytes_wanted, const char* op) {
  const size_t bytes = static_cast<size_t>(bytes_wanted) + kResultBytes;
  if (bytes <= scratch_capacity_) return static_cast<char*>(scratch_) + kResultBytes;
  check(cudaStreamSynchronize(stream_), op, true);  // earlier ops may use the old one
  if (scratch_) check(cudaFree(scratch_), op);
  scratch_ = nullptr;
  scratch_capacity_ = 0;
  const size_t cap = (bytes + kScratchStep - 1) / kScratchStep * kScratchStep;
  const cudaError_t rc = cudaMalloc(&scratch_, cap);
  if (rc == cudaErrorMemoryAllocation) out_of_memory(cap);
  check(rc, op);
  scratch_capacity_ = cap;
  return static_cast<char*>(scratch_) + kResultBytes;
}

// Grows a staging buffer whose last copy has completed.
void cuda_backend::reserve(staging& s, size_t bytes, const char* op) {
  if (bytes <= s.capacity) return;
  const size_t cap = std::min(kStagingPiece, std::max(bytes, kStagingMin));
  if (s.host) check(cudaFreeHost(s.host), op);
  s.host = nullptr;
  s.capacity = 0;
  const cudaError_t rc = cudaMallocHost(&s.host, cap);
  if (rc != cudaSuccess) {
    cudaGetLastError();
    fail(op, "cannot allocate " + mib(cap) + " of pinned host memory: " + cudaGetErrorString(rc), false);
  }
  s.capacity = cap;
}

void cuda_backend::upload_bytes(void* dst, const void* host, size_t bytes, const char* op) {
  if (bytes == 0) return;
  use_device(op);
  for (size_t off = 0; off < bytes; off += kStagingPiece) {
    const size_t len = std::min(kStagingPiece, bytes - off);
    staging& s = up_[next_up_];
    next_up_ ^= 1;
    // The copy that last read this buffer (two pieces ago) must be done
    // before it is overwritten; the other buffer's copy may still run.
    check(cudaEventSynchronize(s.done), op, true);
    reserve(s, len, op);
    std::memcpy(s.host, static_cast<const char*>(host) + off, len);
    check(cudaMemcpyAsync(static_cast<char*>(dst) + off, s.host, len, cudaMemcpyHostToDevice, stream_), op);
    check(cudaEventRecord(s.done, stream_), op);
  }
}

void cuda_backend::download_bytes(void* host, const void* src, size_t bytes, const char* op) {
  use_device(op);
  if (bytes == 0) {
    check(cudaStreamSynchronize(stream_), op, true);  // still waits, as the contract says
    return;
  }
  const size_t pieces = (bytes + kStagingPiece - 1) / kStagingPiece;
  auto issue = [&](size_t i) {
    staging& s = down_[i % 2];
    const size_t off = i * kStagingPiece, len = std::min(kStagingPiece, bytes - off);
    reserve(s, len, op);
    check(cudaMemcpyAsync(s.host, static_cast<const char*>(src) + off, len, cudaMemcpyDeviceToHost, stream_), op);
    check(cudaEventRecord(s.done, stream_), op);
  };
  issue(0);
  for (size_t i = 0; i < pieces; ++i) {
    if (i + 1 < pieces) issue(i + 1);  // in flight while piece i is copied out
    staging& s = down_[i % 2];
    check(cudaEventSynchronize(s.done), op, true);
    const size_t off = i * kStagingPiece, len = std::min(kStagingPiece, bytes - off);
    std::memcpy(static_cast<char*>(host) + off, s.host, len);
  }
}

// Checks a product's sizes for cuBLAS's 32-bit int API (the one CUDA 11.8
// has too); false when C is empty.
bool cuda_backend::product_shape(int64_t m, int64_t n, int64_t kk, int64_t lda, int64_t ldb, int64_t ldc,
                                 int64_t count, const char* op) const {
  for (int64_t v : {m, n, kk, lda, ldb, ldc, count}) nonnegative(v, op);
  if (m == 0 || n == 0 || count == 0) return false;
  const int64_t int_max = std::numeric_limits<int>::max();
  for (int64_t v : {m, n, kk, lda, ldb, ldc, count})
    if (v > int_max)
      throw std::invalid_argument(name_prefix_ + op + ": size, count or leading dimension " + std::to_string(v) +
                                  " exceeds cuBLAS's 32-bit int");
  use_device(op);
  return true;
}

void cuda_backend::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t kk, float alpha, const float* a,
                        int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (!product_shape(m, n, kk, lda, ldb, ldc, 1, "gemm")) return;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the
  // stored buffers read column-major are B^T and A^T, so pass B first with
  // m and n swapped, each keeping its own transpose flag.
  const auto M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(kk);
  if (K == 0) {
    // C = beta C (BLAS leaves alpha op(A) op(B) out); cuBLAS would reject
    // the leading dimensions of empty operands.
    if (beta == 0.f) {
      check(cudaMemset2DAsync(c, static_cast<size_t>(ldc) * sizeof(float), 0, static_cast<size_t>(n) * sizeof(float),
                              static_cast<size_t>(m), stream_),
            "gemm");
    } else if (beta != 1.f) {
      const float zero = 0.f;
      check_blas(cublas_.sgeam(blas_, CUBLAS_OP_N, CUBLAS_OP_N, N, M, &beta, c, static_cast<int>(ldc), &zero, c,
                             static_cast<int>(ldc), c, static_cast<int>(ldc)),
                 "gemm");
    }
    return;
  }
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  // CUBLAS_COMPUTE_32F (not _FAST_TF32 or _FAST_16F): float inputs, float
  // accumulation, see the constructor on why never TF32.
  check_blas(cublas_.gemm_ex(blas_, op_b, op_a, N, M, K, &alpha, b, CUDA_R_32F, static_cast<int>(ldb), a, CUDA_R_32F,
                          static_cast<int>(lda), &beta, c, CUDA_R_32F, static_cast<int>(ldc), CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT),
             "gemm");
}

void cuda_backend::gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t kk, float alpha,
                                const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                                int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
                                int64_t count) {
  if (!product_shape(m, n, kk, lda, ldb, ldc, count, "gemm_batched")) return;
  if (kk == 0) {  // C_i = beta C_i: the single product's path, per i
    for (int64_t i = 0; i < count; ++i)
      gemm(trans_a, trans_b, m, n, 0, alpha, a, lda, b, ldb, beta, c + i * stride_c, ldc);
    return;
  }
  // As gemm, operands swapped for column-major; one launch for all count.
  check_blas(cublas_.gemm_strided_batched_ex(blas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                        static_cast<int>(n), static_cast<int>(m), static_cast<int>(kk), &alpha, b,
                                        CUDA_R_32F, static_cast<int>(ldb), stride_b, a, CUDA_R_32F,
                                        static_cast<int>(lda), stride_a, &beta, c, CUDA_R_32F, static_cast<int>(ldc),
                                        stride_c, static_cast<int>(count), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             "gemm_batched");
}

compute_backend::loss_result cuda_backend::softmax_cross_entropy(const float* logits, const int32_t* labels,
                                                                 int64_t batch, int64_t classes, float* dlogits) {
  nonnegative(batch, "softmax_cross_entropy");
  if (batch == 0) return {};  // as the CPU backend: nothing summed
  positive(classes, "softmax_cross_entropy", "class count");
  product(batch, classes, "softmax_cross_entropy");
  use_device("softmax_cross_entropy");
  void* part = scratch(k::softmax_cross_entropy_scratch_bytes(batch), "softmax_cross_entropy");
  auto* totals = reinterpret_cast<k::loss_totals*>(static_cast<char*>(part) - kResultBytes);
  k::softmax_cross_entropy(stream_, logits, labels, batch, classes, dlogits, part, totals);
  launched("softmax_cross_entropy");
  k::loss_totals t{};
  download_bytes(&t, totals, sizeof t, "softmax_cross_entropy");
  if (t.bad_labels > 0)
    throw std::invalid_argument(name_prefix_ + "softmax_cross_entropy: " + std::to_string(t.bad_labels) +
                                " labels not in [0, " + std::to_string(classes) + ")");
  return {t.loss_sum, static_cast<int64_t>(t.correct)};
}

int64_t cuda_backend::gossip_select(const float* x, float* hat, int64_t n, float threshold, float grid, int32_t* idx,
                                    float* val) {
  nonnegative(n, "gossip_select");
  if (n - 1 > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument(name_prefix_ + "gossip_select: " + std::to_string(n) +
                                " coordinates do not fit int32 indices");
  if (n == 0) return 0;
  use_device("gossip_select");
  void* part = scratch(k::gossip_select_scratch_bytes(n), "gossip_select");
  auto* count = reinterpret_cast<int64_t*>(static_cast<char*>(part) - kResultBytes);
  k::gossip_select(stream_, x, hat, n, threshold, grid, idx, val, part, count);
  launched("gossip_select");
  int64_t selected = 0;
  download_bytes(&selected, count, sizeof selected, "gossip_select");
  return selected;
}

void cuda_backend::coordinatewise_mix(float* x, const float* self_hat, const float* const* hats, int count,
                                      int drop, float gamma, int64_t n) {
  const int m = count + 1;
  if (count < 0 || drop < 0 || 2 * drop >= m)
    throw std::invalid_argument(name_prefix_ + "coordinatewise_mix: drop " + std::to_string(drop) + " of " +
                                std::to_string(m) + " members leaves none");
  if (!begin(n, "coordinatewise_mix")) return;
  void* part = scratch(k::coordinatewise_mix_scratch_bytes(m, n), "coordinatewise_mix");
  // The members' pointers go to the device with the launch's other inputs
  // (through the staging buffer: member_ptrs_ may change once this returns).
  member_ptrs_.assign(1, self_hat);
  member_ptrs_.insert(member_ptrs_.end(), hats, hats + count);
  upload_bytes(k::coordinatewise_mix_pointers(part), member_ptrs_.data(), member_ptrs_.size() * sizeof(float*),
               "coordinatewise_mix");
  k::coordinatewise_mix(stream_, x, m, drop, gamma, n, part);
  launched("coordinatewise_mix");
}

void cuda_backend::squared_distances(const float* self, const float* const* others, int count, int64_t n,
                                     double* out) {
  if (count < 0) throw std::invalid_argument(name_ + ": squared_distances: negative neighbour count");
  nonnegative(n, "squared_distances");
  if (count == 0) return;
  if (n == 0) {
    std::fill(out, out + count, 0.0);
    return;
  }
  use_device("squared_distances");
  // The count results sit after the partials.
  const int64_t work = k::squared_distances_scratch_bytes(count, n);
  const int64_t results = count * static_cast<int64_t>(sizeof(double));
  char* part = static_cast<char*>(scratch(work + results, "squared_distances"));
  auto* dev_out = reinterpret_cast<double*>(part + work);
  k::squared_distances(stream_, self, others, count, n, dev_out, part);
  launched("squared_distances");
  download_bytes(out, dev_out, static_cast<size_t>(results), "squared_distances");
}

void cuda_backend::freivalds_pieces(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t kk, const float* a,
                                    const float* b, const float* bias, const float* c, const float* r,
                                    double* out) {
  product(m, kk, "freivalds_pieces");
  product(kk, n, "freivalds_pieces");
  product(m, n, "freivalds_pieces");
  use_device("freivalds_pieces");
  // The 3m + 1 results sit after the kernels' scratch.
  const int64_t work = k::freivalds_scratch_bytes(m, n, kk);
  const int64_t results = (3 * m + 1) * static_cast<int64_t>(sizeof(double));
  char* part = static_cast<char*>(scratch(work + results, "freivalds_pieces"));
  auto* dev_out = reinterpret_cast<double*>(part + work);
  k::freivalds_pieces(stream_, trans_a, trans_b, m, n, kk, a, b, bias, c, r, dev_out, part);
  launched("freivalds_pieces");
  download_bytes(out, dev_out, static_cast<size_t>(results), "freivalds_pieces");
}

}  // namespace

std::unique_ptr<compute_backend> make_cuda_backend(int device) {
  const cuda_probe p = probe_cuda();
  const std::string who = "cuda:" + std::to_string(device) + ": ";
  if (p.device_count == 0) throw std::runtime_error(who + p.reason);
  if (device < 0 || device >= p.device_count) {
    std::string have;
    for (size_t i = 0; i < p.names.size(); ++i)
      have += (i ? ", " : "") + std::string("cuda:") + std::to_string(i) + " " + p.names[i];
    throw std::runtime_error(who + "no such device (this machine has " + std::to_string(p.device_count) + ": " +
                             have + ")");
  }
  return std::make_unique<cuda_backend>(device, p.names[static_cast<size_t>(device)]);
}

}  // namespace murmur
