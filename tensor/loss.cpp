#include "tensor/loss.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "tensor/layer.hpp"

namespace murmur {

namespace {

void check(const Tensor& logits, const int32_t* labels) {
  if (logits.ndim() != 2 || logits.dim(0) <= 0 || logits.dim(1) <= 0)
    throw std::invalid_argument("softmax_cross_entropy: logits must be [B, C] with B, C > 0, got " +
                                shape_str(logits.shape()));
  const int64_t B = logits.dim(0), C = logits.dim(1);
  for (int64_t r = 0; r < B; ++r)
    if (labels[r] < 0 || labels[r] >= C)
      throw std::invalid_argument("softmax_cross_entropy: label " + std::to_string(labels[r]) +
                                  " of sample " + std::to_string(r) + " not in [0, " +
                                  std::to_string(C) + ")");
}

}  // namespace

// Per row: log softmax = z - max - log(sum exp(z - max)), which cannot
// overflow; the gradient of the mean is (softmax - onehot) / B.
double softmax_cross_entropy_rows(const float* logits, const int32_t* labels, int64_t B, int64_t C,
                                  float* dlogits, int64_t* correct) {
  const float inv_b = 1.f / static_cast<float>(B);
  double total = 0;
  int64_t hits = 0;
  for (int64_t r = 0; r < B; ++r) {
    const float* z = logits + r * C;
    int64_t arg = 0;
    for (int64_t j = 1; j < C; ++j)
      if (z[j] > z[arg]) arg = j;
    const float m = z[arg];
    hits += arg == labels[r];
    float s = 0.f;
    if (dlogits) {
      float* d = dlogits + r * C;
      for (int64_t j = 0; j < C; ++j) {
        d[j] = std::exp(z[j] - m);
        s += d[j];
      }
      const float scale = inv_b / s;
      for (int64_t j = 0; j < C; ++j) d[j] *= scale;
      d[labels[r]] -= inv_b;
    } else {
      for (int64_t j = 0; j < C; ++j) s += std::exp(z[j] - m);
    }
    total += static_cast<double>(std::log(s)) - static_cast<double>(z[labels[r]] - m);
  }
  if (correct) *correct = hits;
  return total;
}

float softmax_cross_entropy(const Tensor& logits, const int32_t* labels, Tensor& dlogits) {
  check(logits, labels);
  const int64_t B = logits.dim(0), C = logits.dim(1);
  ensure_shape(dlogits, {B, C});
  const double total = softmax_cross_entropy_rows(logits.data(), labels, B, C, dlogits.data(), nullptr);
  return static_cast<float>(total / static_cast<double>(B));
}

float softmax_cross_entropy_eval(const Tensor& logits, const int32_t* labels, int64_t* correct) {
  check(logits, labels);
  const int64_t B = logits.dim(0), C = logits.dim(1);
  const double total = softmax_cross_entropy_rows(logits.data(), labels, B, C, nullptr, correct);
  return static_cast<float>(total / static_cast<double>(B));
}

}  // namespace murmur
