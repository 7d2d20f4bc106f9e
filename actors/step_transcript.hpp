// step_transcript: what a peer commits to after each training step, and keeps
// for a while so that its verifiers can fetch it.
//
// After backward and before the optimizer step, record() copies every
// committed layer's input X, weight W, bias b, output Y, output gradient dY,
// weight gradient dW and bias gradient db, hashes each (SHA-256) and returns
// the commitment. Committed layers are the model's top-level Linear and
// Conv2d layers (committed_layers()); a conv commits its input [B, C, H, W],
// not the im2col matrix its product uses (k*k times larger): the verifier
// expands it. The input digest covers the batch's sample indices and X;
// a layer fed directly by the data (only flatten before it) commits to the
// indices alone: a verifier rebuilds X from the data set every peer has. The last `keep` steps are kept;
// reply() answers a verifier's request for one (step, layer) from them.
// Thread-safe: the trainer records while the verifier actor answers.
//
// Compute cheats (for the simulation's attackers) are applied by
// apply_compute_cheat() BEFORE record(), so what is committed is what is
// applied, as a real cheat would be (layer 0: the first committed layer,
// linear or conv):
//   skip_product: layer 0's forward and weight-gradient products are skipped:
//                 Y0 and dW0 are random numbers of the right scale
//   perturb:      one element of dW0 is moved by eps times its row's norm
//   half_batch:   dW0 and db0 are computed from the first half of the batch
//                 (doubled), the rest of the step is honest
//   replay:       the step was computed on another peer's batch (the trainer
//                 draws it from that peer's shard): all products are right,
//                 but the samples are not the prover's own
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "protocols/verify_messages.hpp"
#include "tensor/im2col.hpp"
#include "tensor/rng.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

enum class compute_cheat : uint8_t { none, skip_product, perturb, half_batch, replay };

struct cheat_settings {
  compute_cheat kind = compute_cheat::none;
  uint64_t start_step = 0;  // first step (1-based) that cheats
  uint64_t every = 1;       // then every n-th step
  double eps = 1e-2;        // perturb: relative to the row norm
  bool active(uint64_t step) const {
    return kind != compute_cheat::none && step >= start_step && (step - start_step) % std::max<uint64_t>(every, 1) == 0;
  }
};

// A layer between two committed ones whose output is an exact function of
// its input (no rounding): a verifier recomputes it bit for bit.
struct exact_op {
  enum kind_t : uint8_t { relu, maxpool2d, flatten } kind = relu;
  int64_t kernel = 0;  // maxpool2d
};

// Which of a model's layers are committed: its top-level Linear and Conv2d
// layers, in order (layers inside a res[...] block are not), whether each is
// fed by the data directly, and how it links to the next. Shared by provers
// and verifiers (every peer builds the same model).
struct committed_layer {
  enum kind_t : uint8_t { linear, conv2d } kind = linear;
  size_t index = 0;             // in the Sequential
  int64_t in = 0, out = 0;      // the weight is out x in (conv2d: in = C*k*k)
  int64_t in_row = 0, out_row = 0;  // per-sample input and output floats (linear: in, out)
  conv_geometry conv;           // conv2d, per sample (batch 1)
  Shape out_shape;              // per-sample output shape
  bool data_input = false;      // only flatten before it
  bool logits = false;          // the model's last layer: dY is the loss gradient
  // The next committed layer's input is this layer's output through `link`
  // (only exact layers between: relu, maxpool2d, flatten): a verifier
  // recomputes it and holds it to the next layer's input digest.
  bool link_checked = false;
  std::vector<exact_op> link;
};
std::vector<committed_layer> committed_layers(Sequential& model);

// The tensors of the step just computed that a compute cheat reads (the
// layer's input x [batch, in_row], also for a data-fed layer, and dy) and
// changes (y, dw, db), in host memory, sized by the committed_layer.
struct cheat_tensors {
  int64_t batch = 0;
  const float* x = nullptr;
  const float* dy = nullptr;
  float* y = nullptr;
  float* dw = nullptr;
  float* db = nullptr;
};

// Cheats on `target` (the trainer passes the first committed layer, the
// largest product) of the step just computed: on the host model's layer,
// or on host copies of a backend's tensors (the trainer then uploads dw
// and db back: what the optimizer applies; y is only committed, as on the
// host, where the layers after it have consumed the honest output).
void apply_compute_cheat(const cheat_settings& c, const committed_layer& target, Sequential& model, Rng& rng);
void apply_compute_cheat(const cheat_settings& c, const committed_layer& target, const cheat_tensors& t, Rng& rng);

// One committed layer's tensors of a step, host pointers, as record()
// reads them from a Sequential's layers: input x [batch, in_row] (unused for
// a data-fed layer), weight [out, in], bias [out], output y and its
// gradient dy [batch, out_row], weight and bias gradients. For a step
// computed elsewhere (a compute backend) the trainer downloads them first.
struct transcript_tensors {
  int64_t batch = 0;
  const float *x = nullptr, *w = nullptr, *b = nullptr, *y = nullptr, *dy = nullptr, *dw = nullptr,
              *db = nullptr;
};

class step_transcript_log {
 public:
  step_transcript_log(uint32_t prover, Sequential& model, size_t keep);
  // Copies and hashes the step's tensors; returns the commitment (valid
  // until the next record).
  const transcript_commit& record(uint64_t step, Sequential& model, const std::vector<int64_t>& batch_indices);
  // The same from given tensors, one per committed layer (layers() order).
  const transcript_commit& record(uint64_t step, const std::vector<transcript_tensors>& tensors,
                                  const std::vector<int64_t>& batch_indices);
  // Fills out with layer `layer` of step `step`; false if no longer kept.
  bool reply(uint64_t step, uint16_t layer, uint64_t nonce, tensor_reply& out) const;
  uint32_t prover() const { return prover_; }
  const std::vector<committed_layer>& layers() const { return spec_; }

 private:
  struct layer_copy {
    std::vector<float> x, w, b, y, dy, dw, db;
  };
  struct slot {
    uint64_t step = 0;  // 0 = empty
    std::vector<uint32_t> indices;
    std::vector<layer_copy> layers;
  };
  uint32_t prover_;
  std::vector<committed_layer> spec_;
  std::vector<slot> slots_;
  size_t next_ = 0;
  transcript_commit commit_;
  digest_builder hash_;
  std::vector<transcript_tensors> views_;  // record(model)'s, reused
  mutable std::mutex mu_;
};

}  // namespace murmur
