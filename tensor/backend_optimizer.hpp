// backend_optimizer: the optimizer of a model whose parameters live on a
// compute_backend: its settings, and its state (SGD's momentum buffer,
// Adam's moments and step count) in backend buffers, stepped with the
// backend's sgd_step / adam_step (torch.optim semantics, as
// tensor/optimizer.hpp). backend_model and backend_stage each own one.
#pragma once
#include <cstdint>

#include "tensor/backend.hpp"
#include "tensor/optimizer.hpp"

namespace murmur {

struct backend_optimizer {
  enum class kind : uint8_t { sgd, adam } type = kind::sgd;
  float momentum = 0.9f, weight_decay = 0.f;    // sgd (weight_decay also adam's L2)
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // adam
};

class backend_optimizer_state {
 public:
  // State for n parameters, zeroed. Throws std::invalid_argument on Adam
  // settings outside 0 <= beta < 1, eps >= 0.
  backend_optimizer_state(compute_backend& be, backend_optimizer opt, int64_t n);
  ~backend_optimizer_state();
  backend_optimizer_state(const backend_optimizer_state&) = delete;
  backend_optimizer_state& operator=(const backend_optimizer_state&) = delete;

  // One step of params (backend buffer, n floats) along grads.
  void step(float* params, const float* grads, float lr);
  // optimizer.hpp's layout (checkpoints). load throws std::invalid_argument
  // naming the size mismatch, and then changes nothing.
  optimizer_state save() const;
  void load(const optimizer_state& s);

 private:
  compute_backend& be_;
  backend_optimizer opt_;
  int64_t n_ = 0;
  float* a_ = nullptr;  // SGD momentum buffer, or Adam's m
  float* b_ = nullptr;  // Adam's v
  uint64_t steps_ = 0;
  bool sgd_first_ = true;  // the momentum buffer holds nothing yet
};

}  // namespace murmur
