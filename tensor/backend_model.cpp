#include "tensor/backend_model.hpp"

#include <stdexcept>
#include <string>

#include "tensor/backend_layers.hpp"

namespace murmur {

struct backend_model::impl {
  compute_backend& be;
  backend_optimizer opt;
  std::unique_ptr<backend_layers> layers;
  int64_t in_n = 0, classes = 0, nparams = 0, cap = 0;
  float* params = nullptr;
  float* grads = nullptr;
  std::unique_ptr<backend_optimizer_state> optim;
  float* xbuf = nullptr;
  int32_t* lbuf = nullptr;
  float* dlogits = nullptr;
  float* dw_scratch = nullptr;  // a conv layer's per-sample weight gradients

  impl(compute_backend& b, backend_optimizer o) : be(b), opt(o) {}
  ~impl() {
    layers.reset();
    be.free(params);
    be.free(grads);
    optim.reset();
    be.free(xbuf);
    be.free_int(lbuf);
    be.free(dlogits);
    be.free(dw_scratch);
  }

  // Buffers for `B` samples; grows only, so a batch size seen before
  // allocates nothing.
  void reserve(int64_t B) {
    if (B <= cap) return;
    be.sync();
    be.free(xbuf);
    be.free_int(lbuf);
    be.free(dlogits);
    be.free(dw_scratch);
    xbuf = dlogits = dw_scratch = nullptr;
    lbuf = nullptr;
    cap = 0;
    layers->reserve(B);
    xbuf = be.alloc(B * in_n);
    lbuf = be.alloc_int(B);
    dlogits = be.alloc(B * classes);
    dw_scratch = be.alloc(layers->scratch_floats(B));
    cap = B;
  }

  const float* forward_all(const float* x, int64_t B, bool training) {
    return layers->forward(x, B, training, params);
  }

  void check_labels(const int32_t* labels, int64_t B) const {
    for (int64_t r = 0; r < B; ++r)
      if (labels[r] < 0 || labels[r] >= classes)
        throw std::invalid_argument("backend_model: label " + std::to_string(labels[r]) + " of sample " +
                                    std::to_string(r) + " not in [0, " + std::to_string(classes) + ")");
  }

  void load_batch(const float* x, const int32_t* labels, int64_t B) {
    reserve(B);
    be.upload(xbuf, x, B * in_n);
    if (labels) be.upload_int(lbuf, labels, B);
  }
};

backend_model::backend_model(compute_backend& be, const Sequential& model, backend_optimizer opt,
                             uint64_t noise_seed)
    : be_(be), p_(std::make_unique<impl>(be, opt)) {
  impl& m = *p_;
  m.in_n = shape_numel(model.input_shape());
  const Shape out = model.output_shape();
  if (out.size() != 1)
    throw std::invalid_argument("backend_model: the model's output " + shape_str(out) +
                                " is not flat [classes] (softmax cross-entropy needs logits)");
  m.classes = out[0];
  m.layers = std::make_unique<backend_layers>(be, model, false);
  m.layers->reseed(noise_seed);

  m.nparams = model.param_count();
  m.params = be.alloc(m.nparams);
  m.grads = be.alloc(m.nparams);
  be.upload(m.params, model.params(), m.nparams);
  m.optim = std::make_unique<backend_optimizer_state>(be, opt, m.nparams);
  be.sync();
}

backend_model::~backend_model() = default;

void backend_model::set_noise_seed(uint64_t seed) { p_->layers->reseed(seed); }

float backend_model::train_step(const float* x, const int32_t* labels, int64_t batch, float lr) {
  const float loss = forward_backward(x, labels, batch);
  optimizer_step(lr);
  return loss;
}

float backend_model::forward_backward(const float* x, const int32_t* labels, int64_t batch) {
  impl& m = *p_;
  if (batch <= 0) throw std::invalid_argument("backend_model::train_step: empty batch");
  m.check_labels(labels, batch);
  m.load_batch(x, labels, batch);
  const float* logits = m.forward_all(m.xbuf, batch, true);
  const auto r = be_.softmax_cross_entropy(logits, m.lbuf, batch, m.classes, m.dlogits);
  m.layers->backward(m.dlogits, batch, m.params, m.grads, m.dw_scratch);
  return static_cast<float>(r.loss_sum / static_cast<double>(batch));
}

backend_model::layer_buffers backend_model::layer_buffers_of(size_t layer_index) const {
  const impl& m = *p_;
  using op = backend_layers::op;
  if (layer_index >= m.layers->size() ||
      (m.layers->layer(layer_index).type != op::linear && m.layers->layer(layer_index).type != op::conv))
    throw std::invalid_argument("backend_model::layer_buffers_of: layer " + std::to_string(layer_index) +
                                " is not a top-level linear or conv2d layer");
  const backend_layers::node& n = m.layers->layer(layer_index);
  const int64_t weights = n.type == op::linear ? n.out_f * n.in_f : n.o * n.c * n.k * n.k;
  layer_buffers b;
  b.x = n.x;
  b.y = n.y;
  b.dy = n.dy;
  b.w = m.params + n.poff;
  b.b = m.params + n.poff + weights;
  b.dw = m.grads + n.poff;
  b.db = m.grads + n.poff + weights;
  return b;
}

void backend_model::upload_layer_grads(size_t layer_index, const float* dw, const float* db) {
  const layer_buffers b = layer_buffers_of(layer_index);  // checks the layer
  const backend_layers::node& n = p_->layers->layer(layer_index);
  const int64_t weights = b.db - b.dw;  // the bias gradient follows the weight gradient
  be_.upload(p_->grads + n.poff, dw, weights);
  be_.upload(p_->grads + n.poff + weights, db, n.pcount - weights);
}

void backend_model::optimizer_step(float lr) { p_->optim->step(p_->params, p_->grads, lr); }

double backend_model::evaluate(const float* x, const int32_t* labels, int64_t batch, int64_t* correct) {
  impl& m = *p_;
  if (batch <= 0) return 0;
  m.check_labels(labels, batch);
  m.load_batch(x, labels, batch);
  const float* logits = m.forward_all(m.xbuf, batch, false);
  const auto r = be_.softmax_cross_entropy(logits, m.lbuf, batch, m.classes, nullptr);
  if (correct) *correct += r.correct;
  return r.loss_sum;
}

void backend_model::predict(const float* x, int64_t batch, float* logits) {
  impl& m = *p_;
  if (batch <= 0) return;
  m.load_batch(x, nullptr, batch);
  be_.download(logits, m.forward_all(m.xbuf, batch, false), batch * m.classes);
}

int64_t backend_model::param_count() const { return p_->nparams; }

void backend_model::download_params(float* host) const { be_.download(host, p_->params, p_->nparams); }

void backend_model::upload_params(const float* host) {
  be_.upload(p_->params, host, p_->nparams);
}

void backend_model::download_grads(float* host) const { be_.download(host, p_->grads, p_->nparams); }

float* backend_model::params() { return p_->params; }

optimizer_state backend_model::save_optimizer_state() const { return p_->optim->save(); }

void backend_model::load_optimizer_state(const optimizer_state& s) { p_->optim->load(s); }

}  // namespace murmur
