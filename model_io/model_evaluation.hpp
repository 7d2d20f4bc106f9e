// Evaluation of a whole model on a labelled data set: accuracy, mean
// cross-entropy loss and the confusion matrix, in batches (the model's own
// buffers; nothing is trained), in evaluation mode (dropout off; the
// model's mode is restored after).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dataset.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

struct model_evaluation {
  int64_t samples = 0, correct = 0;
  double accuracy = 0, mean_loss = 0;
  int32_t classes = 0;
  std::vector<int64_t> confusion;  // [true class][predicted class], classes x classes
  int64_t count(int32_t truth, int32_t predicted) const {
    return confusion[static_cast<size_t>(truth) * static_cast<size_t>(classes) + static_cast<size_t>(predicted)];
  }
};

// The data's sample shape must be the model's input shape and its classes
// the model's outputs (std::invalid_argument naming both otherwise).
model_evaluation evaluate_model(Sequential& model, const Dataset& data, int64_t batch = 500);

// The confusion matrix as a text table (rows: true class, columns:
// predicted; each row's recall at its end), and as TSV (counts only, one
// row per true class: gnuplot's "matrix" input).
std::string confusion_table(const model_evaluation& e);
std::string confusion_tsv(const model_evaluation& e);

}  // namespace murmur
