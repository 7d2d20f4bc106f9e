// Layer: one differentiable operation of a Sequential model.
// Contract:
//  - Shapes carry the batch as the first dimension; `output_shape` maps a
//    per-sample input shape (no batch) to the per-sample output shape.
//  - Parameters and gradients are not owned: `bind` hands the layer views
//    into the model's flat buffers (param_count() floats each).
//  - forward(x) returns a reference to a buffer owned by the layer (valid
//    until the next forward) and keeps what backward needs.
//  - backward(dy) OVERWRITES this layer's parameter gradients (no
//    accumulation) and returns dL/dx in a layer-owned buffer.
//  - Buffers are resized, not reallocated, when the batch size repeats.
//  - need_input_grad() false lets backward skip dL/dx (Sequential clears it
//    on the first trainable layer, as PyTorch skips grads of the input);
//    backward's return value is then unspecified.
//  - set_training(false) switches to evaluation (dropout becomes the
//    identity); layers start in training mode, as PyTorch modules do.
//  - share_buffers(owner) (owner: the same layer of a model of the same
//    layout) makes this layer's per-pass buffers (outputs, input gradients,
//    what forward keeps for backward) the owner's: for models that take
//    turns on one thread, each forward+backward whole (the simulator's
//    peers), whose buffers hold nothing from one pass to the next. Layers
//    without such buffers, or that do not implement it, keep their own.
//  - Activations between two layers are nchw unless both sides take oneDNN's
//    channel-blocked layout (tensor/channel_blocked.hpp): blocked_input_ok /
//    blocked_output_ok(in) say whether this layer can read its input / write
//    its output that way for a per-sample input shape `in`, with its current
//    settings; set_layouts(in, out) tells it what its neighbours agreed. A
//    Sequential plans this before every forward (Sequential::plan_layouts)
//    and keeps its first input and last output nchw; a layer used on its
//    own stays nchw (the default). The two sides hold the same shape and
//    size either way. layouts_tied() true: the output is in the input's
//    layout (element-wise layers), so the plan gives both sides the same.
//  - set_noise_seed(s) fixes the random stream of a layer that draws
//    (dropout): its draws are a pure function of (s, forwards since then),
//    never of global state, so runs replay exactly.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>

#include "tensor/rng.hpp"
#include "tensor/tensor.hpp"

namespace murmur {

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string name() const = 0;              // e.g. "linear(784->256)"
  virtual Shape output_shape(const Shape& in) const = 0;  // per sample
  virtual int64_t param_count() const { return 0; }
  virtual void bind(float* /*params*/, float* /*grads*/) {}
  // PyTorch's default initialisation for the layer type, drawn from rng.
  virtual void init(Rng& /*rng*/) {}
  virtual const Tensor& forward(const Tensor& x) = 0;
  virtual const Tensor& backward(const Tensor& dy) = 0;
  // Multiply-adds of one sample's forward pass (for cost models).
  virtual int64_t forward_flops(const Shape& /*in*/) const { return 0; }
  virtual void set_training(bool /*on*/) {}
  virtual void set_noise_seed(uint64_t /*seed*/) {}
  virtual void share_buffers(Layer& /*owner*/) {}
  virtual bool blocked_input_ok(const Shape& /*in*/) const { return false; }
  virtual bool blocked_output_ok(const Shape& /*in*/) const { return false; }
  virtual bool layouts_tied() const { return false; }
  virtual void set_layouts(bool /*in_blocked*/, bool /*out_blocked*/) {}

  // Virtual for composite layers (a residual block passes it to its body).
  virtual void set_need_input_grad(bool on) { need_input_grad_ = on; }
  bool need_input_grad() const { return need_input_grad_; }

 protected:
  bool need_input_grad_ = true;
};

// Tensor::resize takes a Shape by value, which allocates; these skip it when
// the shape is already right, so steady-state steps never touch the heap.
// A buffer shared with another model's layer (share_buffers) may have been
// grown through the other handle: then it is resized (to its own shape)
// to pick up the grown storage.
inline void ensure_shape(Tensor& t, std::initializer_list<int64_t> dims) {
  if (t.stale() || !std::equal(t.shape().begin(), t.shape().end(), dims.begin(), dims.end()))
    t.resize(Shape(dims));
}
inline void ensure_shape(Tensor& t, const Shape& s) {
  if (t.stale() || t.shape() != s) t.resize(s);
}
// share_buffers' step for one buffer: `mine` becomes a handle on the
// owner's storage (given one first, empty, if it has none yet).
inline void share_buffer(Tensor& mine, Tensor& owners) {
  if (!owners.owning()) owners = Tensor(Shape{0});
  mine = owners;
}

}  // namespace murmur
