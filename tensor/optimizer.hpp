// Optimizers over a flat parameter buffer, matching torch.optim semantics:
// SGD: d = g + wd*p; buf = m*buf + d (buf = d on the first step); p -= lr*buf
// Adam: decoupled-free (L2 added to g, as torch.optim.Adam), bias-corrected.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace murmur {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step(float* params, const float* grads, float lr) = 0;
  virtual std::string name() const = 0;
};

std::unique_ptr<Optimizer> make_sgd(int64_t n, float momentum, float weight_decay);
std::unique_ptr<Optimizer> make_adam(int64_t n, float beta1, float beta2, float eps,
                                     float weight_decay);

}  // namespace murmur
