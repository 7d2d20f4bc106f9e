#include "actors/robust_mix.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tensor/squared_distance.hpp"

namespace murmur {

namespace {

// v[c] += w * (a[c] - b[c]): the clipped mix's two loops (a neighbour's
// weighted pull into the aggregate block, then the move of x toward it).
// The build targets baseline x86-64 (4-wide SSE2): an AVX-512 clone where
// the CPU has it. Both round alike: each element sees the same subtract,
// multiply and add, each rounded once (fp-contract=off: no fused multiply-add).
[[gnu::target_clones("avx512f", "default"), gnu::optimize("fp-contract=off")]]
void add_scaled_difference(float* v, float w, const float* a, const float* b, size_t n) {
  for (size_t c = 0; c < n; ++c) v[c] += w * (a[c] - b[c]);
}

}  // namespace

robust_mix::robust_mix(robust_settings s, size_t dim) : s_(s), dim_(dim), block_(kBlock, 0.f) {}

template <class Out>
void robust_mix::run(std::span<const float* const> members, size_t neighbours, Out&& out) {
  const size_t n = members.size();
  if (n == 0) throw std::invalid_argument("robust_mix: nothing to aggregate");
  if (row_.size() < n) {
    column_.resize(std::max(n * kBlock, column_.size()));
    row_.resize(n);
    dist_.resize(n * n);
  }
  switch (s_.rule) {
    case robust_rule::none: {
      const float inv = 1.f / static_cast<float>(n);
      for (size_t k0 = 0; k0 < dim_; k0 += kBlock) {
        const size_t b = std::min(kBlock, dim_ - k0);
        for (size_t c = 0; c < b; ++c) {
          float sum = 0.f;
          for (size_t j = 0; j < n; ++j) sum += members[j][k0 + c];
          block_[c] = sum * inv;
        }
        out(k0, block_.data(), b);
      }
      break;
    }
    case robust_rule::median:
    case robust_rule::trimmed_mean: coordinatewise(members, dropped(n), out); break;
    case robust_rule::krum: krum(members, out); break;
    case robust_rule::centered_clip:
    case robust_rule::clipped_gossip: centered_clip(members, neighbours ? neighbours : n - 1, out); break;
  }
}

std::span<const float> robust_mix::aggregate(std::span<const float* const> members, size_t neighbours) {
  agg_.resize(dim_);
  run(members, neighbours, [&](size_t k0, const float* block, size_t b) { std::copy(block, block + b, agg_.data() + k0); });
  return {agg_.data(), dim_};
}

void robust_mix::mix_into(std::span<float> x, std::span<const float* const> members, float gamma, size_t neighbours,
                          std::span<const float> pulls, const std::function<void(size_t, size_t)>& after_block) {
  if (x.size() != dim_) throw std::invalid_argument("robust_mix::mix_into: wrong parameter count");
  if (!pulls.empty() && s_.rule != robust_rule::centered_clip && s_.rule != robust_rule::clipped_gossip)
    throw std::logic_error("robust_mix::mix_into: per-neighbour pulls need a clipping rule");
  if (!pulls.empty() && pulls.size() + 1 != members.size())
    throw std::invalid_argument("robust_mix::mix_into: one pull per neighbour member");
  float* xp = x.data();
  const float* self = members.empty() ? nullptr : members[0];
  pulls_ = pulls;
  run(members, neighbours, [&](size_t k0, const float* block, size_t b) {
    add_scaled_difference(xp + k0, gamma, block, self + k0, b);
    if (after_block) after_block(k0, b);
  });
  pulls_ = {};
}

size_t robust_mix::dropped(size_t n) const {
  if (s_.rule == robust_rule::median) return (n - 1) / 2;
  if (s_.rule == robust_rule::trimmed_mean)
    return std::min(static_cast<size_t>(s_.trim * static_cast<double>(n)), (n - 1) / 2);
  throw std::logic_error("robust_mix::dropped: the rule is not coordinate-wise");
}

// Mean of the values left after dropping `drop` at each end of the sorted
// column; drop = (n - 1) / 2 leaves the middle one (odd n) or two (even n),
// which is the median. Coordinates go in blocks: each block's n rows are
// sorted column-wise by an odd-even transposition network (n passes of
// compare-exchanges of adjacent rows), branch-free min/max over the block
// that the compiler vectorizes; a per-coordinate sort with data-dependent
// branches cost several times more.
template <class Out>
void robust_mix::coordinatewise(std::span<const float* const> members, size_t drop, Out& emit) {
  const size_t n = members.size(), keep = n - 2 * drop;
  float* rows = column_.data();
  const float inv = 1.f / static_cast<float>(keep);
  for (size_t k0 = 0; k0 < dim_; k0 += kBlock) {
    const size_t b = std::min(kBlock, dim_ - k0);
    for (size_t j = 0; j < n; ++j) std::copy(members[j] + k0, members[j] + k0 + b, rows + j * kBlock);
    for (size_t pass = 0; pass < n; ++pass)
      for (size_t i = pass % 2; i + 1 < n; i += 2) {
        float* lo = rows + i * kBlock;
        float* hi = lo + kBlock;
        for (size_t c = 0; c < b; ++c) {
          const float x = lo[c], y = hi[c];
          lo[c] = std::min(x, y);
          hi[c] = std::max(x, y);
        }
      }
    float* out = block_.data();
    std::fill(out, out + b, 0.f);
    for (size_t i = drop; i < drop + keep; ++i) {
      const float* r = rows + i * kBlock;
      for (size_t c = 0; c < b; ++c) out[c] += r[c];
    }
    for (size_t c = 0; c < b; ++c) out[c] *= inv;
    emit(k0, out, b);
  }
}

template <class Out>
void robust_mix::krum(std::span<const float* const> members, Out& emit) {
  const size_t n = members.size();
  const auto take = [&](const float* m) {
    for (size_t k0 = 0; k0 < dim_; k0 += kBlock) emit(k0, m + k0, std::min(kBlock, dim_ - k0));
  };
  if (n <= 2) {  // nothing to vote with: keep our own
    take(members[0]);
    return;
  }
  for (size_t a = 0; a < n; ++a) {
    dist_[a * n + a] = 0;
    for (size_t b = a + 1; b < n; ++b) {
      double d2 = 0;
      for (size_t k = 0; k < dim_; ++k) {
        double d = static_cast<double>(members[a][k]) - members[b][k];
        d2 += d * d;
      }
      dist_[a * n + b] = dist_[b * n + a] = d2;
    }
  }
  const size_t f = static_cast<size_t>(s_.trim * static_cast<double>(n));
  const size_t nearest = n > f + 3 ? n - f - 2 : 1;
  size_t best = 0;
  double best_score = INFINITY;
  for (size_t a = 0; a < n; ++a) {
    size_t m = 0;
    for (size_t b = 0; b < n; ++b)
      if (b != a) row_[m++] = dist_[a * n + b];
    std::partial_sort(row_.begin(), row_.begin() + static_cast<std::ptrdiff_t>(nearest),
                      row_.begin() + static_cast<std::ptrdiff_t>(m));
    double score = 0;
    for (size_t i = 0; i < nearest; ++i) score += row_[i];
    if (score < best_score) best_score = score, best = a;  // ties: the first, i.e. ourselves
  }
  take(members[best]);
}

template <class Out>
void robust_mix::centered_clip(std::span<const float* const> members, size_t neighbours, Out& emit) {
  const size_t n = members.size();
  const float* self = members[0];
  // The distances ||x_hat_j - x_hat_self||_2, summed in double in
  // tensor/squared_distance's fixed order (the CPU backend's too).
  squared_distances(self, members.data() + 1, n - 1, dim_, row_.data() + 1);
  for (size_t j = 1; j < n; ++j) row_[j] = std::sqrt(row_[j]);
  clip_weights_from_row(n, neighbours);
  // v_k = x_hat_self_k + sum_j w_j (x_hat_j_k - x_hat_self_k), the terms
  // added in j order for every k as before, but neighbour by neighbour over
  // a block, so the compiler vectorizes across k (the same floats).
  float* v = block_.data();
  for (size_t k0 = 0; k0 < dim_; k0 += kBlock) {
    const size_t b = std::min(kBlock, dim_ - k0);
    const float* sk = self + k0;
    std::copy(sk, sk + b, v);  // values are bounded at decode (gossip max_value), so differences stay finite
    for (size_t j = 1; j < n; ++j) {
      const float w = column_[j];
      const float* mj = members[j] + k0;
      add_scaled_difference(v, w, mj, sk, b);
    }
    emit(k0, v, b);
  }
}

std::span<const float> robust_mix::clip_weights(std::span<const double> distances, size_t neighbours) {
  if (s_.rule != robust_rule::centered_clip && s_.rule != robust_rule::clipped_gossip)
    throw std::logic_error("robust_mix::clip_weights: the rule does not clip");
  const size_t n = distances.size() + 1;
  if (row_.size() < n) {
    column_.resize(std::max(n * kBlock, column_.size()));
    row_.resize(n);
    dist_.resize(n * n);
  }
  std::copy(distances.begin(), distances.end(), row_.begin() + 1);
  clip_weights_from_row(n, neighbours ? neighbours : n - 1);
  return {column_.data() + 1, n - 1};
}

// The radius from the distances row_[1..n), the clip count, and each
// neighbour's weight column_[j]: 1/n, shrunk so its pull is at most r.
void robust_mix::clip_weights_from_row(size_t n, size_t neighbours) {
  double radius = s_.clip_radius;
  if (radius <= 0 && n > 1) {
    if (s_.rule == robust_rule::clipped_gossip) {
      radius = adaptive_radius(n, neighbours);
    } else {
      for (size_t j = 1; j < n; ++j) dist_[j] = row_[j];
      auto first = dist_.begin() + 1, last = dist_.begin() + static_cast<std::ptrdiff_t>(n);
      auto mid = first + static_cast<std::ptrdiff_t>((n - 1) / 2);
      std::nth_element(first, mid, last);
      radius = *mid;
    }
  }
  radius_ = radius;
  for (size_t j = 1; j < n; ++j) clipped_ += row_[j] > radius;
  for (size_t j = 1; j < n; ++j)
    column_[j] = static_cast<float>((row_[j] > radius && row_[j] > 0 ? radius / row_[j] : 1.0) /
                                    static_cast<double>(n));
  for (size_t j = 1; j < n && !pulls_.empty(); ++j) column_[j] *= pulls_[j - 1];
}

double robust_mix::adaptive_radius(size_t n, size_t neighbours) {
  constexpr double kGrowth = 4.0, kWeight = 1.0 / 20.0;
  if (n == 2 && (neighbours > 1 || rbar_ > 0)) {
    // One fresh neighbour of several, or our only neighbour once we had
    // others (they left or were quarantined): its distance is its own word.
    return rbar_ > 0 ? s_.clip_scale * std::min(row_[1], rbar_) : 0.0;
  }
  // Lower median of the n - 1 distances: index (n - 2) / 2 of them sorted.
  for (size_t j = 1; j < n; ++j) dist_[j] = row_[j];
  auto first = dist_.begin() + 1, last = dist_.begin() + static_cast<std::ptrdiff_t>(n);
  auto mid = first + static_cast<std::ptrdiff_t>((n - 2) / 2);
  std::nth_element(first, mid, last);
  double m = *mid;
  if (rbar_ > 0) {
    m = std::min(m, rbar_ * kGrowth);
    rbar_ += kWeight * (m - rbar_);
  } else if (m > 0) {
    rbar_ = m;
  }
  return s_.clip_scale * m;
}

}  // namespace murmur
