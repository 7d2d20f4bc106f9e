#include "actors/step_transcript.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "tensor/activation.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/flatten.hpp"
#include "tensor/gemm.hpp"
#include "tensor/linear.hpp"
#include "tensor/maxpool2d.hpp"

namespace murmur {

namespace {

// The exact layer at i, if it is one (exact_op).
bool exact_op_of(const Layer& l, exact_op& op) {
  if (dynamic_cast<const ReLU*>(&l)) {
    op = {exact_op::relu, 0};
  } else if (auto* p = dynamic_cast<const MaxPool2d*>(&l)) {
    op = {exact_op::maxpool2d, p->kernel()};
  } else if (dynamic_cast<const Flatten*>(&l)) {
    op = {exact_op::flatten, 0};
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::vector<committed_layer> committed_layers(Sequential& model) {
  std::vector<committed_layer> out;
  bool only_reshapes = true;
  // The exact layers since the last committed one; broken by any other.
  std::vector<exact_op> chain;
  bool chain_exact = false;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    Layer& layer = model.layer(i);
    committed_layer c;
    c.index = i;
    c.data_input = only_reshapes;
    c.logits = i + 1 == model.layer_count();
    c.out_shape = model.layer_input_shape(i + 1);
    bool committed = true;
    if (auto* lin = dynamic_cast<Linear*>(&layer)) {
      c.kind = committed_layer::linear;
      c.in = c.in_row = lin->in_features();
      c.out = c.out_row = lin->out_features();
    } else if (auto* conv = dynamic_cast<Conv2d*>(&layer)) {
      c.kind = committed_layer::conv2d;
      c.conv = conv->geometry(model.layer_input_shape(i), 1);
      c.in = c.conv.patch();
      c.out = conv->out_channels();
      c.in_row = shape_numel(model.layer_input_shape(i));
      c.out_row = shape_numel(c.out_shape);
      c.logits = false;  // the loss is over [classes], a conv's output is [O, OH, OW]
    } else {
      committed = false;
    }
    if (committed) {
      if (!out.empty() && chain_exact) {
        out.back().link_checked = true;
        out.back().link = chain;
      }
      out.push_back(std::move(c));
      only_reshapes = false;
      chain.clear();
      chain_exact = true;
      continue;
    }
    if (!dynamic_cast<Flatten*>(&layer)) only_reshapes = false;
    exact_op op;
    if (chain_exact && exact_op_of(layer, op)) chain.push_back(op);
    else chain_exact = false;
  }
  return out;
}

namespace {

// A committed layer's tensors where the model holds them (valid between
// backward and the optimizer step), sized by its committed_layer.
struct layer_view {
  int64_t batch = 0;
  const float* x = nullptr;  // [batch, in_row]
  const float* w = nullptr;  // [out, in]
  const float* b = nullptr;  // [out]
  float* y = nullptr;        // [batch, out_row]
  const float* dy = nullptr;
  float* dw = nullptr;
  float* db = nullptr;
};

// Linear and Conv2d expose the same accessors for their last pass.
template <class Layer>
layer_view tensors_of(Layer& l, int64_t batch) {
  layer_view v;
  v.batch = batch;
  v.x = l.last_input();
  v.w = l.weight();
  v.b = l.bias();
  v.y = l.last_output().data();
  v.dy = l.last_output_grad();
  v.dw = l.weight_grad();
  v.db = l.bias_grad();
  return v;
}

layer_view view_of(Sequential& m, const committed_layer& sp) {
  if (sp.kind == committed_layer::conv2d) {
    auto& l = static_cast<Conv2d&>(m.layer(sp.index));
    return tensors_of(l, l.last_geometry().batch);
  }
  auto& l = static_cast<Linear&>(m.layer(sp.index));
  return tensors_of(l, l.last_batch());
}

// Copies n floats into dst (its storage reused from step to step: no
// allocation once the ring is full) and hashes them chunk by chunk, each
// chunk straight after its copy while it is in L1, so the bytes cross the
// memory bus once. The digest is that of the whole tensor (SHA-256 of the
// concatenated chunks).
void copy_and_hash(std::vector<float>& dst, const float* src, int64_t n, digest_builder& h) {
  constexpr int64_t chunk = 4096;  // floats: 16 KiB
  dst.resize(static_cast<size_t>(n));
  for (int64_t o = 0; o < n; o += chunk) {
    const int64_t k = std::min(chunk, n - o);
    std::memcpy(dst.data() + o, src + o, static_cast<size_t>(k) * sizeof(float));
    h.add(dst.data() + o, static_cast<size_t>(k) * sizeof(float));
  }
}

// half_batch on a conv: dW and db from the first h samples, doubled.
void conv_half_batch(const committed_layer& sp, const cheat_tensors& v, int64_t h) {
  conv_geometry g = sp.conv;  // per sample: the batch's but for its size
  g.batch = h;
  const int64_t P = g.out_h * g.out_w, N = h * P, K = g.patch(), O = sp.out;
  std::vector<float> cols(static_cast<size_t>(K * N)), dym(static_cast<size_t>(O * N));
  im2col(g, v.x, cols.data());
  for (int64_t b = 0; b < h; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t p = 0; p < P; ++p) dym[static_cast<size_t>(o * N + b * P + p)] = v.dy[(b * O + o) * P + p];
  gemm(false, true, O, K, N, 2.f, dym.data(), cols.data(), 0.f, v.dw);
  for (int64_t o = 0; o < O; ++o) {
    float s = 0.f;
    for (int64_t j = 0; j < N; ++j) s += dym[static_cast<size_t>(o * N + j)];
    v.db[o] = 2.f * s;
  }
}

}  // namespace

void apply_compute_cheat(const cheat_settings& c, const committed_layer& target, Sequential& model, Rng& rng) {
  const layer_view l = view_of(model, target);
  apply_compute_cheat(c, target, cheat_tensors{l.batch, l.x, l.dy, l.y, l.dw, l.db}, rng);
}

void apply_compute_cheat(const cheat_settings& c, const committed_layer& target, const cheat_tensors& v, Rng& rng) {
  const int64_t B = v.batch, in = target.in, out = target.out, ny = B * target.out_row;
  float* dw = v.dw;
  switch (c.kind) {
    case compute_cheat::none:
    case compute_cheat::replay:  // done by the trainer's choice of batch
      return;
    case compute_cheat::skip_product: {
      // Random numbers of about the right size instead of the two products.
      float* y = v.y;
      double ys = 0, ws = 0;
      for (int64_t i = 0; i < ny; ++i) ys += static_cast<double>(y[i]) * y[i];
      for (int64_t i = 0; i < out * in; ++i) ws += static_cast<double>(dw[i]) * dw[i];
      const double ya = std::sqrt(ys / static_cast<double>(std::max<int64_t>(1, ny)));
      const double wa = std::sqrt(ws / static_cast<double>(std::max<int64_t>(1, out * in)));
      for (int64_t i = 0; i < ny; ++i) y[i] = static_cast<float>(ya * rng.normal());
      for (int64_t i = 0; i < out * in; ++i) dw[i] = static_cast<float>(wa * rng.normal());
      return;
    }
    case compute_cheat::perturb: {
      const int64_t row = static_cast<int64_t>(rng.below(static_cast<uint64_t>(out)));
      const int64_t col = static_cast<int64_t>(rng.below(static_cast<uint64_t>(in)));
      double n2 = 0;
      for (int64_t j = 0; j < in; ++j) n2 += static_cast<double>(dw[row * in + j]) * dw[row * in + j];
      const double norm = std::sqrt(n2) > 0 ? std::sqrt(n2) : 1e-3;
      dw[row * in + col] += static_cast<float>((rng.uniform() < 0.5 ? -1 : 1) * c.eps * norm);
      return;
    }
    case compute_cheat::half_batch: {
      const int64_t h = B / 2;
      if (h == 0) return;
      if (target.kind == committed_layer::conv2d) {
        conv_half_batch(target, v, h);
        return;
      }
      gemm(true, false, out, in, h, 2.f, v.dy, v.x, 0.f, dw);
      float* db = v.db;
      for (int64_t j = 0; j < out; ++j) db[j] = 0.f;
      for (int64_t r = 0; r < h; ++r)
        for (int64_t j = 0; j < out; ++j) db[j] += 2.f * v.dy[r * out + j];
      return;
    }
  }
}

step_transcript_log::step_transcript_log(uint32_t prover, Sequential& model, size_t keep)
    : prover_(prover), spec_(committed_layers(model)), slots_(std::max<size_t>(keep, 1)) {
  if (spec_.empty()) throw std::invalid_argument("step transcripts need a model with linear or conv2d layers");
  for (auto& s : slots_) s.layers.resize(spec_.size());
  commit_.prover = prover;
  commit_.layers.resize(spec_.size());
}

const transcript_commit& step_transcript_log::record(uint64_t step, Sequential& model,
                                                     const std::vector<int64_t>& batch_indices) {
  views_.resize(spec_.size());
  for (size_t li = 0; li < spec_.size(); ++li) {
    const layer_view v = view_of(model, spec_[li]);
    views_[li] = {v.batch, v.x, v.w, v.b, v.y, v.dy, v.dw, v.db};
  }
  return record(step, views_, batch_indices);
}

const transcript_commit& step_transcript_log::record(uint64_t step, const std::vector<transcript_tensors>& tensors,
                                                     const std::vector<int64_t>& batch_indices) {
  if (tensors.size() != spec_.size())
    throw std::invalid_argument("step_transcript_log::record: " + std::to_string(tensors.size()) +
                                " layers' tensors for " + std::to_string(spec_.size()) + " committed layers");
  std::lock_guard<std::mutex> lock(mu_);
  slot& s = slots_[next_];
  next_ = (next_ + 1) % slots_.size();
  s.step = step;
  s.indices.resize(batch_indices.size());
  for (size_t i = 0; i < batch_indices.size(); ++i) s.indices[i] = static_cast<uint32_t>(batch_indices[i]);
  commit_.step = step;
  for (size_t li = 0; li < spec_.size(); ++li) {
    const auto& sp = spec_[li];
    const transcript_tensors& v = tensors[li];
    const int64_t B = v.batch, in = sp.in, out = sp.out;
    layer_copy& c = s.layers[li];
    auto& d = commit_.layers[li].d;
    // Every layer's input digest covers the sample indices (the logits
    // layer's loss gradient is checked against their labels).
    hash_.add(s.indices.data(), 4 * s.indices.size());
    if (sp.data_input) c.x.clear();
    else copy_and_hash(c.x, v.x, B * sp.in_row, hash_);
    d[0] = hash_.finish();
    copy_and_hash(c.w, v.w, out * in, hash_);
    d[1] = hash_.finish();
    copy_and_hash(c.b, v.b, out, hash_);
    d[2] = hash_.finish();
    copy_and_hash(c.y, v.y, B * sp.out_row, hash_);
    d[3] = hash_.finish();
    copy_and_hash(c.dy, v.dy, B * sp.out_row, hash_);
    d[4] = hash_.finish();
    copy_and_hash(c.dw, v.dw, out * in, hash_);
    d[5] = hash_.finish();
    copy_and_hash(c.db, v.db, out, hash_);
    d[6] = hash_.finish();
  }
  return commit_;
}

bool step_transcript_log::reply(uint64_t step, uint16_t layer, uint64_t nonce, tensor_reply& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (step == 0 || layer >= spec_.size()) return false;
  for (const slot& s : slots_) {
    if (s.step != step) continue;
    const auto& sp = spec_[layer];
    const layer_copy& c = s.layers[layer];
    out.prover = prover_;
    out.step = step;
    out.layer = layer;
    out.nonce = nonce;
    out.batch = static_cast<uint32_t>(s.indices.size());
    out.in = static_cast<uint32_t>(sp.in);
    out.out = static_cast<uint32_t>(sp.out);
    out.has_input = !sp.data_input;
    const bool rows = sp.kind == committed_layer::conv2d;
    out.in_row = rows ? static_cast<uint32_t>(sp.in_row) : 0;
    out.out_row = rows ? static_cast<uint32_t>(sp.out_row) : 0;
    out.indices = s.indices;
    out.input = c.x;
    out.weight = c.w;
    out.bias = c.b;
    out.output = c.y;
    out.output_grad = c.dy;
    out.weight_grad = c.dw;
    out.bias_grad = c.db;
    return true;
  }
  return false;
}

}  // namespace murmur
