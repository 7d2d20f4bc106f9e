// GroupNorm(G): as torch.nn.GroupNorm(G, C) with eps 1e-5 and affine
// parameters. Input [B, C, ...] (any per-sample rank >= 1, C first); the
// C channels are split into G groups of C/G, and each (sample, group) is
// normalised by its own mean and biased variance, then y = xhat * w[c] + b[c].
// Parameters (PyTorch's layout): weight [C] then bias [C]; init weight 1,
// bias 0, as PyTorch.
//
// Why GroupNorm and not BatchNorm, for gossip training: it keeps no running
// statistics. Its only state is the affine weight and bias, which live in the
// model's flat parameter buffer and are averaged by gossip like every other
// weight; nothing else needs averaging. Training and evaluation compute the
// same function, and a sample's output does not depend on the rest of its
// batch, so peers with skewed (non-iid) shards do not learn shard-specific
// statistics, as BatchNorm's batch and running statistics would.
#pragma once
#include <vector>

#include "tensor/layer.hpp"

namespace murmur {

// The loops, shared with compute_backend: x [batch, channels, spatial];
// forward writes y, xhat (as x) and rstd [batch * groups]; backward
// overwrites dw, db [channels] and writes dx unless it is null.
void groupnorm_forward(const float* x, int64_t batch, int64_t channels, int64_t spatial, int64_t groups,
                       const float* w, const float* b, float* y, float* xhat, float* rstd);
void groupnorm_backward(const float* dy, const float* xhat, const float* rstd, const float* w, int64_t batch,
                        int64_t channels, int64_t spatial, int64_t groups, float* dx, float* dw, float* db);

class GroupNorm : public Layer {
 public:
  static constexpr float eps = 1e-5f;
  GroupNorm(int64_t channels, int64_t groups);  // channels % groups == 0
  std::string name() const override;
  Shape output_shape(const Shape& in) const override;
  int64_t param_count() const override { return 2 * c_; }
  void bind(float* params, float* grads) override;
  void init(Rng& rng) override;  // weight 1, bias 0
  const Tensor& forward(const Tensor& x) override;
  const Tensor& backward(const Tensor& dy) override;
  // Statistics (2 per element) and the affine map (1): 3 per element.
  int64_t forward_flops(const Shape& in) const override { return 3 * shape_numel(in); }
  int64_t channels() const { return c_; }
  int64_t groups() const { return g_; }

 private:
  int64_t c_, g_;
  float *w_ = nullptr, *b_ = nullptr, *dw_ = nullptr, *db_ = nullptr;
  int64_t B_ = 0, S_ = 0;        // batch, elements per channel (H*W)
  Tensor xhat_, y_, dx_;         // xhat kept for backward
  std::vector<float> rstd_;      // per (sample, group): 1 / sqrt(var + eps)
};

}  // namespace murmur
