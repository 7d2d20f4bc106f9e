#include "model_io/model_prediction.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace murmur {

prediction_rows predict_rows(Sequential& model, const Tensor& x, int64_t batch) {
  const Shape sample(x.shape().begin() + (x.ndim() > 0 ? 1 : 0), x.shape().end());
  if (x.ndim() < 1 || sample != model.input_shape())
    throw std::invalid_argument("the samples are " + shape_str(sample) + ", the model takes " +
                                shape_str(model.input_shape()));
  prediction_rows r;
  r.classes = shape_numel(model.output_shape());
  const int64_t n = x.shape()[0];
  r.label.resize(static_cast<size_t>(n));
  r.probabilities.resize(static_cast<size_t>(n * r.classes));
  const bool was_training = model.training();
  model.set_training(false);
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t e = std::min(n, b + batch);
    const Tensor& logits = model.forward(x.rows(b, e));
    for (int64_t i = 0; i < e - b; ++i) {
      const float* z = logits.data() + i * r.classes;
      float* p = r.probabilities.data() + (b + i) * r.classes;
      const int64_t best = std::max_element(z, z + r.classes) - z;
      double sum = 0;
      for (int64_t k = 0; k < r.classes; ++k) sum += p[k] = std::exp(z[k] - z[best]);
      for (int64_t k = 0; k < r.classes; ++k) p[k] = static_cast<float>(p[k] / sum);
      r.label[static_cast<size_t>(b + i)] = static_cast<int32_t>(best);
    }
  }
  model.set_training(was_training);
  return r;
}

}  // namespace murmur
