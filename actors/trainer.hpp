// trainer: one peer's local training on its shard (model, optimizer, batch
// order, learning-rate schedule) and its evaluation. No actors here: the
// shard actor drives it. The model is shared with the gossip actor, which
// touches the parameters only while the shard actor waits for it.
//
// On a compute backend (train_settings::device cuda, or use_backend) the
// steps and evaluations run through tensor/backend_model.hpp: parameters
// and optimizer state live in the backend between steps, and the host
// Sequential is the mirror that gossip, checkpoints and export read. It is
// brought up to date only when asked: model() / synced_model() download
// once after steps, and a host write (model()) is uploaded once before the
// next step. Without a backend these cost nothing.
#pragma once
#include <array>
#include <memory>
#include <vector>

#include "actors/peer_settings.hpp"
#include "actors/step_transcript.hpp"
#include "protocols/checkpoint_file.hpp"
#include "tensor/backend.hpp"
#include "tensor/dataset.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

class backend_model;

struct eval_report {
  float test_loss = 0, test_accuracy = 0;
  float train_loss = 0;  // mean over steps since the previous evaluation
  uint64_t steps = 0;
};

class trainer {
 public:
  // attack.kind label_flip: the steps it acts at train on y -> classes-1-y.
  // s.device cuda: trains on make_cuda_backend(s.device.index) (throws
  // std::runtime_error when it cannot be had).
  trainer(const train_settings& s, const std::string& model_spec,
          std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
          std::shared_ptr<const Dataset> test, const attack_settings& attack = {});
  ~trainer();
  // From now on the steps run on `be` (tests: make_cpu_backend()); the
  // current parameters and optimizer state move there.
  void use_backend(std::unique_ptr<compute_backend> be);
  bool on_backend() const { return bm_ != nullptr; }
  // Host training only (false, nothing changed, on a backend): the gradients
  // go into `buffer` from now on, shared with other trainers that take turns
  // with this one on one thread and never interleave within a step (the
  // simulator's peers: Sequential::share_gradients). A trainer reads its
  // gradients only between its backward and its optimizer step.
  bool share_gradients(std::shared_ptr<std::vector<float>> buffer);
  // The same for the per-step buffers, with `owner` (a trainer of the same
  // model, also on the host, that outlives none of the sharing: storage is
  // reference counted): the batch, the loss gradient and the layers'
  // outputs and input gradients (Sequential::share_activations), none of
  // which holds anything from one step or evaluation to the next. False,
  // nothing changed, when either trains on a backend.
  bool share_activations(trainer& owner);
  float step();               // one local optimizer step on the next batch
  // On the whole test set, or (count > 0 and below its size) on the count
  // samples from `begin` on, wrapping around the end: a host evaluating
  // many peers passes them all the same window. Resets the train-loss mean.
  eval_report evaluate(int64_t begin = 0, int64_t count = 0);
  double learning_rate() const;
  uint64_t steps_done() const { return steps_; }
  // A rejoining peer continues at the step its donors had reached (for the
  // learning-rate schedule and the step budget).
  void set_step(uint64_t s) { steps_ = s; }
  int64_t steps_per_epoch() const { return batches_.steps_per_epoch(); }
  // The host model with the current parameters, which the caller may
  // change (gossip's mix, a state install, model.init_from): on a backend
  // the next step uploads them. Only while the peer's actors are idle.
  const std::shared_ptr<Sequential>& model();
  // The same, read only (publish, state reads, evaluation of the mean,
  // export): no upload follows.
  const Sequential& synced_model();
  // On a backend: the parameters' backend buffer, current (host writes
  // uploaded) and with every op on it done, for gossip in backend mode on
  // another stream (compute_backend::another_stream). for_write: the caller
  // changes them (a mix), so the host mirror is stale afterwards. Null
  // without a backend. Only while the peer's actors are idle, as model().
  float* backend_params(bool for_write);
  compute_backend* backend() { return backend_.get(); }

  // Checkpoints (a resumed run): everything the next steps depend on:
  // parameters, optimizer state, steps done (hence the learning rate), the
  // position in this shard's batch order, and the train-loss mean since the
  // last evaluation. kind peer, replica = `peer`, stage 0 of 1; `extra`
  // starts with checkpoint_extra values of the trainer's own (trainer.cpp),
  // a caller may append its own after them. Not in it: the transcript log,
  // a cheat's random stream and replay position (attackers, verification).
  static constexpr size_t checkpoint_extra = 4;
  checkpoint make_checkpoint(uint16_t peer, uint64_t seed) const;
  // The same into `into`, reusing its vectors' storage (a segment boundary,
  // every K steps: no allocation once sized).
  void save_checkpoint(checkpoint& into, uint16_t peer, uint64_t seed) const;
  // The same as a view of the live state, nothing copied (a segment
  // boundary hashed and written from where it lies): the floats are the
  // model's and the optimizer's own, the extra values go into `extra`.
  // Valid until the next step or restore. False (nothing set) when the
  // state is not on the host: on a compute backend.
  bool view_checkpoint(checkpoint_view& into, std::array<uint64_t, checkpoint_extra>& extra, uint16_t peer,
                       uint64_t seed) const;
  // Loads one of this trainer's kind: the same model spec, parameter count,
  // optimizer kind and size, and learning-rate schedule length; otherwise
  // std::invalid_argument naming the mismatch, and nothing has changed.
  // The steps after it are then those an uninterrupted trainer would take.
  void restore(const checkpoint& c);

  // Step transcripts: from now on every step is recorded into `log` (after
  // backward, before the optimizer) and its commitment is last_commit().
  // `cheat` makes this peer an attacker that cheats on its compute (see
  // step_transcript.hpp); `replay_shard` is whose batches a replay cheat uses.
  // On a backend the committed layers' tensors are downloaded each step; a
  // cheat changes the host copies (what is committed) and uploads the
  // cheated gradients back (what the optimizer applies), as on the host.
  void enable_transcripts(std::shared_ptr<step_transcript_log> log, cheat_settings cheat,
                          std::vector<int64_t> replay_shard, uint64_t cheat_seed);
  const transcript_commit* last_commit() const { return commit_; }
  // Wall time spent in steps (without committing) and in committing.
  double step_seconds() const { return step_s_; }
  double commit_seconds() const { return commit_s_; }

 private:
  // The header fields save_checkpoint and view_checkpoint both set (C: checkpoint or checkpoint_view).
  template <class C>
  void fill_header(C& c, uint16_t peer, uint64_t seed) const;
  train_settings s_;
  std::string model_spec_;
  attack_settings attack_;
  std::shared_ptr<const Dataset> train_, test_;
  std::shared_ptr<Sequential> model_;
  std::unique_ptr<Optimizer> opt_;  // on a backend: checks checkpoints' optimizer state only
  std::unique_ptr<compute_backend> backend_;
  std::unique_ptr<backend_model> bm_;
  bool device_ahead_ = false;  // the backend's parameters are newer than the host's
  bool host_ahead_ = false;    // the host's may have been written since the last upload
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
  // On a backend with transcripts: each committed layer's 7 tensors, downloaded per step.
  std::vector<std::array<std::vector<float>, 7>> transcript_host_;
  std::vector<transcript_tensors> transcript_views_;
  // first_input: the first layer's X too, even when data-fed (a cheat reads it).
  const std::vector<transcript_tensors>& download_transcript(int64_t batch, bool first_input);
  void cheat_on_backend(int64_t batch);
  double step_s_ = 0, commit_s_ = 0;
};

}  // namespace murmur
