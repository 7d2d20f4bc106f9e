// Softmax cross-entropy over a batch, mean reduction (as F.cross_entropy).
#pragma once
#include <cstdint>

#include "tensor/tensor.hpp"

namespace murmur {

// logits [B, C]; labels B ints in [0, C). Writes dL/dlogits into dlogits
// (resized to [B, C]) and returns the mean loss.
float softmax_cross_entropy(const Tensor& logits, const int32_t* labels, Tensor& dlogits);
// Loss only, and the number of correct argmax predictions.
float softmax_cross_entropy_eval(const Tensor& logits, const int32_t* labels, int64_t* correct);

}  // namespace murmur
