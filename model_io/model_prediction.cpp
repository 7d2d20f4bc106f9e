#include "model_io/model_prediction.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace murmur {

void append_predictions(const Tensor& logits, prediction_rows& r) {
  const int64_t rows = logits.dim(0), classes = logits.dim(1);
  r.classes = classes;
  const size_t first = r.label.size();
  r.label.resize(first + static_cast<size_t>(rows));
  r.probabilities.resize((first + static_cast<size_t>(rows)) * static_cast<size_t>(classes));
  for (int64_t i = 0; i < rows; ++i) {
    const float* z = logits.data() + i * classes;
    float* p = r.probabilities.data() + (static_cast<int64_t>(first) + i) * classes;
    const int64_t best = std::max_element(z, z + classes) - z;
    double sum = 0;
    for (int64_t k = 0; k < classes; ++k) sum += p[k] = std::exp(z[k] - z[best]);
    for (int64_t k = 0; k < classes; ++k) p[k] = static_cast<float>(p[k] / sum);
    r.label[first + static_cast<size_t>(i)] = static_cast<int32_t>(best);
  }
}

prediction_rows predict_rows(Sequential& model, const Tensor& x, int64_t batch) {
  const Shape sample(x.shape().begin() + (x.ndim() > 0 ? 1 : 0), x.shape().end());
  if (x.ndim() < 1 || sample != model.input_shape())
    throw std::invalid_argument("the samples are " + shape_str(sample) + ", the model takes " +
                                shape_str(model.input_shape()));
  prediction_rows r;
  r.classes = shape_numel(model.output_shape());
  const int64_t n = x.shape()[0];
  r.label.reserve(static_cast<size_t>(n));
  r.probabilities.reserve(static_cast<size_t>(n * r.classes));
  const bool was_training = model.training();
  model.set_training(false);
  for (int64_t b = 0; b < n; b += batch) append_predictions(model.forward(x.rows(b, std::min(n, b + batch))), r);
  model.set_training(was_training);
  return r;
}

}  // namespace murmur
