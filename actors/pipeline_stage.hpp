// pipeline_stage: one stage of one pipeline replica as a state machine, with
// no actors or sockets in it (actors/stage_actor.hpp drives it).
// A step runs the stage's schedule (pipeline_schedule.hpp) over the step's
// micro-batches: a forward needs the previous stage's activation (stage 0
// cuts it from its own batch), a backward the next stage's gradient (the
// last stage takes it from the loss). Each in-flight micro-batch has its own
// copy of the stage's layers (a "slot", whose activations live until its
// backward), so nothing is recomputed; the slots share the master's
// parameters and gradient buffer, so peak slots x activation bytes is the
// stage's activation memory.
// Gradients of all micro-batches add up (each micro-batch's loss gradient is
// scaled by its share of the batch), then one optimizer step per batch, so
// an S-stage pipeline computes what one-stage training computes on the same
// batch, up to float summation order.
// On a compute backend (train.device cuda, or use_backend) the stage trains
// through tensor/backend_stage.hpp: parameters, gradients, optimizer state
// and every micro-batch's activations stay in the backend's buffers, one
// activation slot per micro-batch in flight as on the host. Activations
// cross to the host only where they leave the stage: the input of a forward
// comes from the previous stage's message (stage 0: its micro-batch of
// data), the output goes into the message to the next stage, and likewise
// the gradients of a backward. The master Sequential is then the host mirror
// of the parameters: downloaded after each optimizer step (gossip,
// checkpoints, evaluation and the final model read it between steps), and
// uploaded before the next step after mark_host_params_written (gossip's mix
// writes it) or restore.
// Frames are validated by their decoders; accept() checks that a message
// fits this stage (sender, generation, step, micro-batch, shapes, labels)
// and rejects (and counts) it otherwise, changing nothing.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/peer_settings.hpp"
#include "actors/pipeline_schedule.hpp"
#include "protocols/checkpoint_file.hpp"
#include "protocols/pipeline_messages.hpp"
#include "tensor/backend.hpp"
#include "tensor/dataset.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/stage_split.hpp"

namespace murmur {

class backend_stage;

struct stage_settings {
  uint16_t replica = 0, stage = 0, stages = 1;
  uint32_t microbatches = 1;
  pipeline_schedule_kind schedule = pipeline_schedule_kind::one_f_one_b;
  std::string model_spec;
  stage_range range;                // this stage's layers of the whole model
  train_settings train;             // optimizer, lr schedule, batch, total_steps, seeds
  double gflops = 50;               // modelled speed: an op's cost in seconds
  // This stage's starting parameters (model.init_from); null: from train.init_seed.
  std::shared_ptr<const std::vector<float>> initial_params;
};

struct stage_stats {
  uint64_t ops = 0, rejected = 0, stale = 0;
  double busy_seconds = 0;          // modelled compute time of all ops
  size_t peak_slots = 0;            // most micro-batches in flight at once
  int64_t activation_bytes_per_sample = 0;  // every layer output of this stage, one sample
  double loss_sum = 0;              // last stage: batch losses summed over steps
  uint64_t loss_steps = 0;
};

class pipeline_stage {
 public:
  // train/shard: the data (stage 0 draws batches; the last stage needs only
  // the class count). Throws std::invalid_argument on a bad split or model.
  // s.train.device cuda: trains on make_cuda_backend(index) (throws
  // std::runtime_error when it cannot be had).
  pipeline_stage(const stage_settings& s, std::shared_ptr<const Dataset> train, std::vector<int64_t> shard);
  ~pipeline_stage();

  // From now on the stage trains on `be` (tests: make_cpu_backend()); the
  // current parameters and optimizer state move there. Between steps only
  // (std::logic_error with micro-batches in flight).
  void use_backend(std::unique_ptr<compute_backend> be);
  bool on_backend() const { return bs_ != nullptr; }
  // The master parameters (model()) were written on the host between steps
  // (gossip's mix): on a backend the next step uploads them first.
  void mark_host_params_written() { host_ahead_ = true; }

  bool accept(stage_tensor&& m);    // false: rejected or stale, nothing changed

  // The next op has its input (and the step budget is not spent).
  bool ready() const;
  struct op_result {
    double seconds = 0;                 // modelled cost of the op
    std::optional<stage_tensor> out;    // to stage-1 (gradient) or stage+1 (activation)
    bool step_done = false;             // this op ended the step: the optimizer has stepped
  };
  op_result run_next();                 // requires ready()

  uint64_t steps_done() const { return step_; }
  bool finished() const { return step_ >= static_cast<uint64_t>(s_.train.total_steps); }
  uint32_t generation() const { return generation_; }
  // Ops of the current step done so far, and in all (0 before its first op).
  size_t step_ops_done() const { return mb_count_ ? next_op_ : 0; }
  size_t step_ops() const { return mb_count_ ? ops_.size() : 0; }
  const stage_settings& settings() const { return s_; }
  const stage_stats& stats() const { return stats_; }
  double learning_rate() const;
  // Mean loss of the steps since the last call (last stage; NaN elsewhere).
  double take_mean_loss();
  // Last stage: the batch loss of the last step finished (0 before any).
  double last_step_loss() const { return loss_acc_; }

  // The master parameters: gossip mixes into them between steps (on a
  // backend: the host mirror, current at every step boundary; see above).
  const std::shared_ptr<Sequential>& model() const { return master_; }

  checkpoint make_checkpoint(uint64_t seed) const;
  // Loads a checkpoint of this stage (same model spec, layers and size;
  // std::invalid_argument naming the mismatch otherwise), drops everything
  // in flight and continues at its step under `generation`.
  void restore(const checkpoint& c, uint32_t generation);

 private:
  stage_settings s_;
  std::shared_ptr<const Dataset> train_;
  std::unique_ptr<BatchIterator> batches_;   // stage 0 only
  std::shared_ptr<Sequential> master_;
  std::unique_ptr<Optimizer> opt_;
  std::vector<float> grad_acc_;
  Shape in_shape_, out_shape_;
  int32_t classes_ = 0;
  int64_t flops_per_sample_ = 0;
  std::unique_ptr<compute_backend> backend_;
  std::unique_ptr<backend_stage> bs_;  // null: the host Sequential trains
  bool host_ahead_ = false;            // master_ written since the last upload

  // Slots: copies of the layers, one per micro-batch in flight.
  struct slot {
    std::shared_ptr<Sequential> model;       // slot 0 is the master itself; the others share its buffers
                                             // (on a backend: unused, the slot is backend_stage's)
    Tensor input, dlogits;
    std::vector<int32_t> labels;
    bool busy = false;
  };
  std::vector<slot> slots_;
  std::vector<int> slot_of_;                 // micro-batch -> slot, -1 if none

  // This step.
  uint64_t step_ = 0;
  uint32_t generation_ = 0;
  uint32_t total_ = 0, mb_count_ = 0;        // batch size and micro-batches (0 = not known yet)
  size_t next_op_ = 0;
  std::vector<pipeline_op> ops_;
  std::map<uint32_t, std::vector<pipeline_op>> schedules_;  // by micro-batch count
  Tensor batch_x_;                           // stage 0: the step's batch
  std::vector<float> augment_scratch_;       // stage 0: one image
  std::vector<int32_t> batch_y_;
  std::map<std::pair<uint16_t, bool>, stage_tensor> inbox_;  // (micro-batch, gradient)
  double loss_acc_ = 0;
  double loss_since_ = 0;
  uint64_t loss_steps_since_ = 0;
  stage_stats stats_;

  void begin_step(uint32_t total);
  uint32_t mb_begin(uint32_t mb) const { return static_cast<uint32_t>(uint64_t{mb} * total_ / mb_count_); }
  uint32_t mb_size(uint32_t mb) const { return mb_begin(mb + 1) - mb_begin(mb); }
  int take_slot();
  op_result forward(uint16_t mb);
  op_result backward(uint16_t mb);
};

}  // namespace murmur
