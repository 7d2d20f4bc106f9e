// backend_layers: a Sequential's layer list as compute_backend ops (one
// node per layer, nested for res[...]), with each node's activation buffers
// for up to capacity() samples, and their forward and backward. What
// backend_model (a whole model's step) and backend_stage (a pipeline stage's
// micro-batches, one backend_layers per micro-batch in flight) both run.
//
// Contract:
//  - The parameters, their gradients and the conv weight-gradient scratch
//    are the caller's backend buffers, passed to forward / backward in the
//    Sequential's flat layout; this class owns only activation buffers.
//  - forward and backward compute what the Layer classes compute, in the
//    same order (the CPU backend: the same code). backward overwrites every
//    parameter gradient it reaches (as the Layers do), it does not add.
//  - Dropout draws as the Layer: same seed (reseed, as
//    Sequential::set_noise_seed), same count of training forwards.
//  - No allocation outside reserve(), which grows only.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/backend.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

class backend_layers {
 public:
  enum class op : uint8_t { linear, conv, maxpool, act, flatten, groupnorm, dropout, gap, residual };

  // One layer, with its backend buffers (sized for capacity() samples).
  struct node {
    op type = op::flatten;
    int64_t in_n = 0, out_n = 0;   // floats per sample in and out
    int64_t poff = 0, pcount = 0;  // slice of the flat parameters
    // Hyper-parameters: linear (in_f, out_f); conv (c, o, k, stride, pad, h,
    // w, oh, ow); maxpool (c, h, w, k); groupnorm (c, groups); gap (c, h, w).
    int64_t in_f = 0, out_f = 0;
    int64_t c = 0, o = 0, k = 0, stride = 1, pad = 0, h = 0, w = 0, oh = 0, ow = 0, groups = 1;
    activation_kind act = activation_kind::relu;
    double p = 0;
    uint64_t seed = 0, calls = 0;  // dropout: as Dropout's seed_ and calls_
    bool masked = false;           // the last forward drew a mask
    bool need_dx = true;
    std::vector<node> body;        // residual
    // Buffers.
    float* y = nullptr;
    float* dx = nullptr;
    float* cols = nullptr;      // conv: [batch][c*k*k][oh*ow]
    float* xhat = nullptr;      // groupnorm
    float* rstd = nullptr;      // groupnorm: [batch * groups]
    float* mask = nullptr;      // dropout
    int32_t* argmax = nullptr;  // maxpool
    const float* x = nullptr;   // the last forward's input (a neighbour's buffer)
    const float* dy = nullptr;  // the last backward's output gradient (a neighbour's buffer)
  };

  // The plan of `model`'s layers, no buffers yet. Throws
  // std::invalid_argument naming a layer the backend does not support.
  // need_input_grad: as Sequential::set_need_input_grad (backward then
  // returns dL/dx of the first layer; otherwise it stops at the first layer
  // with parameters and returns null).
  backend_layers(compute_backend& be, const Sequential& model, bool need_input_grad);
  ~backend_layers();
  backend_layers(const backend_layers&) = delete;
  backend_layers& operator=(const backend_layers&) = delete;

  // Buffers for `batch` samples; a batch size seen before allocates nothing.
  // Syncs the backend before freeing smaller buffers.
  void reserve(int64_t batch);
  int64_t capacity() const { return cap_; }
  // Floats of conv weight-gradient scratch backward needs at `batch`.
  int64_t scratch_floats(int64_t batch) const;
  // As Sequential::set_noise_seed: layer i's stream is seed + golden * (i + 1).
  void reseed(uint64_t seed);

  // x: batch samples (backend buffer), batch <= capacity(). Returns the
  // output (a node's buffer, or x itself when the layers are views).
  const float* forward(const float* x, int64_t batch, bool training, const float* params);
  // dy: output gradient of the last forward. Writes the parameter gradients
  // into grads; returns dL/dx (null without need_input_grad).
  const float* backward(const float* dy, int64_t batch, const float* params, float* grads, float* dw_scratch);

  size_t size() const { return plan_.size(); }
  const node& layer(size_t i) const { return plan_[i]; }

 private:
  compute_backend& be_;
  std::vector<node> plan_;
  size_t backward_stop_ = 0;  // backward runs plan_[backward_stop_, n), as Sequential
  int64_t cap_ = 0;

  void free_node(node& n);
  void alloc_node(node& n, int64_t batch);
  const float* forward(node& n, const float* x, int64_t batch, bool training, const float* params);
  const float* backward(node& n, const float* dy, int64_t batch, const float* params, float* grads,
                        float* dw_scratch);
};

}  // namespace murmur
