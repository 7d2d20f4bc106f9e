#include "tensor/backend_layers.hpp"

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

using node = backend_layers::node;
using op = backend_layers::op;

// Sequential::set_noise_seed's and Residual::set_noise_seed's step between
// the streams of consecutive layers.
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// Samples per chunk of a conv layer's weight gradient: the whole batch
// while its per-sample gradients fit kScratchFloats, at least one.
constexpr int64_t kScratchFloats = int64_t{1} << 22;  // 16 MiB
int64_t conv_chunk(const node& n, int64_t B) {
  const int64_t per = n.o * n.c * n.k * n.k;
  return std::max<int64_t>(1, std::min<int64_t>(B, kScratchFloats / per));
}
int64_t scratch_size(const std::vector<node>& nodes, int64_t B) {
  int64_t most = 0;
  for (const auto& n : nodes) {
    if (n.type == op::conv) most = std::max(most, conv_chunk(n, B) * n.o * n.c * n.k * n.k);
    most = std::max(most, scratch_size(n.body, B));
  }
  return most;
}

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
void reseed_nodes(std::vector<node>& nodes, uint64_t seed) {
  for (size_t i = 0; i < nodes.size(); ++i) {
    node& n = nodes[i];
    const uint64_t s = seed + kGolden * (i + 1);
    n.seed = s;
    n.calls = 0;
    reseed_nodes(n.body, s);
  }
}

// As Residual::set_need_input_grad: the flag reaches the body's first layer.
void set_need_dx(node& n, bool on) {
  n.need_dx = on;
  if (n.type == op::residual) {
    for (auto& b : n.body) b.need_dx = true;
    set_need_dx(n.body.front(), on);
  }
}

}  // namespace

void backend_layers::free_node(node& n) {
  for (auto& b : n.body) free_node(b);
  be_.free(n.y);
  be_.free(n.dx);
  be_.free(n.cols);
  be_.free(n.xhat);
  be_.free(n.rstd);
  be_.free(n.mask);
  be_.free_int(n.argmax);
  n.y = n.dx = n.cols = n.xhat = n.rstd = n.mask = nullptr;
  n.argmax = nullptr;
}

void backend_layers::alloc_node(node& n, int64_t B) {
  for (auto& b : n.body) alloc_node(b, B);
  switch (n.type) {
    case op::flatten:
      return;  // a view: its output is its input
    case op::conv:
      n.cols = be_.alloc(B * n.c * n.k * n.k * n.oh * n.ow);
      break;
    case op::maxpool:
      n.argmax = be_.alloc_int(B * n.out_n);
      break;
    case op::groupnorm:
      n.xhat = be_.alloc(B * n.in_n);
      n.rstd = be_.alloc(B * n.groups);
      break;
    case op::dropout:
      n.mask = be_.alloc(B * n.in_n);
      break;
    default:
      break;
  }
  n.y = be_.alloc(B * n.out_n);
  if (n.need_dx) n.dx = be_.alloc(B * n.in_n);
}

const float* backend_layers::forward(node& n, const float* x, int64_t B, bool training, const float* params) {
  n.x = x;
  const float* w = params + n.poff;
  switch (n.type) {
    case op::linear:
      // Linear's order: rows seeded with the bias, the product added (beta 1).
      be_.fill(n.y, 0.f, B * n.out_f);
      be_.add_row_bias(n.y, w + n.out_f * n.in_f, B, n.out_f);
      be_.gemm(false, true, B, n.out_f, n.in_f, 1.f, x, n.in_f, w, n.in_f, 1.f, n.y, n.out_f);
      return n.y;
    case op::conv: {
      // One im2col over the batch (its samples are B*C planes), one
      // product per sample, written straight into [B, O, OH*OW].
      const int64_t P = n.oh * n.ow, KK = n.c * n.k * n.k;
      be_.im2col(x, B * n.c, n.h, n.w, n.k, n.stride, n.pad, n.cols);
      be_.gemm_batched(false, false, n.o, P, KK, 1.f, w, KK, 0, n.cols, P, KK * P, 0.f, n.y, P, n.o * P, B);
      be_.add_channel_bias(n.y, w + n.o * KK, B, n.o, P);
      return n.y;
    }
    case op::maxpool:
      be_.maxpool_forward(x, B * n.c, n.h, n.w, n.k, n.y, n.argmax);
      return n.y;
    case op::act:
      be_.activation_forward(n.act, x, n.y, B * n.in_n);
      return n.y;
    case op::flatten:
      return x;
    case op::groupnorm:
      be_.groupnorm_forward(x, B, n.c, n.in_n / n.c, n.groups, w, w + n.c, n.y, n.xhat, n.rstd);
      return n.y;
    case op::dropout:
      n.masked = training && n.p > 0.0;
      if (!n.masked) return x;  // the identity
      be_.dropout_forward(x, n.y, n.mask, B * n.in_n, n.p, dropout_key(n.seed, ++n.calls));
      return n.y;
    case op::gap:
      be_.gap_forward(x, B * n.c, n.h * n.w, n.y);
      return n.y;
    case op::residual: {
      const float* h = x;
      for (auto& b : n.body) h = forward(b, h, B, training, params);
      be_.add(x, h, n.y, B * n.in_n);
      return n.y;
    }
  }
  return nullptr;
}

// dL/dx of the node, or null when it need not produce one.
const float* backend_layers::backward(node& n, const float* dy, int64_t B, const float* params, float* grads,
                                    float* dw_scratch) {
  n.dy = dy;
  const float* w = params + n.poff;
  float* g = grads + n.poff;
  switch (n.type) {
    case op::linear:
      be_.gemm(true, false, n.out_f, n.in_f, B, 1.f, dy, n.out_f, n.x, n.in_f, 0.f, g, n.in_f);  // dW = dy^T x
      be_.sum_rows(g + n.out_f * n.in_f, dy, B, n.out_f, 0.f);
      if (!n.need_dx) return nullptr;
      be_.gemm(false, false, B, n.in_f, n.out_f, 1.f, dy, n.out_f, w, n.in_f, 0.f, n.dx, n.in_f);  // dx = dy W
      return n.dx;
    case op::conv: {
      const int64_t P = n.oh * n.ow, KK = n.c * n.k * n.k;
      be_.sum_channels(g + n.o * KK, dy, B, n.o, P);
      // dW = sum_b dY_b cols_b^T: the per-sample products of a chunk of
      // samples in one batched product, then summed over the chunk (two
      // launches per chunk on a GPU, not one product per sample).
      const int64_t chunk = conv_chunk(n, B), per = n.o * KK;
      for (int64_t b0 = 0; b0 < B; b0 += chunk) {
        const int64_t cnt = std::min(chunk, B - b0);
        be_.gemm_batched(false, true, n.o, KK, P, 1.f, dy + b0 * n.o * P, P, n.o * P, n.cols + b0 * KK * P, P,
                        KK * P, 0.f, dw_scratch, KK, per, cnt);
        be_.sum_rows(g, dw_scratch, cnt, per, b0 ? 1.f : 0.f);
      }
      if (!n.need_dx) return nullptr;
      // dcols = W^T dY overwrites the columns, which backward no longer needs.
      be_.gemm_batched(true, false, KK, P, n.o, 1.f, w, KK, 0, dy, P, n.o * P, 0.f, n.cols, P, KK * P, B);
      be_.fill(n.dx, 0.f, B * n.in_n);
      be_.col2im(n.cols, B * n.c, n.h, n.w, n.k, n.stride, n.pad, n.dx);
      return n.dx;
    }
    case op::maxpool:
      if (!n.need_dx) return nullptr;
      be_.maxpool_backward(dy, n.argmax, B * n.c, n.h, n.w, n.k, n.dx);
      return n.dx;
    case op::act:
      if (!n.need_dx) return nullptr;
      be_.activation_backward(n.act, n.y, dy, n.dx, B * n.in_n);
      return n.dx;
    case op::flatten:
      return n.need_dx ? dy : nullptr;
    case op::groupnorm:
      be_.groupnorm_backward(dy, n.xhat, n.rstd, w, B, n.c, n.in_n / n.c, n.groups, n.need_dx ? n.dx : nullptr, g,
                            g + n.c);
      return n.need_dx ? n.dx : nullptr;
    case op::dropout:
      if (!n.need_dx) return nullptr;
      if (!n.masked) return dy;
      be_.mul(dy, n.mask, n.dx, B * n.in_n);
      return n.dx;
    case op::gap:
      if (!n.need_dx) return nullptr;
      be_.gap_backward(dy, B * n.c, n.h * n.w, n.dx);
      return n.dx;
    case op::residual: {
      const float* h = dy;
      for (size_t i = n.body.size(); i-- > 0;) h = backward(n.body[i], h, B, params, grads, dw_scratch);
      if (!n.need_dx) return nullptr;
      be_.add(dy, h, n.dx, B * n.in_n);
      return n.dx;
    }
  }
  return nullptr;
}

backend_layers::backend_layers(compute_backend& be, const Sequential& model, bool need_input_grad) : be_(be) {
  for (size_t i = 0; i < model.layer_count(); ++i)
    plan_.push_back(make_node(model.layer(i), model.layer_input_shape(i), model.layer_param_offset(i)));
  // As Sequential::plan_backward.
  if (!need_input_grad)
    while (backward_stop_ < plan_.size() && plan_[backward_stop_].pcount == 0) ++backward_stop_;
  for (size_t i = 0; i < plan_.size(); ++i) set_need_dx(plan_[i], need_input_grad || i > backward_stop_);
}

backend_layers::~backend_layers() {
  for (auto& n : plan_) free_node(n);
}

void backend_layers::reserve(int64_t batch) {
  if (batch <= cap_) return;
  be_.sync();
  for (auto& n : plan_) free_node(n);
  cap_ = 0;
  for (auto& n : plan_) alloc_node(n, batch);
  cap_ = batch;
}

int64_t backend_layers::scratch_floats(int64_t batch) const { return scratch_size(plan_, batch); }

void backend_layers::reseed(uint64_t seed) { reseed_nodes(plan_, seed); }

const float* backend_layers::forward(const float* x, int64_t batch, bool training, const float* params) {
  const float* cur = x;
  for (auto& n : plan_) cur = forward(n, cur, batch, training, params);
  return cur;
}

const float* backend_layers::backward(const float* dy, int64_t batch, const float* params, float* grads,
                                      float* dw_scratch) {
  const float* g = dy;
  for (size_t i = plan_.size(); i-- > backward_stop_;) g = backward(plan_[i], g, batch, params, grads, dw_scratch);
  return backward_stop_ == 0 && !plan_.empty() && plan_.front().need_dx ? g : nullptr;
}

}  // namespace murmur
