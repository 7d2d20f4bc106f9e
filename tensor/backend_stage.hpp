// backend_stage: one pipeline stage's layers (a Sequential of a layer range,
// tensor/stage_split.hpp) trained on a compute_backend micro-batch by
// micro-batch, as actors/pipeline_stage.hpp trains them on the host:
// parameters, gradients, optimizer state and every activation live in the
// backend's buffers.
//
// Contract:
//  - Slots: each micro-batch in flight has a slot (index < slots given at
//    construction) whose activation buffers live from its forward to its
//    backward, so nothing is recomputed (GPipe, 1F1B). A slot's buffers are
//    allocated on its first forward at a batch size larger than any it has
//    seen, never again after that.
//  - forward takes the input activation from the host (the previous stage's
//    message, or stage 0's micro-batch of data); a stage that is not last
//    hands its output to the host with download_output (the next stage's
//    message). The last stage computes softmax cross-entropy from labels
//    with its output gradient scaled by the micro-batch's share of the batch
//    (as the host stage). backward takes the output gradient from the host
//    (not last) and a stage that is not first hands dL/dx to the host with
//    download_input_grad. Nothing else crosses: activations leave the
//    backend only where they leave the stage.
//  - Each backward adds its parameter gradients to an accumulator;
//    optimizer_step steps along the sum and zeroes it: one optimizer step
//    per batch, whatever the micro-batch count.
//  - Within float rounding of the host stage (the CPU backend: the same
//    code); dropout draws the masks the host slot draws for the same seed.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/backend.hpp"
#include "tensor/backend_layers.hpp"
#include "tensor/backend_optimizer.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

class backend_stage {
 public:
  // model: the stage's layers and current parameters (uploaded; not kept).
  // first: stage 0 (no input gradient); last: the output is [classes]
  // logits (std::invalid_argument otherwise). slots >= 1.
  backend_stage(compute_backend& be, const Sequential& model, backend_optimizer opt, bool first, bool last,
                size_t slots);
  ~backend_stage();
  backend_stage(const backend_stage&) = delete;
  backend_stage& operator=(const backend_stage&) = delete;

  // Training forward of `batch` samples x ([batch, input...], host) in
  // `slot`, dropout seeded as Sequential::set_noise_seed(noise_seed).
  void forward(size_t slot, const float* x, int64_t batch, uint64_t noise_seed);
  // Not last: the slot's output ([batch, output...]) to the host.
  void download_output(size_t slot, float* host);
  // Last: the mean loss of the slot's micro-batch against labels (host,
  // checked in [0, classes)); keeps dlogits * share for backward.
  float loss(size_t slot, const int32_t* labels, float share);
  // dy: the output gradient (host, [batch, output...]); null on the last
  // stage (the loss's). Adds the gradients to the accumulator.
  void backward(size_t slot, const float* dy);
  // Not first: the slot's dL/dx of its last backward to the host.
  void download_input_grad(size_t slot, float* host);
  // One step along the accumulated gradients at lr, which are then zeroed.
  void optimizer_step(float lr);
  // Drops accumulated gradients (a restore in the middle of a step).
  void clear_gradients();

  size_t slots() const { return slots_.size(); }
  int64_t param_count() const { return nparams_; }
  void download_params(float* host) const;
  void upload_params(const float* host);
  void download_grads(float* host) const;  // the accumulated gradients
  optimizer_state save_optimizer_state() const { return optim_->save(); }
  void load_optimizer_state(const optimizer_state& s) { optim_->load(s); }
  compute_backend& backend() { return be_; }

 private:
  struct slot {
    std::unique_ptr<backend_layers> layers;
    int64_t batch = 0, cap = 0;
    float* x = nullptr;        // input activation
    float* dy = nullptr;       // output gradient (not last)
    float* dlogits = nullptr;  // last: the loss gradient, scaled by the share
    float* raw = nullptr;      // last: the loss gradient as computed
    int32_t* labels = nullptr;
    const float* out = nullptr;  // the last forward's output
    const float* dx = nullptr;   // the last backward's input gradient
  };
  compute_backend& be_;
  bool first_, last_;
  int64_t in_n_ = 0, out_n_ = 0, nparams_ = 0;
  float* params_ = nullptr;
  float* grads_ = nullptr;  // one backward's
  float* acc_ = nullptr;    // summed over the batch's micro-batches
  float* dw_scratch_ = nullptr;
  int64_t scratch_n_ = 0;
  std::unique_ptr<backend_optimizer_state> optim_;
  std::vector<slot> slots_;

  slot& at(size_t k, const char* what);
  void free_slot(slot& s);
};

}  // namespace murmur
