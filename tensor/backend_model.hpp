// backend_model: a Sequential's training step run entirely on a
// compute_backend (tensor/backend.hpp): parameters, gradients, optimizer
// state and activations live in the backend's buffers; per step only the
// batch goes in (features and labels) and the loss comes out.
//
// Contract:
//  - Built from a Sequential (its layer list, input shape and current
//    parameters, which are uploaded) and the optimizer settings; every layer
//    type Sequential has is supported (linear, conv2d, maxpool2d, relu,
//    sigmoid, tanh, flatten, groupnorm, dropout, gap, res[...]); anything
//    else throws std::invalid_argument naming the layer.
//  - train_step computes what Sequential::forward, softmax_cross_entropy,
//    Sequential::backward and the Optimizer step compute, in the same order,
//    within float rounding (the CPU backend: the same code, so the same
//    results up to summation order in gemm); dropout draws the same masks
//    as the Layer (same seed, same count of forwards).
//  - Buffers are allocated for the largest batch seen; a step of a batch
//    size seen before allocates nothing.
//  - Parameters cross to the host only when asked (download_params /
//    upload_params): gossip, checkpoints and verification call those.
#pragma once
#include <memory>
#include <vector>

#include "tensor/backend.hpp"
#include "tensor/backend_optimizer.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

class backend_model {
 public:
  // `model` gives the layers and the initial parameters; it is not kept
  // (the caller may keep using it as a host mirror). noise_seed: as
  // Sequential::set_noise_seed, for dropout.
  backend_model(compute_backend& be, const Sequential& model, backend_optimizer opt, uint64_t noise_seed);
  ~backend_model();
  backend_model(const backend_model&) = delete;
  backend_model& operator=(const backend_model&) = delete;

  // x: [batch, input_shape...] on the host, labels: batch ints. One
  // optimizer step at learning rate lr; returns the mean loss.
  float train_step(const float* x, const int32_t* labels, int64_t batch, float lr);
  // train_step's two halves, for a caller that looks at the step in between
  // (step transcripts record after backward, before the optimizer).
  float forward_backward(const float* x, const int32_t* labels, int64_t batch);
  void optimizer_step(float lr);
  // The last forward_backward's tensors of top-level layer i, a Linear or
  // Conv2d (std::invalid_argument otherwise), as backend buffers: input x
  // (batch first; a conv's [B, C, H, W], not its columns), output y, output
  // gradient dy, and the weight, bias and their gradients (slices of the
  // flat parameters and gradients, in the Sequential's layout). Valid until
  // the next forward.
  struct layer_buffers {
    const float *x = nullptr, *y = nullptr, *dy = nullptr, *w = nullptr, *b = nullptr, *dw = nullptr,
                *db = nullptr;
  };
  layer_buffers layer_buffers_of(size_t layer_index) const;
  // Overwrites top-level layer i's weight and bias gradients of the last
  // forward_backward with host arrays (its dw, db sizes), before
  // optimizer_step applies them: a compute cheat's (actors/step_transcript.hpp).
  void upload_layer_grads(size_t layer_index, const float* dw, const float* db);
  // Evaluation mode (dropout off), no gradients: returns the summed loss
  // and adds the number of correct predictions to *correct.
  double evaluate(const float* x, const int32_t* labels, int64_t batch, int64_t* correct);
  // Forward only, in evaluation mode, logits to the host ([batch, classes]).
  void predict(const float* x, int64_t batch, float* logits);

  // As Sequential::set_noise_seed: dropout draws from here on depend only
  // on this seed and the forwards since (the trainer reseeds every step).
  void set_noise_seed(uint64_t seed);

  int64_t param_count() const;
  void download_params(float* host) const;
  void upload_params(const float* host);
  void download_grads(float* host) const;       // of the last train_step
  // Optimizer state in optimizer.hpp's layout (checkpoints).
  optimizer_state save_optimizer_state() const;
  void load_optimizer_state(const optimizer_state& s);
  // Backend buffers of the flat parameters (gossip on the backend).
  float* params();
  compute_backend& backend() { return be_; }

 private:
  struct impl;
  compute_backend& be_;
  std::unique_ptr<impl> p_;
};

}  // namespace murmur
