#include "actors/step_transcript.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "tensor/flatten.hpp"
#include "tensor/gemm.hpp"
#include "tensor/linear.hpp"

namespace murmur {

std::vector<committed_layer> committed_layers(Sequential& model) {
  std::vector<committed_layer> out;
  bool only_reshapes = true;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    auto* lin = dynamic_cast<Linear*>(&model.layer(i));
    if (lin) {
      out.push_back({i, lin->in_features(), lin->out_features(), only_reshapes, i + 1 == model.layer_count()});
      only_reshapes = false;
    } else if (!dynamic_cast<Flatten*>(&model.layer(i))) {
      only_reshapes = false;
    }
  }
  return out;
}

namespace {

Linear& linear_at(Sequential& m, size_t i) { return static_cast<Linear&>(m.layer(i)); }

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

}  // namespace

void apply_compute_cheat(const cheat_settings& c, const committed_layer& target, Sequential& model, Rng& rng) {
  Linear& l = linear_at(model, target.index);
  const int64_t B = l.last_batch(), in = l.in_features(), out = l.out_features();
  float* dw = l.weight_grad();
  switch (c.kind) {
    case compute_cheat::none:
    case compute_cheat::replay:  // done by the trainer's choice of batch
      return;
    case compute_cheat::skip_product: {
      // Random numbers of about the right size instead of the two products.
      float* y = l.last_output().data();
      double ys = 0, ws = 0;
      for (int64_t i = 0; i < B * out; ++i) ys += static_cast<double>(y[i]) * y[i];
      for (int64_t i = 0; i < out * in; ++i) ws += static_cast<double>(dw[i]) * dw[i];
      const double ya = std::sqrt(ys / static_cast<double>(std::max<int64_t>(1, B * out)));
      const double wa = std::sqrt(ws / static_cast<double>(std::max<int64_t>(1, out * in)));
      for (int64_t i = 0; i < B * out; ++i) y[i] = static_cast<float>(ya * rng.normal());
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
      const float* dy = l.last_output_grad();
      gemm(true, false, out, in, h, 2.f, dy, l.last_input(), 0.f, dw);
      float* db = l.bias_grad();
      for (int64_t j = 0; j < out; ++j) db[j] = 0.f;
      for (int64_t r = 0; r < h; ++r)
        for (int64_t j = 0; j < out; ++j) db[j] += 2.f * dy[r * out + j];
      return;
    }
  }
}

step_transcript_log::step_transcript_log(uint32_t prover, Sequential& model, size_t keep)
    : prover_(prover), spec_(committed_layers(model)), slots_(std::max<size_t>(keep, 1)) {
  if (spec_.empty()) throw std::invalid_argument("step transcripts need a model with linear layers");
  for (auto& s : slots_) s.layers.resize(spec_.size());
  commit_.prover = prover;
  commit_.layers.resize(spec_.size());
}

const transcript_commit& step_transcript_log::record(uint64_t step, Sequential& model,
                                                     const std::vector<int64_t>& batch_indices) {
  std::lock_guard<std::mutex> lock(mu_);
  slot& s = slots_[next_];
  next_ = (next_ + 1) % slots_.size();
  s.step = step;
  s.indices.resize(batch_indices.size());
  for (size_t i = 0; i < batch_indices.size(); ++i) s.indices[i] = static_cast<uint32_t>(batch_indices[i]);
  commit_.step = step;
  for (size_t li = 0; li < spec_.size(); ++li) {
    const auto& sp = spec_[li];
    Linear& l = linear_at(model, sp.index);
    const int64_t B = l.last_batch(), in = sp.in, out = sp.out;
    layer_copy& c = s.layers[li];
    auto& d = commit_.layers[li].d;
    // Every layer's input digest covers the sample indices (the logits
    // layer's loss gradient is checked against their labels).
    hash_.add(s.indices.data(), 4 * s.indices.size());
    if (sp.data_input) c.x.clear();
    else copy_and_hash(c.x, l.last_input(), B * in, hash_);
    d[0] = hash_.finish();
    copy_and_hash(c.w, l.weight(), out * in, hash_);
    d[1] = hash_.finish();
    copy_and_hash(c.b, l.bias(), out, hash_);
    d[2] = hash_.finish();
    copy_and_hash(c.y, static_cast<const float*>(l.last_output().data()), B * out, hash_);
    d[3] = hash_.finish();
    copy_and_hash(c.dy, l.last_output_grad(), B * out, hash_);
    d[4] = hash_.finish();
    copy_and_hash(c.dw, static_cast<const float*>(l.weight_grad()), out * in, hash_);
    d[5] = hash_.finish();
    copy_and_hash(c.db, static_cast<const float*>(l.bias_grad()), out, hash_);
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
