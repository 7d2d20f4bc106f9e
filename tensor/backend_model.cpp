#include "tensor/backend_model.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "tensor/activation.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/dropout.hpp"
#include "tensor/flatten.hpp"
#include "tensor/global_avg_pool.hpp"
#include "tensor/groupnorm.hpp"
#include "tensor/linear.hpp"
#include "tensor/maxpool2d.hpp"
#include "tensor/residual.hpp"

namespace murmur {

namespace {

// Sequential::set_noise_seed's and Residual::set_noise_seed's step between
// the streams of consecutive layers.
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

enum class op : uint8_t { linear, conv, maxpool, act, flatten, groupnorm, dropout, gap, residual };

// One layer of the plan, with its backend buffers (sized for `cap` samples).
struct node {
  op type = op::flatten;
  int64_t in_n = 0, out_n = 0;  // floats per sample in and out
  int64_t poff = 0, pcount = 0; // slice of the flat parameters
  // Hyper-parameters: linear (in_f, out_f); conv (c, o, k, stride, pad, h, w,
  // oh, ow); maxpool (c, h, w, k); groupnorm (c, groups); gap (c, h, w).
  int64_t in_f = 0, out_f = 0;
  int64_t c = 0, o = 0, k = 0, stride = 1, pad = 0, h = 0, w = 0, oh = 0, ow = 0, groups = 1;
  activation_kind act = activation_kind::relu;
  double p = 0;
  uint64_t seed = 0, calls = 0;  // dropout: as Dropout's seed_ and calls_
  bool masked = false;           // the last forward drew a mask
  bool need_dx = true;
  std::vector<node> body;        // residual
  // Buffers.
  float* y = nullptr;
  float* dx = nullptr;
  float* cols = nullptr;     // conv: [batch][c*k*k][oh*ow]
  float* xhat = nullptr;     // groupnorm
  float* rstd = nullptr;     // groupnorm: [batch * groups]
  float* mask = nullptr;     // dropout
  int32_t* argmax = nullptr; // maxpool
  const float* x = nullptr;  // the last forward's input (a neighbour's buffer)
  const float* dy = nullptr; // the last backward's output gradient (a neighbour's buffer)
};

}  // namespace

struct backend_model::impl {
  compute_backend& be;
  backend_optimizer opt;
  Shape input_shape;
  int64_t in_n = 0, classes = 0, nparams = 0, cap = 0;
  std::vector<node> plan;
  size_t backward_stop = 0;  // backward runs plan[backward_stop, n), as Sequential
  float* params = nullptr;
  float* grads = nullptr;
  float* opt_a = nullptr;  // SGD momentum buffer, or Adam's m
  float* opt_b = nullptr;  // Adam's v
  uint64_t steps = 0;
  bool sgd_first = true;   // the momentum buffer holds nothing yet
  float* xbuf = nullptr;
  int32_t* lbuf = nullptr;
  float* dlogits = nullptr;
  // Per-sample weight gradients of a conv layer, summed over the batch
  // (conv_chunk samples at a time).
  float* dw_scratch = nullptr;

  // Samples per chunk of a conv layer's weight gradient: the whole batch
  // while its per-sample gradients fit kScratchFloats, at least one.
  static constexpr int64_t kScratchFloats = int64_t{1} << 22;  // 16 MiB
  static int64_t conv_chunk(const node& n, int64_t B) {
    const int64_t per = n.o * n.c * n.k * n.k;
    return std::max<int64_t>(1, std::min<int64_t>(B, kScratchFloats / per));
  }
  int64_t scratch_size(const std::vector<node>& nodes, int64_t B) const {
    int64_t most = 0;
    for (const auto& n : nodes) {
      if (n.type == op::conv) most = std::max(most, conv_chunk(n, B) * n.o * n.c * n.k * n.k);
      most = std::max(most, scratch_size(n.body, B));
    }
    return most;
  }

  impl(compute_backend& b, backend_optimizer o) : be(b), opt(o) {}
  ~impl() {
    for (auto& n : plan) free_node(n);
    be.free(params);
    be.free(grads);
    be.free(opt_a);
    be.free(opt_b);
    be.free(xbuf);
    be.free_int(lbuf);
    be.free(dlogits);
    be.free(dw_scratch);
  }

  // ---- plan
  node make_node(const Layer& l, const Shape& in, int64_t poff) {
    node n;
    n.in_n = shape_numel(in);
    const Shape out = l.output_shape(in);
    n.out_n = shape_numel(out);
    n.poff = poff;
    n.pcount = l.param_count();
    if (auto* lin = dynamic_cast<const Linear*>(&l)) {
      n.type = op::linear;
      n.in_f = lin->in_features();
      n.out_f = lin->out_features();
    } else if (auto* conv = dynamic_cast<const Conv2d*>(&l)) {
      n.type = op::conv;
      const conv_geometry g = conv->geometry(in, 1);
      n.c = g.channels;
      n.o = conv->out_channels();
      n.k = g.kernel;
      n.stride = g.stride;
      n.pad = g.pad;
      n.h = g.height;
      n.w = g.width;
      n.oh = g.out_h;
      n.ow = g.out_w;
    } else if (auto* mp = dynamic_cast<const MaxPool2d*>(&l)) {
      n.type = op::maxpool;
      n.c = in[0];
      n.h = in[1];
      n.w = in[2];
      n.k = mp->kernel();
    } else if (dynamic_cast<const ReLU*>(&l)) {
      n.type = op::act;
      n.act = activation_kind::relu;
    } else if (dynamic_cast<const Sigmoid*>(&l)) {
      n.type = op::act;
      n.act = activation_kind::sigmoid;
    } else if (dynamic_cast<const Tanh*>(&l)) {
      n.type = op::act;
      n.act = activation_kind::tanh;
    } else if (dynamic_cast<const Flatten*>(&l)) {
      n.type = op::flatten;
    } else if (auto* gn = dynamic_cast<const GroupNorm*>(&l)) {
      n.type = op::groupnorm;
      n.c = gn->channels();
      n.groups = gn->groups();
    } else if (auto* dr = dynamic_cast<const Dropout*>(&l)) {
      n.type = op::dropout;
      n.p = dr->p();
    } else if (dynamic_cast<const GlobalAvgPool2d*>(&l)) {
      n.type = op::gap;
      n.c = in[0];
      n.h = in[1];
      n.w = in[2];
    } else if (auto* res = dynamic_cast<const Residual*>(&l)) {
      n.type = op::residual;
      Shape s = in;
      for (size_t i = 0; i < res->body_size(); ++i) {
        const Layer& b = res->body(i);
        n.body.push_back(make_node(b, s, poff + res->body_param_offset(i)));
        s = b.output_shape(s);
      }
    } else {
      throw std::invalid_argument("backend_model: layer '" + l.name() +
                                  "' is not supported on a compute backend (supported: linear, conv2d, maxpool2d, "
                                  "relu, sigmoid, tanh, flatten, groupnorm, dropout, gap, res[...])");
    }
    return n;
  }

  // As Sequential::set_noise_seed (and Residual's, for a body): layer i's
  // stream is seed + golden * (i + 1), and a dropout's count restarts.
  static void reseed(std::vector<node>& nodes, uint64_t seed) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      node& n = nodes[i];
      const uint64_t s = seed + kGolden * (i + 1);
      n.seed = s;
      n.calls = 0;
      reseed(n.body, s);
    }
  }

  // As Residual::set_need_input_grad: the flag reaches the body's first layer.
  static void set_need_dx(node& n, bool on) {
    n.need_dx = on;
    if (n.type == op::residual) {
      for (auto& b : n.body) b.need_dx = true;
      set_need_dx(n.body.front(), on);
    }
  }

  void free_node(node& n) {
    for (auto& b : n.body) free_node(b);
    be.free(n.y);
    be.free(n.dx);
    be.free(n.cols);
    be.free(n.xhat);
    be.free(n.rstd);
    be.free(n.mask);
    be.free_int(n.argmax);
    n.y = n.dx = n.cols = n.xhat = n.rstd = n.mask = nullptr;
    n.argmax = nullptr;
  }

  void alloc_node(node& n, int64_t B) {
    for (auto& b : n.body) alloc_node(b, B);
    switch (n.type) {
      case op::flatten:
        return;  // a view: its output is its input
      case op::conv:
        n.cols = be.alloc(B * n.c * n.k * n.k * n.oh * n.ow);
        break;
      case op::maxpool:
        n.argmax = be.alloc_int(B * n.out_n);
        break;
      case op::groupnorm:
        n.xhat = be.alloc(B * n.in_n);
        n.rstd = be.alloc(B * n.groups);
        break;
      case op::dropout:
        n.mask = be.alloc(B * n.in_n);
        break;
      default:
        break;
    }
    n.y = be.alloc(B * n.out_n);
    if (n.need_dx) n.dx = be.alloc(B * n.in_n);
  }

  // Buffers for `B` samples; grows only, so a batch size seen before
  // allocates nothing.
  void reserve(int64_t B) {
    if (B <= cap) return;
    be.sync();
    for (auto& n : plan) free_node(n);
    be.free(xbuf);
    be.free_int(lbuf);
    be.free(dlogits);
    be.free(dw_scratch);
    xbuf = dlogits = dw_scratch = nullptr;
    lbuf = nullptr;
    cap = 0;
    for (auto& n : plan) alloc_node(n, B);
    xbuf = be.alloc(B * in_n);
    lbuf = be.alloc_int(B);
    dlogits = be.alloc(B * classes);
    dw_scratch = be.alloc(scratch_size(plan, B));
    cap = B;
  }

  // ---- forward and backward
  const float* forward(node& n, const float* x, int64_t B, bool training) {
    n.x = x;
    float* w = params + n.poff;
    switch (n.type) {
      case op::linear:
        // Linear's order: rows seeded with the bias, the product added (beta 1).
        be.fill(n.y, 0.f, B * n.out_f);
        be.add_row_bias(n.y, w + n.out_f * n.in_f, B, n.out_f);
        be.gemm(false, true, B, n.out_f, n.in_f, 1.f, x, n.in_f, w, n.in_f, 1.f, n.y, n.out_f);
        return n.y;
      case op::conv: {
        // One im2col over the batch (its samples are B*C planes), one
        // product per sample, written straight into [B, O, OH*OW].
        const int64_t P = n.oh * n.ow, KK = n.c * n.k * n.k;
        be.im2col(x, B * n.c, n.h, n.w, n.k, n.stride, n.pad, n.cols);
        be.gemm_batched(false, false, n.o, P, KK, 1.f, w, KK, 0, n.cols, P, KK * P, 0.f, n.y, P, n.o * P, B);
        be.add_channel_bias(n.y, w + n.o * KK, B, n.o, P);
        return n.y;
      }
      case op::maxpool:
        be.maxpool_forward(x, B * n.c, n.h, n.w, n.k, n.y, n.argmax);
        return n.y;
      case op::act:
        be.activation_forward(n.act, x, n.y, B * n.in_n);
        return n.y;
      case op::flatten:
        return x;
      case op::groupnorm:
        be.groupnorm_forward(x, B, n.c, n.in_n / n.c, n.groups, w, w + n.c, n.y, n.xhat, n.rstd);
        return n.y;
      case op::dropout:
        n.masked = training && n.p > 0.0;
        if (!n.masked) return x;  // the identity
        be.dropout_forward(x, n.y, n.mask, B * n.in_n, n.p, dropout_key(n.seed, ++n.calls));
        return n.y;
      case op::gap:
        be.gap_forward(x, B * n.c, n.h * n.w, n.y);
        return n.y;
      case op::residual: {
        const float* h = x;
        for (auto& b : n.body) h = forward(b, h, B, training);
        be.add(x, h, n.y, B * n.in_n);
        return n.y;
      }
    }
    return nullptr;
  }

  // dL/dx of the node, or null when it need not produce one.
  const float* backward(node& n, const float* dy, int64_t B) {
    n.dy = dy;
    float* w = params + n.poff;
    float* g = grads + n.poff;
    switch (n.type) {
      case op::linear:
        be.gemm(true, false, n.out_f, n.in_f, B, 1.f, dy, n.out_f, n.x, n.in_f, 0.f, g, n.in_f);  // dW = dy^T x
        be.sum_rows(g + n.out_f * n.in_f, dy, B, n.out_f, 0.f);
        if (!n.need_dx) return nullptr;
        be.gemm(false, false, B, n.in_f, n.out_f, 1.f, dy, n.out_f, w, n.in_f, 0.f, n.dx, n.in_f);  // dx = dy W
        return n.dx;
      case op::conv: {
        const int64_t P = n.oh * n.ow, KK = n.c * n.k * n.k;
        be.sum_channels(g + n.o * KK, dy, B, n.o, P);
        // dW = sum_b dY_b cols_b^T: the per-sample products of a chunk of
        // samples in one batched product, then summed over the chunk (two
        // launches per chunk on a GPU, not one product per sample).
        const int64_t chunk = conv_chunk(n, B), per = n.o * KK;
        for (int64_t b0 = 0; b0 < B; b0 += chunk) {
          const int64_t cnt = std::min(chunk, B - b0);
          be.gemm_batched(false, true, n.o, KK, P, 1.f, dy + b0 * n.o * P, P, n.o * P, n.cols + b0 * KK * P, P,
                          KK * P, 0.f, dw_scratch, KK, per, cnt);
          be.sum_rows(g, dw_scratch, cnt, per, b0 ? 1.f : 0.f);
        }
        if (!n.need_dx) return nullptr;
        // dcols = W^T dY overwrites the columns, which backward no longer needs.
        be.gemm_batched(true, false, KK, P, n.o, 1.f, w, KK, 0, dy, P, n.o * P, 0.f, n.cols, P, KK * P, B);
        be.fill(n.dx, 0.f, B * n.in_n);
        be.col2im(n.cols, B * n.c, n.h, n.w, n.k, n.stride, n.pad, n.dx);
        return n.dx;
      }
      case op::maxpool:
        if (!n.need_dx) return nullptr;
        be.maxpool_backward(dy, n.argmax, B * n.c, n.h, n.w, n.k, n.dx);
        return n.dx;
      case op::act:
        if (!n.need_dx) return nullptr;
        be.activation_backward(n.act, n.y, dy, n.dx, B * n.in_n);
        return n.dx;
      case op::flatten:
        return n.need_dx ? dy : nullptr;
      case op::groupnorm:
        be.groupnorm_backward(dy, n.xhat, n.rstd, w, B, n.c, n.in_n / n.c, n.groups, n.need_dx ? n.dx : nullptr, g,
                              g + n.c);
        return n.need_dx ? n.dx : nullptr;
      case op::dropout:
        if (!n.need_dx) return nullptr;
        if (!n.masked) return dy;
        be.mul(dy, n.mask, n.dx, B * n.in_n);
        return n.dx;
      case op::gap:
        if (!n.need_dx) return nullptr;
        be.gap_backward(dy, B * n.c, n.h * n.w, n.dx);
        return n.dx;
      case op::residual: {
        const float* h = dy;
        for (size_t i = n.body.size(); i-- > 0;) h = backward(n.body[i], h, B);
        if (!n.need_dx) return nullptr;
        be.add(dy, h, n.dx, B * n.in_n);
        return n.dx;
      }
    }
    return nullptr;
  }

  const float* forward_all(const float* x, int64_t B, bool training) {
    const float* cur = x;
    for (auto& n : plan) cur = forward(n, cur, B, training);
    return cur;
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
  m.input_shape = model.input_shape();
  m.in_n = shape_numel(m.input_shape);
  const Shape out = model.output_shape();
  if (out.size() != 1)
    throw std::invalid_argument("backend_model: the model's output " + shape_str(out) +
                                " is not flat [classes] (softmax cross-entropy needs logits)");
  m.classes = out[0];
  for (size_t i = 0; i < model.layer_count(); ++i)
    m.plan.push_back(m.make_node(model.layer(i), model.layer_input_shape(i), model.layer_param_offset(i)));
  m.reseed(m.plan, noise_seed);
  // As Sequential::plan_backward without an input gradient.
  while (m.backward_stop < m.plan.size() && m.plan[m.backward_stop].pcount == 0) ++m.backward_stop;
  for (size_t i = 0; i < m.plan.size(); ++i) impl::set_need_dx(m.plan[i], i > m.backward_stop);

  m.nparams = model.param_count();
  m.params = be.alloc(m.nparams);
  m.grads = be.alloc(m.nparams);
  be.upload(m.params, model.params(), m.nparams);
  if (opt.type == backend_optimizer::kind::adam) {
    if (!(opt.beta1 >= 0.f && opt.beta1 < 1.f && opt.beta2 >= 0.f && opt.beta2 < 1.f && opt.eps >= 0.f))
      throw std::invalid_argument("backend_model: adam needs 0 <= beta < 1 and eps >= 0");
    m.opt_a = be.alloc(m.nparams);
    m.opt_b = be.alloc(m.nparams);
  } else if (opt.momentum != 0.f) {
    m.opt_a = be.alloc(m.nparams);
  }
  be.sync();
}

backend_model::~backend_model() = default;

void backend_model::set_noise_seed(uint64_t seed) { impl::reseed(p_->plan, seed); }

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
  const float* g = m.dlogits;
  for (size_t i = m.plan.size(); i-- > m.backward_stop;) g = m.backward(m.plan[i], g, batch);
  return static_cast<float>(r.loss_sum / static_cast<double>(batch));
}

backend_model::layer_buffers backend_model::layer_buffers_of(size_t layer_index) const {
  const impl& m = *p_;
  if (layer_index >= m.plan.size() || (m.plan[layer_index].type != op::linear && m.plan[layer_index].type != op::conv))
    throw std::invalid_argument("backend_model::layer_buffers_of: layer " + std::to_string(layer_index) +
                                " is not a top-level linear or conv2d layer");
  const node& n = m.plan[layer_index];
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
  const node& n = p_->plan[layer_index];
  const int64_t weights = b.db - b.dw;  // the bias gradient follows the weight gradient
  be_.upload(p_->grads + n.poff, dw, weights);
  be_.upload(p_->grads + n.poff + weights, db, n.pcount - weights);
}

void backend_model::optimizer_step(float lr) {
  impl& m = *p_;
  ++m.steps;
  if (m.opt.type == backend_optimizer::kind::adam) {
    be_.adam_step(m.params, m.grads, m.opt_a, m.opt_b, m.nparams, lr, m.opt.beta1, m.opt.beta2, m.opt.eps,
                  m.opt.weight_decay, m.steps);
  } else {
    be_.sgd_step(m.params, m.grads, m.opt_a, m.nparams, lr, m.opt.momentum, m.opt.weight_decay, m.sgd_first);
    if (m.opt.momentum != 0.f) m.sgd_first = false;
  }
}

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

optimizer_state backend_model::save_optimizer_state() const {
  const impl& m = *p_;
  optimizer_state s;
  s.steps = m.steps;
  const auto n = static_cast<size_t>(m.nparams);
  if (m.opt.type == backend_optimizer::kind::adam) {
    s.values.resize(2 * n);
    be_.download(s.values.data(), m.opt_a, m.nparams);
    be_.download(s.values.data() + n, m.opt_b, m.nparams);
  } else if (m.opt_a && !m.sgd_first) {
    s.values.resize(n);
    be_.download(s.values.data(), m.opt_a, m.nparams);
  }
  return s;
}

void backend_model::load_optimizer_state(const optimizer_state& s) {
  impl& m = *p_;
  const auto n = static_cast<size_t>(m.nparams);
  if (m.opt.type == backend_optimizer::kind::adam) {
    if (s.values.size() != 2 * n)
      throw std::invalid_argument("adam state: " + std::to_string(s.values.size()) + " values, expected " +
                                  std::to_string(2 * n));
    be_.upload(m.opt_a, s.values.data(), m.nparams);
    be_.upload(m.opt_b, s.values.data() + n, m.nparams);
  } else {
    const size_t want = (m.opt_a && s.steps > 0) ? n : 0;
    if (s.values.size() != want)
      throw std::invalid_argument("sgd state: " + std::to_string(s.values.size()) + " values after " +
                                  std::to_string(s.steps) + " steps, expected " + std::to_string(want));
    if (want) be_.upload(m.opt_a, s.values.data(), m.nparams);
    m.sgd_first = s.steps == 0;
  }
  m.steps = s.steps;
  be_.sync();
}

}  // namespace murmur
