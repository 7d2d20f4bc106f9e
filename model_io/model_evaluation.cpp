#include "model_io/model_evaluation.hpp"

#include <stdexcept>

#include "tensor/loss.hpp"

namespace murmur {

model_evaluation evaluate_model(Sequential& model, const Dataset& data, int64_t batch) {
  if (data.sample_shape() != model.input_shape())
    throw std::invalid_argument("the data's samples are " + shape_str(data.sample_shape()) + ", the model takes " +
                                shape_str(model.input_shape()));
  if (model.output_shape() != Shape{data.num_classes})
    throw std::invalid_argument("the data has " + std::to_string(data.num_classes) + " classes, the model outputs " +
                                shape_str(model.output_shape()));
  model_evaluation r;
  r.classes = data.num_classes;
  r.samples = data.size();
  r.confusion.assign(static_cast<size_t>(r.classes) * static_cast<size_t>(r.classes), 0);
  double loss = 0;
  for (int64_t b = 0; b < r.samples; b += batch) {
    const int64_t e = std::min(r.samples, b + batch);
    const Tensor x = data.images.rows(b, e);
    const Tensor& logits = model.forward(x);
    int64_t k = 0;
    loss += static_cast<double>(softmax_cross_entropy_eval(logits, data.labels.data() + b, &k)) *
            static_cast<double>(e - b);
    const float* z = logits.data();
    for (int64_t i = 0; i < e - b; ++i, z += r.classes) {
      int32_t best = 0;
      for (int32_t c = 1; c < r.classes; ++c)
        if (z[c] > z[best]) best = c;
      ++r.confusion[static_cast<size_t>(data.labels[static_cast<size_t>(b + i)]) * static_cast<size_t>(r.classes) +
                    static_cast<size_t>(best)];
      if (best == data.labels[static_cast<size_t>(b + i)]) ++r.correct;
    }
  }
  r.accuracy = r.samples ? static_cast<double>(r.correct) / static_cast<double>(r.samples) : 0;
  r.mean_loss = r.samples ? loss / static_cast<double>(r.samples) : 0;
  return r;
}

}  // namespace murmur
