// The CUDA backend's kernel launchers (gpu/cuda_kernels_*.cu), used only by
// gpu/cuda_backend.cu, which checks arguments, names the op in errors and
// owns the scratch memory some launchers need.
//
// Every launcher enqueues its kernels on stream `s` and returns at once;
// launch errors stay in cudaGetLastError() for the caller. Sizes are int64
// and may exceed 2^31: kernels index in 64 bits in grid-stride loops.
// Callers never pass an empty range (n == 0); they return before.
//
// Rounding: gpu/ is compiled with --fmad=false, so a*b+c rounds twice, as
// the CPU loops do (GCC, -std=c++20: no contraction, no -mfma). Element-wise
// ops then match the CPU bit for bit, except expf/tanhf (CUDA's are within
// 2 ulp). Reductions accumulate in double in a fixed tree: deterministic
// (same bits run to run), within the CPU's own float rounding.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tensor/backend.hpp"

namespace murmur::gpu_kernels {

// ---- element-wise (cuda_kernels_elementwise.cu)
void fill(cudaStream_t s, float* dst, float value, int64_t n);
void add_row_bias(cudaStream_t s, float* y, const float* bias, int64_t rows, int64_t cols);
void add_channel_bias(cudaStream_t s, float* y, const float* bias, int64_t batch, int64_t channels,
                      int64_t spatial);
void activation_forward(cudaStream_t s, activation_kind f, const float* x, float* y, int64_t n);
void activation_backward(cudaStream_t s, activation_kind f, const float* y, const float* dy, float* dx, int64_t n);
void add(cudaStream_t s, const float* a, const float* b, float* out, int64_t n);
void axpy(cudaStream_t s, float alpha, const float* x, float* y, int64_t n);
void mul(cudaStream_t s, const float* a, const float* b, float* out, int64_t n);
// scale = float(1 / (1 - p)), computed by the caller as tensor/dropout.cpp does.
void dropout_forward(cudaStream_t s, const float* x, float* y, float* mask, int64_t n, double p, float scale,
                     uint64_t key);
void sgd_step(cudaStream_t s, float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
              float weight_decay, bool first);
// step_size = float(lr / bc1), bc2_sqrt = float(sqrt(bc2)), c1 = 1 - beta1,
// c2 = 1 - beta2 (floats), as tensor/optimizer.cpp.
void adam_step(cudaStream_t s, float* p, const float* g, float* m, float* v, int64_t n, float step_size,
               float bc2_sqrt, float beta1, float beta2, float c1, float c2, float eps, float weight_decay);

// ---- gossip (cuda_kernels_gossip.cu)
// Neighbours per launch of gossip_mix (passed by value: 32 pointers and
// weights, well under the 4 KiB kernel-parameter limit of CUDA 11.8).
constexpr int kMixBatch = 32;
// x += gamma * sum_j weights[j] (hats[j] - self_hat), j < count <= kMixBatch;
// hats holds device pointers, read from host memory at launch.
void gossip_mix(cudaStream_t s, float* x, const float* self_hat, const float* const* hats, const float* weights,
                int count, float gamma, int64_t n);
// Scratch gossip_select needs for n entries (bytes).
int64_t gossip_select_scratch_bytes(int64_t n);
// Writes the selected count to *count (device int64).
void gossip_select(cudaStream_t s, const float* x, float* hat, int64_t n, float threshold, float grid,
                   int32_t* idx, float* val, void* scratch, int64_t* count);
void scatter(cudaStream_t s, float* dst, const int32_t* idx, const float* val, int64_t count);

// ---- clipping gossip rules (cuda_kernels_clip.cu)
// Partials per distance: the first pass runs this many blocks per neighbour
// (fewer for small n), the second sums them in block order.
constexpr int kDistanceBlocks = 256;
int64_t squared_distances_scratch_bytes(int count, int64_t n);
// out (device, count doubles)[j] = sum_k (double(others[j][k]) - self[k])^2;
// others holds device pointers, read from host memory at launch.
void squared_distances(cudaStream_t s, const float* self, const float* const* others, int count, int64_t n,
                       double* out, void* scratch);
// Scratch clip_mix needs for count > kMixBatch (bytes; 0 otherwise).
int64_t clip_mix_scratch_bytes(int count, int64_t n);
// compute_backend::clip_mix; more than kMixBatch neighbours run in several
// passes that carry v (float) through scratch, so the order of additions
// and the bits are those of one pass.
void clip_mix(cudaStream_t s, float* x, const float* self_hat, const float* const* hats, const float* scales,
              int count, float gamma, int64_t n, void* scratch);

// ---- coordinate-wise gossip rules (cuda_kernels_coordinatewise.cu)
// Up to this many members a thread sorts its coordinate's values in a
// local array; beyond, in a column of the scratch.
constexpr int kLocalSortMembers = 32;
// Scratch for `members` estimates of n floats (bytes): their pointers, and
// the sort columns when members > kLocalSortMembers.
int64_t coordinatewise_mix_scratch_bytes(int members, int64_t n);
// Where in that scratch the caller uploads the members' device pointers
// (self_hat first), before launching.
const float** coordinatewise_mix_pointers(void* scratch);
// compute_backend::coordinatewise_mix over members = count + 1 estimates
// whose pointers sit in the scratch.
void coordinatewise_mix(cudaStream_t s, float* x, int members, int drop, float gamma, int64_t n, void* scratch);

// ---- convolution and pooling (cuda_kernels_spatial.cu)
void im2col(cudaStream_t s, const float* x, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride,
            int64_t pad, int64_t oh, int64_t ow, float* cols);
void col2im(cudaStream_t s, const float* cols, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride,
            int64_t pad, int64_t oh, int64_t ow, float* dx);
void maxpool_forward(cudaStream_t s, const float* x, int64_t planes, int64_t h, int64_t w, int64_t k, float* y,
                     int32_t* argmax);
void maxpool_backward(cudaStream_t s, const float* dy, const int32_t* argmax, int64_t planes, int64_t h,
                      int64_t w, int64_t k, float* dx);

// ---- reductions (cuda_kernels_reduce.cu)
void sum_rows(cudaStream_t s, float* out, const float* x, int64_t rows, int64_t cols, float beta);
int64_t sum_channels_scratch_bytes(int64_t batch, int64_t channels, int64_t spatial);
void sum_channels(cudaStream_t s, float* out, const float* x, int64_t batch, int64_t channels, int64_t spatial,
                  void* scratch);
void gap_forward(cudaStream_t s, const float* x, int64_t planes, int64_t spatial, float* y);
void gap_backward(cudaStream_t s, const float* dy, int64_t planes, int64_t spatial, float* dx);
void groupnorm_forward(cudaStream_t s, const float* x, int64_t batch, int64_t channels, int64_t spatial,
                       int64_t groups, const float* w, const float* b, float* y, float* xhat, float* rstd);
int64_t groupnorm_backward_scratch_bytes(int64_t batch, int64_t channels);
void groupnorm_backward(cudaStream_t s, const float* dy, const float* xhat, const float* rstd, const float* w,
                        int64_t batch, int64_t channels, int64_t spatial, int64_t groups, float* dx, float* dw,
                        float* db, void* scratch);

// ---- softmax cross-entropy (cuda_kernels_reduce.cu)
struct loss_totals {  // written on the device, read back by the backend
  double loss_sum;
  long long correct;
  long long bad_labels;  // labels outside [0, classes): the loss is void
};
int64_t softmax_cross_entropy_scratch_bytes(int64_t batch);
void softmax_cross_entropy(cudaStream_t s, const float* logits, const int32_t* labels, int64_t batch,
                           int64_t classes, float* dlogits, void* scratch, loss_totals* totals);

// ---- Freivalds pieces (cuda_kernels_freivalds.cu)
int64_t freivalds_scratch_bytes(int64_t m, int64_t n, int64_t k);
// Writes the 3m + 1 doubles of compute_backend::freivalds_pieces to the
// device array out; bias (n floats) may be null.
void freivalds_pieces(cudaStream_t s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                      const float* b, const float* bias, const float* c, const float* r, double* out,
                      void* scratch);

}  // namespace murmur::gpu_kernels
