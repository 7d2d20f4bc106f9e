// trainer: one peer's local training on its shard (model, optimizer, batch
// order, learning-rate schedule) and its evaluation. No actors here: the
// shard actor drives it. The model is shared with the gossip actor, which
// touches the parameters only while the shard actor waits for it.
#pragma once
#include <memory>
#include <vector>

#include "actors/peer_settings.hpp"
#include "actors/step_transcript.hpp"
#include "protocols/checkpoint_file.hpp"
#include "tensor/dataset.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

struct eval_report {
  float test_loss = 0, test_accuracy = 0;
  float train_loss = 0;  // mean over steps since the previous evaluation
  uint64_t steps = 0;
};

class trainer {
 public:
  // attack.kind label_flip: the steps it acts at train on y -> classes-1-y.
  trainer(const train_settings& s, const std::string& model_spec,
          std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
          std::shared_ptr<const Dataset> test, const attack_settings& attack = {});
  float step();               // one local optimizer step on the next batch
  eval_report evaluate();     // on the whole test set; resets the train-loss mean
  double learning_rate() const;
  uint64_t steps_done() const { return steps_; }
  // A rejoining peer continues at the step its donors had reached (for the
  // learning-rate schedule and the step budget).
  void set_step(uint64_t s) { steps_ = s; }
  int64_t steps_per_epoch() const { return batches_.steps_per_epoch(); }
  const std::shared_ptr<Sequential>& model() const { return model_; }

  // Checkpoints (a resumed run): everything the next steps depend on:
  // parameters, optimizer state, steps done (hence the learning rate), the
  // position in this shard's batch order, and the train-loss mean since the
  // last evaluation. kind peer, replica = `peer`, stage 0 of 1; `extra`
  // starts with checkpoint_extra values of the trainer's own (trainer.cpp),
  // a caller may append its own after them. Not in it: the transcript log,
  // a cheat's random stream and replay position (attackers, verification).
  static constexpr size_t checkpoint_extra = 4;
  checkpoint make_checkpoint(uint16_t peer, uint64_t seed) const;
  // Loads one of this trainer's kind: the same model spec, parameter count,
  // optimizer kind and size, and learning-rate schedule length; otherwise
  // std::invalid_argument naming the mismatch, and nothing has changed.
  // The steps after it are then those an uninterrupted trainer would take.
  void restore(const checkpoint& c);

  // Step transcripts: from now on every step is recorded into `log` (after
  // backward, before the optimizer) and its commitment is last_commit().
  // `cheat` makes this peer an attacker that cheats on its compute (see
  // step_transcript.hpp); `replay_shard` is whose batches a replay cheat uses.
  void enable_transcripts(std::shared_ptr<step_transcript_log> log, cheat_settings cheat,
                          std::vector<int64_t> replay_shard, uint64_t cheat_seed);
  const transcript_commit* last_commit() const { return commit_; }
  // Wall time spent in steps (without committing) and in committing.
  double step_seconds() const { return step_s_; }
  double commit_seconds() const { return commit_s_; }

 private:
  train_settings s_;
  std::string model_spec_;
  attack_settings attack_;
  std::shared_ptr<const Dataset> train_, test_;
  std::shared_ptr<Sequential> model_;
  std::unique_ptr<Optimizer> opt_;
  BatchIterator batches_;
  Tensor x_, dlogits_;
  std::vector<float> augment_scratch_;
  std::vector<int32_t> y_;
  uint64_t steps_ = 0, loss_count_ = 0;
  uint64_t drawn_ = 0;  // batches drawn from batches_ (steps, less replay-cheat steps)
  double loss_sum_ = 0;
  std::shared_ptr<step_transcript_log> log_;
  cheat_settings cheat_;
  std::unique_ptr<BatchIterator> replay_batches_;
  Rng cheat_rng_;
  const transcript_commit* commit_ = nullptr;
  double step_s_ = 0, commit_s_ = 0;
};

}  // namespace murmur
