#include "actors/trainer.hpp"

#include <bit>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "gpu/cuda_backend.hpp"
#include "tensor/backend_model.hpp"
#include "tensor/loss.hpp"

namespace murmur {

trainer::trainer(const train_settings& s, const std::string& model_spec,
                 std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
                 std::shared_ptr<const Dataset> test, const attack_settings& attack)
    : s_(s), model_spec_(model_spec), attack_(attack), train_(std::move(train)), test_(std::move(test)),
      batches_(*train_, std::move(shard), s.batch, s.data_seed) {
  check_augment_fits(s_.augment, train_->sample_shape());
  model_ = std::shared_ptr<Sequential>(
      build_model(model_spec, train_->sample_shape(), train_->num_classes).release());
  model_->init(s_.init_seed);
  if (s_.optimizer == "adam")
    opt_ = make_adam(model_->param_count(), static_cast<float>(s_.momentum), 0.999f, 1e-8f,
                     static_cast<float>(s_.weight_decay));
  else
    opt_ = make_sgd(model_->param_count(), static_cast<float>(s_.momentum),
                    static_cast<float>(s_.weight_decay));
  if (s_.device.cuda) use_backend(make_cuda_backend(s_.device.index));
}

trainer::~trainer() = default;

void trainer::use_backend(std::unique_ptr<compute_backend> be) {
  const Sequential& host = synced_model();  // a backend before this one may be ahead
  backend_optimizer o;
  o.type = s_.optimizer == "adam" ? backend_optimizer::kind::adam : backend_optimizer::kind::sgd;
  o.momentum = static_cast<float>(s_.momentum);
  o.beta1 = static_cast<float>(s_.momentum);  // train.momentum is Adam's beta1 (as make_adam above)
  o.weight_decay = static_cast<float>(s_.weight_decay);
  // Built beside the current one, so that a failure (a layer the backend lacks) changes nothing.
  auto bm = std::make_unique<backend_model>(*be, host, o, s_.init_seed);
  bm->load_optimizer_state(bm_ ? bm_->save_optimizer_state() : opt_->save_state());
  bm_ = std::move(bm);  // the old model goes before the backend it lives on
  backend_ = std::move(be);
  device_ahead_ = host_ahead_ = false;
}

bool trainer::share_gradients(std::shared_ptr<std::vector<float>> buffer) {
  if (bm_) return false;
  model_->share_gradients(std::move(buffer));
  return true;
}

bool trainer::share_activations(trainer& owner) {
  if (bm_ || owner.bm_) return false;
  model_->share_activations(*owner.model_);
  if (&owner == this) return true;
  share_buffer(x_, owner.x_);
  share_buffer(dlogits_, owner.dlogits_);
  return true;
}

const Sequential& trainer::synced_model() {
  if (device_ahead_) {
    bm_->download_params(model_->params());
    device_ahead_ = false;
  }
  return *model_;
}

float* trainer::backend_params(bool for_write) {
  if (!bm_) return nullptr;
  if (host_ahead_) bm_->upload_params(model_->params());
  host_ahead_ = false;
  backend_->sync();
  if (for_write) device_ahead_ = true;
  return bm_->params();
}

const std::shared_ptr<Sequential>& trainer::model() {
  synced_model();
  if (bm_) host_ahead_ = true;
  return model_;
}

double trainer::learning_rate() const {
  if (!s_.cosine) return s_.lr;
  double t = std::min(1.0, static_cast<double>(steps_) / static_cast<double>(std::max<int64_t>(1, s_.total_steps)));
  return s_.lr * 0.5 * (1.0 + std::cos(M_PI * t));
}

const std::vector<transcript_tensors>& trainer::download_transcript(int64_t batch, bool first_input) {
  const auto& layers = log_->layers();
  transcript_host_.resize(layers.size());
  transcript_views_.resize(layers.size());
  for (size_t li = 0; li < layers.size(); ++li) {
    const committed_layer& sp = layers[li];
    const auto b = bm_->layer_buffers_of(sp.index);
    auto& h = transcript_host_[li];
    const auto fetch = [&](std::vector<float>& dst, const float* src, int64_t n) {
      dst.resize(static_cast<size_t>(n));
      backend_->download(dst.data(), src, n);
      return dst.data();
    };
    transcript_tensors& v = transcript_views_[li];
    v.batch = batch;
    // A data-fed layer commits its sample indices, not X; a cheat on it may still read X.
    if (!sp.data_input || (li == 0 && first_input)) fetch(h[0], b.x, batch * sp.in_row);
    v.x = sp.data_input ? nullptr : h[0].data();
    v.w = fetch(h[1], b.w, sp.out * sp.in);
    v.b = fetch(h[2], b.b, sp.out);
    v.y = fetch(h[3], b.y, batch * sp.out_row);
    v.dy = fetch(h[4], b.dy, batch * sp.out_row);
    v.dw = fetch(h[5], b.dw, sp.out * sp.in);
    v.db = fetch(h[6], b.db, sp.out);
  }
  return transcript_views_;
}

void trainer::cheat_on_backend(int64_t batch) {
  const committed_layer& target = log_->layers().front();
  auto& h = transcript_host_.front();
  apply_compute_cheat(cheat_, target, cheat_tensors{batch, h[0].data(), h[4].data(), h[3].data(), h[5].data(),
                                                    h[6].data()},
                      cheat_rng_);
  // What the optimizer applies is the cheated gradient, as on the host.
  bm_->upload_layer_grads(target.index, h[5].data(), h[6].data());
}

void trainer::enable_transcripts(std::shared_ptr<step_transcript_log> log, cheat_settings cheat,
                                 std::vector<int64_t> replay_shard, uint64_t cheat_seed) {
  log_ = std::move(log);
  cheat_ = cheat;
  cheat_rng_ = Rng(cheat_seed);
  if (cheat_.kind == compute_cheat::replay && !replay_shard.empty())
    replay_batches_ = std::make_unique<BatchIterator>(*train_, std::move(replay_shard), s_.batch, cheat_seed);
}

float trainer::step() {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const bool cheating = cheat_.active(steps_ + 1);
  BatchIterator& batches = cheating && replay_batches_ ? *replay_batches_ : batches_;
  batches.next(x_, y_);
  if (&batches == &batches_) ++drawn_;
  augment_batch(s_.augment, steps_ + 1, batches.last_indices(), x_, augment_scratch_);
  if (attack_.kind == attack_kind::label_flip && attack_.acts_at(steps_ + 1))
    for (auto& y : y_) y = static_cast<int32_t>(train_->num_classes) - 1 - y;
  // Dropout masks from (this peer's data seed, step): replayable, and a
  // resumed run draws what an uninterrupted one would.
  const uint64_t noise_seed = s_.data_seed ^ (0xd1b54a32d192ed03ULL * (steps_ + 1));
  // Forward and backward, on the backend or the host model.
  float loss = 0;
  if (bm_) {
    if (host_ahead_) bm_->upload_params(model_->params());
    host_ahead_ = false;
    bm_->set_noise_seed(noise_seed);
    loss = bm_->forward_backward(x_.data(), y_.data(), static_cast<int64_t>(y_.size()));
  } else {
    model_->set_noise_seed(noise_seed);
    loss = softmax_cross_entropy(model_->forward(x_), y_.data(), dlogits_);
    model_->backward(dlogits_);
  }
  // The commitment, between backward and the optimizer (a backend's
  // committed tensors come down once per step); its time is not step time.
  if (log_) {
    const auto t1 = clock::now();
    if (bm_) {
      const auto batch = static_cast<int64_t>(y_.size());
      const bool changes_tensors = cheating && cheat_.kind != compute_cheat::replay;  // replay: the batch was the cheat
      const auto& views = download_transcript(batch, changes_tensors);
      if (changes_tensors) cheat_on_backend(batch);
      commit_ = &log_->record(steps_ + 1, views, batches.last_indices());
    } else {
      if (cheating) apply_compute_cheat(cheat_, log_->layers().front(), *model_, cheat_rng_);
      commit_ = &log_->record(steps_ + 1, *model_, batches.last_indices());
    }
    const auto t2 = clock::now();
    commit_s_ += std::chrono::duration<double>(t2 - t1).count();
    step_s_ -= std::chrono::duration<double>(t2 - t1).count();
  }
  const auto lr = static_cast<float>(learning_rate());
  if (bm_) {
    bm_->optimizer_step(lr);
    device_ahead_ = true;
  } else {
    opt_->step(model_->params(), model_->grads(), lr);
  }
  step_s_ += std::chrono::duration<double>(clock::now() - t0).count();
  ++steps_;
  loss_sum_ += loss;
  ++loss_count_;
  return loss;
}

// extra: [0] the learning-rate schedule's length (total_steps), [1] batches
// drawn from the shard, [2] the bits of the train-loss sum (a double) and
// [3] its count, both since the last evaluation.
// A whole peer's checkpoint (one stage of all layers), into a checkpoint
// or a view of one alike.
template <class C>
void trainer::fill_header(C& c, uint16_t peer, uint64_t seed) const {
  c.kind = checkpoint_kind::peer;
  c.step = steps_;
  c.replica = peer;
  c.stage = 0;
  c.stages = 1;
  c.layer_begin = 0;
  c.layer_end = static_cast<uint16_t>(model_->layer_count());
  c.seed = seed;
  c.model_spec = model_spec_;
}

checkpoint trainer::make_checkpoint(uint16_t peer, uint64_t seed) const {
  checkpoint c;
  save_checkpoint(c, peer, seed);
  return c;
}

void trainer::save_checkpoint(checkpoint& c, uint16_t peer, uint64_t seed) const {
  fill_header(c, peer, seed);
  if (device_ahead_) {
    c.params.resize(static_cast<size_t>(model_->param_count()));
    bm_->download_params(c.params.data());
  } else {
    c.params.assign(model_->params(), model_->params() + model_->param_count());
  }
  if (bm_) {
    optimizer_state os = bm_->save_optimizer_state();
    c.opt_steps = os.steps;
    c.opt_state = std::move(os.values);
  } else {
    // Into the checkpoint's own vector: swapped in and out, no allocation once sized.
    optimizer_state os{0, std::move(c.opt_state)};
    opt_->save_state_into(os);
    c.opt_steps = os.steps;
    c.opt_state = std::move(os.values);
  }
  c.extra.assign({static_cast<uint64_t>(s_.total_steps), drawn_, std::bit_cast<uint64_t>(loss_sum_), loss_count_});
  static_assert(checkpoint_extra == 4);
}

bool trainer::view_checkpoint(checkpoint_view& c, std::array<uint64_t, checkpoint_extra>& extra, uint16_t peer,
                              uint64_t seed) const {
  if (bm_ || device_ahead_) return false;
  checkpoint_view v;
  if (!opt_->view_state(v.opt_steps, v.opt_state[0], v.opt_state[1])) return false;
  fill_header(v, peer, seed);
  v.params = std::span<const float>(model_->params(), static_cast<size_t>(model_->param_count()));
  // As save_checkpoint's extra.
  extra = {static_cast<uint64_t>(s_.total_steps), drawn_, std::bit_cast<uint64_t>(loss_sum_), loss_count_};
  v.extra = extra;
  c = v;
  return true;
}

void trainer::restore(const checkpoint& c) {
  auto mismatch = [](const std::string& what) {
    throw std::invalid_argument("checkpoint does not fit this peer: " + what);
  };
  if (c.kind != checkpoint_kind::peer) mismatch("it is not a data-parallel peer's checkpoint");
  if (c.stages != 1) mismatch("it is from stage " + std::to_string(c.stage) + " of a " + std::to_string(c.stages) +
                              "-stage pipeline");
  if (c.model_spec != model_spec_) mismatch("model '" + c.model_spec + "', this run has '" + model_spec_ + "'");
  if (c.params.size() != static_cast<size_t>(model_->param_count()))
    mismatch(std::to_string(c.params.size()) + " parameters, this model has " + std::to_string(model_->param_count()));
  if (c.extra.size() < checkpoint_extra)
    mismatch(std::to_string(c.extra.size()) + " extra values, a peer's checkpoint has at least " +
             std::to_string(checkpoint_extra));
  // The schedule is cosine over total_steps: another length would jump the learning rate.
  if (c.extra[0] != static_cast<uint64_t>(s_.total_steps))
    mismatch("a learning-rate schedule over " + std::to_string(c.extra[0]) + " steps, this run has " +
             std::to_string(s_.total_steps) + " (train.epochs, train.batch or the shard changed)");
  if (c.step > static_cast<uint64_t>(s_.total_steps))
    mismatch("step " + std::to_string(c.step) + " is past this run's " + std::to_string(s_.total_steps) + " steps");
  if (c.extra[1] > c.step)
    mismatch(std::to_string(c.extra[1]) + " batches drawn in " + std::to_string(c.step) + " steps");
  const double loss_sum = std::bit_cast<double>(c.extra[2]);
  if (!std::isfinite(loss_sum)) mismatch("non-finite train-loss sum");
  try {
    opt_->load_state(optimizer_state{c.opt_steps, c.opt_state});  // checks before it changes anything
  } catch (const std::invalid_argument& e) {
    mismatch(std::string("optimizer state (train.optimizer is ") + s_.optimizer + "): " + e.what());
  }
  std::copy(c.params.begin(), c.params.end(), model_->params());
  if (bm_) {
    bm_->load_optimizer_state(optimizer_state{c.opt_steps, c.opt_state});
    device_ahead_ = false;
    host_ahead_ = true;  // the next step uploads the parameters
  }
  steps_ = c.step;
  drawn_ = c.extra[1];
  batches_.seek(static_cast<int64_t>(drawn_));
  loss_sum_ = loss_sum;
  loss_count_ = c.extra[3];
  commit_ = nullptr;
}

eval_report trainer::evaluate(int64_t begin, int64_t count) {
  eval_report r;
  // On the host, chunks of the training batch (at least 64 rows): the
  // layers' activation buffers, grown by training, serve as they are; 500-row
  // chunks grew every peer's by about a parameter vector for this MLP.
  const int64_t size = test_->size(), chunk = bm_ ? 500 : std::max<int64_t>(64, s_.batch);
  const int64_t n = count > 0 && count < size ? count : size;
  const int64_t first = n < size ? (begin % size + size) % size : 0;
  double loss = 0;
  int64_t correct = 0;
  // The window [first, first + n) as at most two ranges of the test set.
  const std::array<std::array<int64_t, 2>, 2> ranges{{{first, std::min(size, first + n)},
                                                      {0, std::max<int64_t>(0, first + n - size)}}};
  if (bm_) {
    // On the backend: the current parameters are there (after an upload of host changes).
    if (host_ahead_) bm_->upload_params(model_->params());
    host_ahead_ = false;
    const int64_t sample = shape_numel(test_->sample_shape());
    for (const auto& [lo, hi] : ranges)
      for (int64_t b = lo; b < hi; b += chunk) {
        const int64_t e = std::min(hi, b + chunk);
        int64_t c = 0;
        loss += bm_->evaluate(test_->images.data() + b * sample, test_->labels.data() + b, e - b, &c);
        correct += c;
      }
  } else {
    model_->set_training(false);  // dropout off; restored below
    for (const auto& [lo, hi] : ranges)
      for (int64_t b = lo; b < hi; b += chunk) {
        int64_t e = std::min(hi, b + chunk);
        // Into the training batch's buffer (the next step refills it): the
        // model sees the input it was sized for, at the same address, so
        // no layer reshapes or allocates.
        if (x_.stale() || x_.ndim() == 0 || x_.dim(0) != e - b) {
          Shape shape = test_->sample_shape();
          shape.insert(shape.begin(), e - b);
          x_.resize(std::move(shape));
        }
        const int64_t sample = x_.numel() / (e - b);
        std::copy(test_->images.data() + b * sample, test_->images.data() + e * sample, x_.data());
        int64_t c = 0;
        loss += static_cast<double>(softmax_cross_entropy_eval(model_->forward(x_), test_->labels.data() + b, &c)) *
                static_cast<double>(e - b);
        correct += c;
      }
    model_->set_training(true);
  }
  r.test_loss = n ? static_cast<float>(loss / static_cast<double>(n)) : 0.f;
  r.test_accuracy = n ? static_cast<float>(static_cast<double>(correct) / static_cast<double>(n)) : 0.f;
  r.train_loss = loss_count_ ? static_cast<float>(loss_sum_ / static_cast<double>(loss_count_)) : 0.f;
  r.steps = steps_;
  loss_sum_ = 0;
  loss_count_ = 0;
  return r;
}

}  // namespace murmur
