// Dropout(p): as torch.nn.Dropout(p), 0 <= p < 1. In training mode each
// element is kept with probability 1 - p and scaled by 1 / (1 - p) (inverted
// dropout), so evaluation is the identity. No parameters.
//
// The mask is a pure function of (noise seed, training forwards since the
// seed was set, element index): a counter-based hash (splitmix64), no global
// or hidden generator state. The same seed and call sequence give the same
// masks on every machine, so simulated runs stay deterministic; the trainer
// reseeds every step from (its data seed, step), so a resumed run draws the
// masks an uninterrupted one would. Sequential::init sets a seed too.
#pragma once
#include "tensor/layer.hpp"

namespace murmur {

// The mask stream, shared with compute_backend::dropout_forward: the key of
// a layer's `call`-th masked forward (1-based) since its seed was set, and
// the masked copy y = x * mask, mask[i] = 1/(1-p) when
// (splitmix64(key + i) >> 11) * 2^-53 >= p, else 0.
uint64_t dropout_key(uint64_t seed, uint64_t call);
void dropout_mask_apply(const float* x, float* y, float* mask, int64_t n, double p, uint64_t key);

class Dropout : public Layer {
 public:
  explicit Dropout(double p);
  std::string name() const override;
  Shape output_shape(const Shape& in) const override { return in; }
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  int64_t forward_flops(const Shape& in) const override { return shape_numel(in); }
  void set_training(bool on) override { training_ = on; }
  void set_noise_seed(uint64_t seed) override {
    seed_ = seed;
    calls_ = 0;
  }
  bool training() const { return training_; }
  double p() const { return p_; }

 private:
  double p_;
  bool training_ = true;
  uint64_t seed_ = 0, calls_ = 0;
  bool masked_ = false;  // the last forward applied a mask (training, p > 0)
  Tensor mask_;          // 0 or 1/(1-p) per element of the last forward
  Tensor y_, dx_;
};

}  // namespace murmur
