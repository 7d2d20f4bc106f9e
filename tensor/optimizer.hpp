// Optimizers over a flat parameter buffer, matching torch.optim semantics:
// SGD: d = g + wd*p; buf = m*buf + d (buf = d on the first step); p -= lr*buf
// Adam: decoupled-free (L2 added to g, as torch.optim.Adam), bias-corrected.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace murmur {

struct optimizer_state {
  uint64_t steps = 0;         // step() calls so far
  std::vector<float> values;  // SGD: momentum buffer (empty before the first step or without momentum); Adam: m then v
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step(float* params, const float* grads, float lr) = 0;
  virtual std::string name() const = 0;
  // Everything step() has accumulated (SGD's momentum buffer, Adam's moments
  // and step count), for checkpoints: load_state(save_state()) makes later
  // steps identical. load_state throws std::invalid_argument naming the
  // mismatch when the state is not from an optimizer of this kind and size.
  virtual optimizer_state save_state() const = 0;
  // The same into `into`, reusing its storage (a segment boundary saves the
  // state every K steps and should not allocate each time).
  virtual void save_state_into(optimizer_state& into) const { into = save_state(); }
  // The same without a copy: the state's step count, and its values as the
  // concatenation of first and second, views of the optimizer's own buffers
  // (valid until its next step or load). False where it has none to show.
  virtual bool view_state(uint64_t& steps, std::span<const float>& first, std::span<const float>& second) const {
    (void)steps, (void)first, (void)second;
    return false;
  }
  virtual void load_state(const optimizer_state& s) = 0;
};

// The update loops, shared with compute_backend (its sgd_step/adam_step
// comments): SGD on n floats (buf may be null when momentum is 0; first:
// buf = d), Adam at 1-based step t.
void sgd_update(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay,
                bool first);
void adam_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                 float eps, float weight_decay, uint64_t t);

std::unique_ptr<Optimizer> make_sgd(int64_t n, float momentum, float weight_decay);
std::unique_ptr<Optimizer> make_adam(int64_t n, float beta1, float beta2, float eps,
                                     float weight_decay);

}  // namespace murmur
