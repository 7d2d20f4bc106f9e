#include "actors/transcript_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/activation.hpp"
#include "tensor/flatten.hpp"
#include "tensor/im2col.hpp"
#include "tensor/maxpool2d.hpp"

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
    case check_outcome::next_input: return "next_input";
    default: return "unknown";
  }
}

namespace {

std::unique_ptr<Layer> make_exact_layer(const exact_op& op) {
  switch (op.kind) {
    case exact_op::relu: return std::make_unique<ReLU>();
    case exact_op::maxpool2d: return std::make_unique<MaxPool2d>(op.kernel);
    case exact_op::flatten: break;
  }
  return std::make_unique<Flatten>();
}

}  // namespace

transcript_checker::transcript_checker(std::vector<committed_layer> layers, std::shared_ptr<const Dataset> data,
                                       int rounds, augment_settings augment, compute_backend* be)
    : layers_(std::move(layers)), data_(std::move(data)), rounds_(std::max(rounds, 1)), fv_(be), augment_(augment) {
  links_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i].link_checked)
      for (const auto& op : layers_[i].link) links_[i].push_back(make_exact_layer(op));
}

transcript_checker::~transcript_checker() = default;

check_outcome transcript_checker::check(const transcript_commit& c, const tensor_reply& r,
                                        std::span<const int64_t> shard_sorted, Rng& rng) {
  if (r.layer >= layers_.size() || c.layers.size() != layers_.size()) return check_outcome::bad_shape;
  const check_outcome o = check(c.layers[r.layer], r, shard_sorted, rng);
  if (o != check_outcome::passed) return o;
  const committed_layer& sp = layers_[r.layer];
  if (!sp.link_checked || size_t{r.layer} + 1 >= layers_.size()) return o;
  return check_link(sp, c.layers[r.layer + 1u], r);
}

check_outcome transcript_checker::check(const layer_commit& c, const tensor_reply& r,
                                        std::span<const int64_t> shard_sorted, Rng& rng) {
  // 1. shapes
  if (r.layer >= layers_.size()) return check_outcome::bad_shape;
  const committed_layer& sp = layers_[r.layer];
  const int64_t B = r.batch, in = sp.in, out = sp.out, x_row = sp.in_row, y_row = sp.out_row;
  const bool rows = sp.kind == committed_layer::conv2d;
  if (r.in != in || r.out != out || r.has_input == sp.data_input || r.indices.size() != r.batch ||
      r.in_row != (rows ? x_row : 0) || r.out_row != (rows ? y_row : 0))
    return check_outcome::bad_shape;
  const int64_t row = data_->size() ? data_->images.numel() / data_->size() : 0;
  if (sp.data_input && row != x_row) return check_outcome::bad_shape;
  // 2. the tensors are the committed ones
  const digest din = hash_.add(r.indices.data(), 4 * r.indices.size()).add(r.input).finish();
  if (din != c.d[0] || hash_.add(r.weight).finish() != c.d[1] || hash_.add(r.bias).finish() != c.d[2] ||
      hash_.add(r.output).finish() != c.d[3] || hash_.add(r.output_grad).finish() != c.d[4] ||
      hash_.add(r.weight_grad).finish() != c.d[5] || hash_.add(r.bias_grad).finish() != c.d[6])
    return check_outcome::hash_mismatch;
  // 3. the prover's own samples; rebuild X from the data set
  const float* x = r.input.data();
  if (sp.data_input) {
    x_.resize(static_cast<size_t>(B * x_row));
    // Provers augment [N, C, H, W] images only (check_augment_fits).
    if (augment_.active() && data_->images.ndim() != 4) return check_outcome::bad_shape;
    augment_scratch_.resize(static_cast<size_t>(row));
    for (int64_t i = 0; i < B; ++i) {
      const int64_t idx = r.indices[static_cast<size_t>(i)];
      if (!std::binary_search(shard_sorted.begin(), shard_sorted.end(), idx)) return check_outcome::foreign_samples;
      std::memcpy(x_.data() + i * x_row, data_->images.data() + idx * row, sizeof(float) * static_cast<size_t>(x_row));
      if (augment_.active())
        augment_image(augment_, r.step, idx, x_.data() + i * x_row, data_->images.dim(1), data_->images.dim(2),
                      data_->images.dim(3), augment_scratch_.data());
    }
    x = x_.data();
  }
  // 4. element-wise parts: db_j sums dY over the batch (and a conv's positions)
  constexpr double u = 0x1.0p-24;
  const int64_t positions = y_row / out;  // 1 for a linear layer
  const int64_t terms = B * positions;
  for (int64_t j = 0; j < out; ++j) {
    double s = 0, a = 0;
    for (int64_t i = 0; i < B; ++i) {
      // A linear layer's row is [out] (one position), a conv's [out, OH*OW].
      const float* g = r.output_grad.data() + i * y_row + j * positions;
      for (int64_t p = 0; p < positions; ++p) {
        s += g[p];
        a += std::fabs(g[p]);
      }
    }
    if (std::fabs(s - r.bias_grad[static_cast<size_t>(j)]) > 4 * (terms + 2) * u * a + 1e-30)
      return check_outcome::bias_grad;
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
  return check_products(sp, r, x, rng);
}

check_outcome transcript_checker::check_products(const committed_layer& sp, const tensor_reply& r, const float* x,
                                                 Rng& rng) {
  const int64_t B = r.batch, in = sp.in, out = sp.out;
  if (sp.kind == committed_layer::linear) {
    if (!fv_.check(false, true, B, out, in, x, r.weight.data(), r.bias.data(), r.output.data(), rounds_, rng).ok)
      return check_outcome::forward_product;
    if (!fv_.check(true, false, out, in, B, r.output_grad.data(), x, nullptr, r.weight_grad.data(), rounds_, rng).ok)
      return check_outcome::weight_grad_product;
    return check_outcome::passed;
  }
  // A conv is the product the prover ran: Ym [O, N] = W [O, K] cols [K, N],
  // N = B*OH*OW. The forward is checked transposed, Y^T = cols^T W^T + b,
  // so that the bias is per column, as freivalds_checker adds it.
  conv_geometry g = sp.conv;
  g.batch = B;
  const int64_t P = g.out_h * g.out_w, N = B * P, K = in;
  cols_.resize(static_cast<size_t>(K * N));
  yt_.resize(static_cast<size_t>(N * out));
  dym_.resize(static_cast<size_t>(out * N));
  im2col(g, x, cols_.data());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < out; ++o) {
      const float* y = r.output.data() + (b * out + o) * P;
      const float* dy = r.output_grad.data() + (b * out + o) * P;
      for (int64_t p = 0; p < P; ++p) {
        yt_[static_cast<size_t>((b * P + p) * out + o)] = y[p];
        dym_[static_cast<size_t>(o * N + b * P + p)] = dy[p];
      }
    }
  if (!fv_.check(true, true, N, out, K, cols_.data(), r.weight.data(), r.bias.data(), yt_.data(), rounds_, rng).ok)
    return check_outcome::forward_product;
  if (!fv_.check(false, true, out, K, N, dym_.data(), cols_.data(), nullptr, r.weight_grad.data(), rounds_, rng).ok)
    return check_outcome::weight_grad_product;
  return check_outcome::passed;
}

check_outcome transcript_checker::check_link(const committed_layer& sp, const layer_commit& next,
                                             const tensor_reply& r) {
  Shape s{static_cast<int64_t>(r.batch)};
  s.insert(s.end(), sp.out_shape.begin(), sp.out_shape.end());
  ensure_shape(link_in_, s);
  std::memcpy(link_in_.data(), r.output.data(), sizeof(float) * r.output.size());
  const Tensor* t = &link_in_;
  for (auto& l : links_[r.layer]) t = &l->forward(*t);
  const digest d = hash_.add(r.indices.data(), 4 * r.indices.size())
                       .add(std::span<const float>(t->data(), static_cast<size_t>(t->numel())))
                       .finish();
  return d == next.d[0] ? check_outcome::passed : check_outcome::next_input;
}

}  // namespace murmur
