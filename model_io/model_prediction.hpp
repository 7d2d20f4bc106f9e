// Prediction with a whole model: each row's class (the largest logit, the
// first on a tie) and its softmax probabilities, in batches, in evaluation
// mode (dropout off).
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/sequential.hpp"

namespace murmur {

struct prediction_rows {
  int64_t classes = 0;
  std::vector<int32_t> label;        // per row
  std::vector<float> probabilities;  // rows x classes, each row sums to 1
};

// x: [N, input_shape...] (std::invalid_argument naming both shapes otherwise).
prediction_rows predict_rows(Sequential& model, const Tensor& x, int64_t batch = 500);

// Appends the rows of logits [rows, classes] to r (r.classes set on first use):
// what predict_rows does with each batch, and murmur infer with a stage's answer.
void append_predictions(const Tensor& logits, prediction_rows& r);

}  // namespace murmur
