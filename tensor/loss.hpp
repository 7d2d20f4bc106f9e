// Softmax cross-entropy over a batch, mean reduction (as F.cross_entropy).
#pragma once
#include <cstdint>

#include "tensor/tensor.hpp"

namespace murmur {

// logits [B, C]; labels B ints in [0, C). Writes dL/dlogits into dlogits
// (resized to [B, C]) and returns the mean loss.
// The row loop both use, shared with compute_backend (labels unchecked):
// returns the summed per-sample loss, counts correct (first maximum wins)
// predictions into *correct, and writes dL/dlogits of the batch mean into
// dlogits unless it is null.
double softmax_cross_entropy_rows(const float* logits, const int32_t* labels, int64_t batch, int64_t classes,
                                  float* dlogits, int64_t* correct);

float softmax_cross_entropy(const Tensor& logits, const int32_t* labels, Tensor& dlogits);
// Loss only, and the number of correct argmax predictions.
float softmax_cross_entropy_eval(const Tensor& logits, const int32_t* labels, int64_t* correct);

}  // namespace murmur
