#include "actors/transcript_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace murmur {

std::string_view to_string(check_outcome c) {
  switch (c) {
    case check_outcome::passed: return "passed";
    case check_outcome::bad_shape: return "bad_shape";
    case check_outcome::hash_mismatch: return "hash_mismatch";
    case check_outcome::foreign_samples: return "foreign_samples";
    case check_outcome::bias_grad: return "bias_grad";
    case check_outcome::loss_grad: return "loss_grad";
    case check_outcome::forward_product: return "forward_product";
    case check_outcome::weight_grad_product: return "weight_grad_product";
    default: return "unknown";
  }
}

transcript_checker::transcript_checker(std::vector<committed_layer> layers, std::shared_ptr<const Dataset> data,
                                       int rounds, augment_settings augment)
    : layers_(std::move(layers)), data_(std::move(data)), rounds_(std::max(rounds, 1)), augment_(augment) {}

check_outcome transcript_checker::check(const layer_commit& c, const tensor_reply& r,
                                        std::span<const int64_t> shard_sorted, Rng& rng) {
  // 1. shapes
  if (r.layer >= layers_.size()) return check_outcome::bad_shape;
  const committed_layer& sp = layers_[r.layer];
  const int64_t B = r.batch, in = sp.in, out = sp.out;
  if (r.in != in || r.out != out || r.has_input == sp.data_input || r.indices.size() != r.batch)
    return check_outcome::bad_shape;
  const int64_t row = data_->size() ? data_->images.numel() / data_->size() : 0;
  if (sp.data_input && row != in) return check_outcome::bad_shape;
  // 2. the tensors are the committed ones
  const digest din = hash_.add(r.indices.data(), 4 * r.indices.size()).add(r.input).finish();
  if (din != c.d[0] || hash_.add(r.weight).finish() != c.d[1] || hash_.add(r.bias).finish() != c.d[2] ||
      hash_.add(r.output).finish() != c.d[3] || hash_.add(r.output_grad).finish() != c.d[4] ||
      hash_.add(r.weight_grad).finish() != c.d[5] || hash_.add(r.bias_grad).finish() != c.d[6])
    return check_outcome::hash_mismatch;
  // 3. the prover's own samples; rebuild X from the data set
  const float* x = r.input.data();
  if (sp.data_input) {
    x_.resize(static_cast<size_t>(B * in));
    // Provers augment [N, C, H, W] images only (check_augment_fits).
    if (augment_.active() && data_->images.ndim() != 4) return check_outcome::bad_shape;
    augment_scratch_.resize(static_cast<size_t>(row));
    for (int64_t i = 0; i < B; ++i) {
      const int64_t idx = r.indices[static_cast<size_t>(i)];
      if (!std::binary_search(shard_sorted.begin(), shard_sorted.end(), idx)) return check_outcome::foreign_samples;
      std::memcpy(x_.data() + i * in, data_->images.data() + idx * row, sizeof(float) * static_cast<size_t>(in));
      if (augment_.active())
        augment_image(augment_, r.step, idx, x_.data() + i * in, data_->images.dim(1), data_->images.dim(2),
                      data_->images.dim(3), augment_scratch_.data());
    }
    x = x_.data();
  }
  // 4. element-wise parts
  constexpr double u = 0x1.0p-24;
  for (int64_t j = 0; j < out; ++j) {
    double s = 0, a = 0;
    for (int64_t i = 0; i < B; ++i) {
      s += r.output_grad[static_cast<size_t>(i * out + j)];
      a += std::fabs(r.output_grad[static_cast<size_t>(i * out + j)]);
    }
    if (std::fabs(s - r.bias_grad[static_cast<size_t>(j)]) > 4 * (B + 2) * u * a + 1e-30) return check_outcome::bias_grad;
  }
  if (sp.logits) {
    for (int64_t i = 0; i < B; ++i) {
      const float* y = r.output.data() + i * out;
      const float* g = r.output_grad.data() + i * out;
      const int64_t idx = r.indices[static_cast<size_t>(i)];
      if (idx < 0 || idx >= data_->size()) return check_outcome::foreign_samples;
      const int32_t label = data_->labels[static_cast<size_t>(idx)];
      double mx = y[0];
      for (int64_t j = 1; j < out; ++j) mx = std::max<double>(mx, y[j]);
      double z = 0;
      for (int64_t j = 0; j < out; ++j) z += std::exp(y[j] - mx);
      for (int64_t j = 0; j < out; ++j) {
        double want = (std::exp(y[j] - mx) / z - (j == label ? 1.0 : 0.0)) / static_cast<double>(B);
        if (std::fabs(want - g[j]) > 1e-5 / static_cast<double>(B) + 1e-4 * std::fabs(want))
          return check_outcome::loss_grad;
      }
    }
  }
  // 5. the products
  if (!fv_.check(false, true, B, out, in, x, r.weight.data(), r.bias.data(), r.output.data(), rounds_, rng).ok)
    return check_outcome::forward_product;
  if (!fv_.check(true, false, out, in, B, r.output_grad.data(), x, r.weight_grad.data(), rounds_, rng).ok)
    return check_outcome::weight_grad_product;
  return check_outcome::passed;
}

}  // namespace murmur
