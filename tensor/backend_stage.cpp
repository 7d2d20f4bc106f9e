#include "tensor/backend_stage.hpp"

#include <stdexcept>
#include <string>

namespace murmur {

backend_stage::backend_stage(compute_backend& be, const Sequential& model, backend_optimizer opt, bool first,
                             bool last, size_t slots)
    : be_(be), first_(first), last_(last) {
  if (slots == 0) throw std::invalid_argument("backend_stage: no slot for a micro-batch");
  const Shape out = model.output_shape();
  if (last && out.size() != 1)
    throw std::invalid_argument("backend_stage: the last stage's output " + shape_str(out) +
                                " is not flat [classes] (softmax cross-entropy needs logits)");
  in_n_ = shape_numel(model.input_shape());
  out_n_ = shape_numel(out);
  nparams_ = model.param_count();
  slots_.resize(slots);
  // Plans first: an unsupported layer throws before anything is allocated.
  for (auto& s : slots_) s.layers = std::make_unique<backend_layers>(be, model, !first);
  params_ = be.alloc(nparams_);
  grads_ = be.alloc(nparams_);
  acc_ = be.alloc(nparams_);
  be.upload(params_, model.params(), nparams_);
  optim_ = std::make_unique<backend_optimizer_state>(be, opt, nparams_);
  be.sync();
}

backend_stage::~backend_stage() {
  be_.sync();
  for (auto& s : slots_) free_slot(s);
  optim_.reset();
  be_.free(params_);
  be_.free(grads_);
  be_.free(acc_);
  be_.free(dw_scratch_);
}

void backend_stage::free_slot(slot& s) {
  s.layers.reset();
  be_.free(s.x);
  be_.free(s.dy);
  be_.free(s.dlogits);
  be_.free(s.raw);
  be_.free_int(s.labels);
  s.x = s.dy = s.dlogits = s.raw = nullptr;
  s.labels = nullptr;
}

backend_stage::slot& backend_stage::at(size_t k, const char* what) {
  if (k >= slots_.size())
    throw std::invalid_argument(std::string("backend_stage::") + what + ": slot " + std::to_string(k) + " of " +
                                std::to_string(slots_.size()));
  return slots_[k];
}

void backend_stage::forward(size_t k, const float* x, int64_t batch, uint64_t noise_seed) {
  slot& s = at(k, "forward");
  if (batch <= 0) throw std::invalid_argument("backend_stage::forward: empty micro-batch");
  if (batch > s.cap) {
    // This slot's first micro-batch of this size: its buffers, once.
    be_.sync();
    be_.free(s.x);
    be_.free(s.dy);
    be_.free(s.dlogits);
    be_.free(s.raw);
    be_.free_int(s.labels);
    s.x = s.dy = s.dlogits = s.raw = nullptr;
    s.labels = nullptr;
    s.cap = 0;
    s.layers->reserve(batch);
    s.x = be_.alloc(batch * in_n_);
    if (last_) {
      s.dlogits = be_.alloc(batch * out_n_);
      s.raw = be_.alloc(batch * out_n_);
      s.labels = be_.alloc_int(batch);
    } else {
      s.dy = be_.alloc(batch * out_n_);
    }
    s.cap = batch;
    const int64_t scratch = s.layers->scratch_floats(batch);
    if (scratch > scratch_n_) {
      be_.free(dw_scratch_);
      dw_scratch_ = be_.alloc(scratch);
      scratch_n_ = scratch;
    }
  }
  s.batch = batch;
  s.dx = nullptr;
  be_.upload(s.x, x, batch * in_n_);
  s.layers->reseed(noise_seed);
  s.out = s.layers->forward(s.x, batch, true, params_);
}

void backend_stage::download_output(size_t k, float* host) {
  slot& s = at(k, "download_output");
  if (last_ || !s.out) throw std::logic_error("backend_stage::download_output: no forward output to hand on");
  be_.download(host, s.out, s.batch * out_n_);
}

float backend_stage::loss(size_t k, const int32_t* labels, float share) {
  slot& s = at(k, "loss");
  if (!last_ || !s.out) throw std::logic_error("backend_stage::loss: only the last stage, after a forward");
  for (int64_t r = 0; r < s.batch; ++r)
    if (labels[r] < 0 || labels[r] >= out_n_)
      throw std::invalid_argument("backend_stage: label " + std::to_string(labels[r]) + " of sample " +
                                  std::to_string(r) + " not in [0, " + std::to_string(out_n_) + ")");
  be_.upload_int(s.labels, labels, s.batch);
  const auto r = be_.softmax_cross_entropy(s.out, s.labels, s.batch, out_n_, s.raw);
  // dlogits = share * raw, rounded once as the host stage's `g *= share`.
  be_.fill(s.dlogits, 0.f, s.batch * out_n_);
  be_.axpy(share, s.raw, s.dlogits, s.batch * out_n_);
  return static_cast<float>(r.loss_sum / static_cast<double>(s.batch));
}

void backend_stage::backward(size_t k, const float* dy) {
  slot& s = at(k, "backward");
  if (!s.out) throw std::logic_error("backend_stage::backward: before a forward");
  const float* g = s.dlogits;
  if (!last_) {
    if (!dy) throw std::invalid_argument("backend_stage::backward: no output gradient");
    be_.upload(s.dy, dy, s.batch * out_n_);
    g = s.dy;
  }
  s.dx = s.layers->backward(g, s.batch, params_, grads_, dw_scratch_);
  // acc += grads, rounded as the host stage's `acc += g`.
  be_.axpy(1.f, grads_, acc_, nparams_);
}

void backend_stage::download_input_grad(size_t k, float* host) {
  slot& s = at(k, "download_input_grad");
  if (first_ || !s.dx) throw std::logic_error("backend_stage::download_input_grad: no input gradient (stage 0, or "
                                              "before a backward)");
  be_.download(host, s.dx, s.batch * in_n_);
}

void backend_stage::optimizer_step(float lr) {
  optim_->step(params_, acc_, lr);
  be_.fill(acc_, 0.f, nparams_);
}

void backend_stage::clear_gradients() { be_.fill(acc_, 0.f, nparams_); }

void backend_stage::download_params(float* host) const { be_.download(host, params_, nparams_); }

void backend_stage::upload_params(const float* host) { be_.upload(params_, host, nparams_); }

void backend_stage::download_grads(float* host) const { be_.download(host, acc_, nparams_); }

}  // namespace murmur
