#include "model_io/model_evaluation.hpp"

#include <cstdio>
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
  const bool was_training = model.training();
  model.set_training(false);  // dropout off, as PyTorch's eval()
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
  model.set_training(was_training);
  r.accuracy = r.samples ? static_cast<double>(r.correct) / static_cast<double>(r.samples) : 0;
  r.mean_loss = r.samples ? loss / static_cast<double>(r.samples) : 0;
  return r;
}

std::string confusion_table(const model_evaluation& e) {
  size_t width = 4;
  for (auto n : e.confusion) width = std::max(width, std::to_string(n).size() + 1);
  auto cell = [width](const std::string& v, size_t w = 0) {
    const size_t to = w ? w : width;
    return std::string(v.size() < to ? to - v.size() : 0, ' ') + v;
  };
  std::string t = "true\\pred";
  for (int32_t p = 0; p < e.classes; ++p) t += cell(std::to_string(p));
  t += "  recall\n";
  for (int32_t r = 0; r < e.classes; ++r) {
    t += cell(std::to_string(r), 9);
    int64_t row = 0;
    for (int32_t p = 0; p < e.classes; ++p) {
      row += e.count(r, p);
      t += cell(std::to_string(e.count(r, p)));
    }
    char pct[32] = "      -";
    if (row) std::snprintf(pct, sizeof pct, "  %5.1f%%", 100.0 * static_cast<double>(e.count(r, r)) / static_cast<double>(row));
    t += std::string(pct) + "\n";
  }
  return t;
}

std::string confusion_tsv(const model_evaluation& e) {
  std::string t;
  for (int32_t r = 0; r < e.classes; ++r)
    for (int32_t p = 0; p < e.classes; ++p)
      t += std::to_string(e.count(r, p)) + (p + 1 < e.classes ? "\t" : "\n");
  return t;
}

}  // namespace murmur
