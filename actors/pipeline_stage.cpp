#include "actors/pipeline_stage.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "gpu/cuda_backend.hpp"
#include "tensor/backend_stage.hpp"
#include "tensor/loss.hpp"

namespace murmur {

namespace {

bool same_shape(const std::vector<uint32_t>& wire, const Shape& s) {
  if (wire.size() != s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (static_cast<int64_t>(wire[i]) != s[i]) return false;
  return true;
}

std::vector<uint32_t> to_wire(const Shape& s) { return std::vector<uint32_t>(s.begin(), s.end()); }

Shape with_batch(uint32_t b, const Shape& per_sample) {
  Shape s;
  s.reserve(per_sample.size() + 1);
  s.push_back(b);
  s.insert(s.end(), per_sample.begin(), per_sample.end());
  return s;
}

}  // namespace

pipeline_stage::pipeline_stage(const stage_settings& s, std::shared_ptr<const Dataset> train,
                               std::vector<int64_t> shard)
    : s_(s), train_(std::move(train)) {
  if (s_.stages < 1 || s_.stage >= s_.stages) throw std::invalid_argument("pipeline stage: stage out of range");
  if (s_.microbatches < 1 || s_.microbatches > max_microbatches)
    throw std::invalid_argument("pipeline stage: micro-batches out of range");
  classes_ = train_->num_classes;
  master_ = std::shared_ptr<Sequential>(
      build_stage(s_.model_spec, train_->sample_shape(), classes_, s_.train.init_seed, s_.range).release());
  if (s_.initial_params) {
    if (static_cast<int64_t>(s_.initial_params->size()) != master_->param_count())
      throw std::invalid_argument("pipeline stage: " + std::to_string(s_.initial_params->size()) +
                                  " initial parameters for a stage of " + std::to_string(master_->param_count()));
    std::copy(s_.initial_params->begin(), s_.initial_params->end(), master_->params());
  }
  master_->set_need_input_grad(s_.stage > 0);
  in_shape_ = master_->input_shape();
  out_shape_ = master_->output_shape();
  if (in_shape_.size() > max_stage_dims || out_shape_.size() > max_stage_dims)
    throw std::invalid_argument("pipeline stage: a cut between layers whose activation has over " +
                                std::to_string(max_stage_dims) + " dimensions per sample");
  flops_per_sample_ = master_->forward_flops();
  for (size_t i = 1; i <= master_->layer_count(); ++i)
    stats_.activation_bytes_per_sample += 4 * shape_numel(master_->layer_input_shape(i));
  const auto n = master_->param_count();
  if (s_.train.optimizer == "adam")
    opt_ = make_adam(n, static_cast<float>(s_.train.momentum), 0.999f, 1e-8f,
                     static_cast<float>(s_.train.weight_decay));
  else
    opt_ = make_sgd(n, static_cast<float>(s_.train.momentum), static_cast<float>(s_.train.weight_decay));
  grad_acc_.assign(static_cast<size_t>(n), 0.f);
  if (s_.stage == 0) {
    check_augment_fits(s_.train.augment, train_->sample_shape());
    batches_ = std::make_unique<BatchIterator>(*train_, std::move(shard), s_.train.batch, s_.train.data_seed);
  }
  slots_.reserve(s_.microbatches);
  slots_.emplace_back().model = master_;
  if (s_.train.device.cuda) use_backend(make_cuda_backend(s_.train.device.index));
}

pipeline_stage::~pipeline_stage() = default;

void pipeline_stage::use_backend(std::unique_ptr<compute_backend> be) {
  if (mb_count_ != 0) throw std::logic_error("pipeline_stage::use_backend: micro-batches are in flight");
  backend_optimizer o;
  o.type = s_.train.optimizer == "adam" ? backend_optimizer::kind::adam : backend_optimizer::kind::sgd;
  o.momentum = static_cast<float>(s_.train.momentum);
  o.beta1 = static_cast<float>(s_.train.momentum);  // train.momentum is Adam's beta1 (as make_adam above)
  o.weight_decay = static_cast<float>(s_.train.weight_decay);
  // Built beside the current one, so that a failure (a layer the backend
  // lacks) changes nothing. master_ is current between steps.
  auto bs = std::make_unique<backend_stage>(*be, *master_, o, s_.stage == 0, s_.stage + 1 == s_.stages,
                                            s_.microbatches);
  bs->load_optimizer_state(bs_ ? bs_->save_optimizer_state() : opt_->save_state());
  bs_ = std::move(bs);  // the old stage goes before the backend it lives on
  backend_ = std::move(be);
  host_ahead_ = false;
  // The host copies of the layers are not used on a backend.
  slots_.resize(1);
}

double pipeline_stage::learning_rate() const {
  if (!s_.train.cosine) return s_.train.lr;
  const double t = std::min(1.0, static_cast<double>(step_) /
                                     static_cast<double>(std::max<int64_t>(1, s_.train.total_steps)));
  return s_.train.lr * 0.5 * (1.0 + std::cos(M_PI * t));
}

double pipeline_stage::take_mean_loss() {
  const double m = loss_steps_since_ ? loss_since_ / static_cast<double>(loss_steps_since_)
                                     : std::numeric_limits<double>::quiet_NaN();
  loss_since_ = 0;
  loss_steps_since_ = 0;
  return m;
}

bool pipeline_stage::accept(stage_tensor&& m) {
  const bool from_prev = !m.gradient && s_.stage > 0 && m.stage + 1 == s_.stage;
  const bool from_next = m.gradient && m.stage == s_.stage + 1 && m.stage < s_.stages;
  if (m.replica != s_.replica || !(from_prev || from_next)) return ++stats_.rejected, false;
  if (m.generation != generation_ || m.step < step_ + 1) return ++stats_.stale, false;
  if (m.step > step_ + 1 || finished()) return ++stats_.rejected, false;
  const uint32_t count = std::min<uint32_t>(s_.microbatches, m.total);
  if (mb_count_ != 0 && m.total != total_) return ++stats_.rejected, false;
  if (m.microbatch >= count) return ++stats_.rejected, false;
  const auto b = static_cast<uint32_t>(uint64_t{m.microbatch + 1u} * m.total / count -
                                       uint64_t{m.microbatch} * m.total / count);
  if (m.batch != b || !same_shape(m.shape, m.gradient ? out_shape_ : in_shape_)) return ++stats_.rejected, false;
  if (!m.gradient) {
    if (m.labels.size() != b) return ++stats_.rejected, false;
    for (int32_t y : m.labels)
      if (y < 0 || y >= classes_) return ++stats_.rejected, false;
  }
  auto key = std::make_pair(m.microbatch, m.gradient);
  if (inbox_.count(key)) return ++stats_.rejected, false;
  inbox_.emplace(key, std::move(m));
  return true;
}

bool pipeline_stage::ready() const {
  if (finished()) return false;
  if (mb_count_ == 0) return s_.stage == 0 || inbox_.count({uint16_t{0}, false}) > 0;
  const pipeline_op& op = ops_[next_op_];
  if (!op.backward) return s_.stage == 0 || inbox_.count({op.microbatch, false}) > 0;
  return s_.stage + 1 == s_.stages || inbox_.count({op.microbatch, true}) > 0;
}

void pipeline_stage::begin_step(uint32_t total) {
  total_ = total;
  mb_count_ = std::min<uint32_t>(s_.microbatches, total);
  auto it = schedules_.find(mb_count_);
  if (it == schedules_.end())
    it = schedules_.emplace(mb_count_, stage_schedule(s_.schedule, s_.stages, s_.stage, mb_count_)).first;
  ops_ = it->second;
  next_op_ = 0;
  slot_of_.assign(mb_count_, -1);
  loss_acc_ = 0;
}

int pipeline_stage::take_slot() {
  size_t used = 0;
  int free = -1;
  for (size_t k = 0; k < slots_.size(); ++k) {
    if (slots_[k].busy) ++used;
    else if (free < 0) free = static_cast<int>(k);
  }
  if (free < 0 && bs_) {
    // backend_stage has a slot per possible micro-batch.
    slots_.emplace_back();
    free = static_cast<int>(slots_.size() - 1);
  } else if (free < 0) {
    // A new copy of the layers.
    auto copy = build_stage_layers(s_.model_spec, train_->sample_shape(), classes_, s_.range);
    copy->set_need_input_grad(s_.stage > 0);
    // The master's weights, and its gradient buffer as scratch: backwards
    // run one at a time and are added up at once.
    copy->share_parameters(*master_);
    slots_.emplace_back().model = std::shared_ptr<Sequential>(copy.release());
    free = static_cast<int>(slots_.size() - 1);
  }
  stats_.peak_slots = std::max(stats_.peak_slots, used + 1);
  slots_[static_cast<size_t>(free)].busy = true;
  return free;
}

pipeline_stage::op_result pipeline_stage::run_next() {
  if (!ready()) throw std::logic_error("pipeline_stage::run_next: the next op's input has not arrived");
  if (mb_count_ == 0) {
    if (bs_ && host_ahead_) bs_->upload_params(master_->params());
    host_ahead_ = false;
    if (s_.stage == 0) {
      const auto b = static_cast<uint32_t>(batches_->next(batch_x_, batch_y_));
      augment_batch(s_.train.augment, step_ + 1, batches_->last_indices(), batch_x_, augment_scratch_);
      begin_step(b);
    }
    else begin_step(inbox_.at({uint16_t{0}, false}).total);
  }
  const pipeline_op op = ops_[next_op_++];
  op_result r = op.backward ? backward(op.microbatch) : forward(op.microbatch);
  ++stats_.ops;
  stats_.busy_seconds += r.seconds;
  if (next_op_ == ops_.size()) {
    if (bs_) {
      bs_->optimizer_step(static_cast<float>(learning_rate()));
      bs_->download_params(master_->params());  // the host mirror, current at the boundary
    } else {
      opt_->step(master_->params(), grad_acc_.data(), static_cast<float>(learning_rate()));
      std::fill(grad_acc_.begin(), grad_acc_.end(), 0.f);
    }
    ++step_;
    if (s_.stage + 1 == s_.stages) {
      stats_.loss_sum += loss_acc_;
      ++stats_.loss_steps;
      loss_since_ += loss_acc_;
      ++loss_steps_since_;
    }
    mb_count_ = 0;
    total_ = 0;
    r.step_done = true;
  }
  return r;
}

pipeline_stage::op_result pipeline_stage::forward(uint16_t mb) {
  const int k = take_slot();
  slot_of_[mb] = k;
  slot& sl = slots_[static_cast<size_t>(k)];
  const uint32_t b = mb_size(mb);
  // The input: stage 0's micro-batch of its batch, or the previous stage's
  // activation (kept in its message until the forward has read it).
  const float* x = nullptr;
  decltype(inbox_)::node_type node;
  if (s_.stage == 0) {
    const int64_t per = shape_numel(in_shape_), first = mb_begin(mb);
    x = batch_x_.data() + first * per;
    sl.labels.assign(batch_y_.begin() + first, batch_y_.begin() + first + b);
  } else {
    node = inbox_.extract({mb, false});
    x = node.mapped().values.data();
    sl.labels = std::move(node.mapped().labels);
  }
  // Dropout masks from (data seed, stage, step, micro-batch): deterministic,
  // and distinct for each copy of the layers in flight.
  const uint64_t noise_seed = s_.train.data_seed ^ (0xd1b54a32d192ed03ULL * (step_ + 1)) ^
                              (0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(s_.stage) * 65536 + mb + 1));
  const Tensor* y = nullptr;
  if (bs_) {
    bs_->forward(static_cast<size_t>(k), x, b, noise_seed);
  } else {
    ensure_shape(sl.input, with_batch(b, in_shape_));
    std::copy(x, x + sl.input.numel(), sl.input.data());
    sl.model->set_noise_seed(noise_seed);
    y = &sl.model->forward(sl.input);
  }
  op_result r;
  r.seconds = 2.0 * static_cast<double>(flops_per_sample_) * b / (s_.gflops * 1e9);
  if (s_.stage + 1 == s_.stages) {
    // The batch loss is the mean over all samples: this micro-batch's share.
    const float share = static_cast<float>(b) / static_cast<float>(total_);
    float loss = 0;
    if (bs_) {
      loss = bs_->loss(static_cast<size_t>(k), sl.labels.data(), share);
    } else {
      loss = softmax_cross_entropy(*y, sl.labels.data(), sl.dlogits);
      for (float& g : sl.dlogits) g *= share;
    }
    loss_acc_ += static_cast<double>(loss) * share;
    return r;
  }
  stage_tensor out;
  out.gradient = false;
  out.replica = s_.replica;
  out.stage = s_.stage;
  out.step = step_ + 1;
  out.generation = generation_;
  out.microbatch = mb;
  out.batch = b;
  out.total = total_;
  out.shape = to_wire(out_shape_);
  out.labels = sl.labels;
  if (bs_) {
    out.values.resize(static_cast<size_t>(b * shape_numel(out_shape_)));
    bs_->download_output(static_cast<size_t>(k), out.values.data());
  } else {
    out.values.assign(y->begin(), y->end());
  }
  r.out = std::move(out);
  return r;
}

pipeline_stage::op_result pipeline_stage::backward(uint16_t mb) {
  const int k = slot_of_[mb];
  if (k < 0) throw std::logic_error("pipeline_stage: backward before forward");
  slot& sl = slots_[static_cast<size_t>(k)];
  const uint32_t b = mb_size(mb);
  // The received gradient must outlive the copy of dL/dx below: a layer
  // such as Flatten hands back a view of its incoming gradient.
  decltype(inbox_)::node_type node;
  const bool last = s_.stage + 1 == s_.stages;
  if (!last) node = inbox_.extract({mb, true});
  if (bs_) {
    bs_->backward(static_cast<size_t>(k), last ? nullptr : node.mapped().values.data());
  } else {
    if (last) {
      sl.model->backward(sl.dlogits);
    } else {
      Tensor dy = Tensor::view(node.mapped().values.data(), with_batch(b, out_shape_));
      sl.model->backward(dy);
    }
    const float* g = sl.model->grads();
    for (size_t i = 0; i < grad_acc_.size(); ++i) grad_acc_[i] += g[i];
  }
  op_result r;
  r.seconds = 4.0 * static_cast<double>(flops_per_sample_) * b / (s_.gflops * 1e9);
  if (s_.stage > 0) {
    stage_tensor out;
    out.gradient = true;
    out.replica = s_.replica;
    out.stage = s_.stage;
    out.step = step_ + 1;
    out.generation = generation_;
    out.microbatch = mb;
    out.batch = b;
    out.total = total_;
    out.shape = to_wire(in_shape_);
    if (bs_) {
      out.values.resize(static_cast<size_t>(b * shape_numel(in_shape_)));
      bs_->download_input_grad(static_cast<size_t>(k), out.values.data());
    } else {
      const Tensor& dx = sl.model->input_grad();
      out.values.assign(dx.begin(), dx.end());
    }
    r.out = std::move(out);
  }
  sl.busy = false;
  slot_of_[mb] = -1;
  return r;
}

checkpoint pipeline_stage::make_checkpoint(uint64_t seed) const {
  checkpoint c;
  c.kind = checkpoint_kind::stage;
  c.step = step_;
  c.replica = s_.replica;
  c.stage = s_.stage;
  c.stages = s_.stages;
  c.layer_begin = static_cast<uint16_t>(s_.range.begin);
  c.layer_end = static_cast<uint16_t>(s_.range.end);
  c.seed = seed;
  c.model_spec = s_.model_spec;
  c.params.assign(master_->params(), master_->params() + master_->param_count());
  optimizer_state os = bs_ ? bs_->save_optimizer_state() : opt_->save_state();
  c.opt_steps = os.steps;
  c.opt_state = std::move(os.values);
  c.extra = {generation_};
  return c;
}

void pipeline_stage::restore(const checkpoint& c, uint32_t generation) {
  auto mismatch = [](const std::string& what) {
    throw std::invalid_argument("checkpoint does not fit this stage: " + what);
  };
  if (c.kind != checkpoint_kind::stage) mismatch("it is not a pipeline stage's checkpoint");
  if (c.model_spec != s_.model_spec) mismatch("model '" + c.model_spec + "', this run has '" + s_.model_spec + "'");
  if (c.stage != s_.stage || c.stages != s_.stages)
    mismatch("stage " + std::to_string(c.stage) + " of " + std::to_string(c.stages) + ", this is stage " +
             std::to_string(s_.stage) + " of " + std::to_string(s_.stages));
  if (c.layer_begin != s_.range.begin || c.layer_end != s_.range.end)
    mismatch("layers [" + std::to_string(c.layer_begin) + ", " + std::to_string(c.layer_end) + "), this stage has [" +
             std::to_string(s_.range.begin) + ", " + std::to_string(s_.range.end) + ")");
  if (c.params.size() != static_cast<size_t>(master_->param_count()))
    mismatch(std::to_string(c.params.size()) + " parameters, this stage has " +
             std::to_string(master_->param_count()));
  if (bs_) bs_->load_optimizer_state(optimizer_state{c.opt_steps, c.opt_state});
  else opt_->load_state(optimizer_state{c.opt_steps, c.opt_state});
  std::copy(c.params.begin(), c.params.end(), master_->params());
  if (bs_) {
    bs_->upload_params(master_->params());
    bs_->clear_gradients();
  }
  host_ahead_ = false;
  step_ = c.step;
  generation_ = generation;
  mb_count_ = 0;
  total_ = 0;
  next_op_ = 0;
  inbox_.clear();
  for (auto& sl : slots_) sl.busy = false;
  slot_of_.clear();
  std::fill(grad_acc_.begin(), grad_acc_.end(), 0.f);
  loss_acc_ = 0;
  if (batches_) batches_->seek(static_cast<int64_t>(step_));
}

}  // namespace murmur
