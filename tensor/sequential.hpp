// Sequential: a chain of layers whose parameters all live in ONE contiguous
// float buffer (and gradients in another of the same size), with per-layer
// views. Gossip, checkpoints and verification work on params()/grads().
#pragma once
#include <memory>
#include <vector>

#include "tensor/layer.hpp"
#include "tensor/product_route.hpp"

namespace murmur {

class Sequential {
 public:
  // input_shape is per sample, e.g. {1, 28, 28}.
  Sequential(std::vector<std::unique_ptr<Layer>> layers, Shape input_shape);
  Sequential(const Sequential&) = delete;
  Sequential& operator=(const Sequential&) = delete;

  void init(uint64_t seed);  // every layer's default init, from one seed; also set_noise_seed(seed)

  // Training (the default, as PyTorch) or evaluation mode, passed to every
  // layer (residual bodies included): dropout is the identity in evaluation.
  // Evaluation code sets false and restores true (trainer::evaluate).
  void set_training(bool on);
  bool training() const { return training_; }
  // Seeds the layers that draw random numbers (dropout), each its own
  // stream; their draws then depend only on this seed and the forwards since.
  void set_noise_seed(uint64_t seed);

  float* params() { return param_ptr_; }
  const float* params() const { return param_ptr_; }
  float* grads() { return grad_ptr_; }
  const float* grads() const { return grad_ptr_; }
  int64_t param_count() const { return param_count_; }

  // From now on this model's layers read owner's parameters and write
  // owner's gradient buffer, and its own buffers are freed: another copy of
  // the same layers (own activations, same weights), e.g. for a second
  // micro-batch in flight in a pipeline stage. Needs the same layer layout
  // (std::invalid_argument otherwise); owner must outlive this model.
  void share_parameters(Sequential& owner);
  // From now on this model's layers write their gradients into `buffer`
  // (param_count() floats, std::invalid_argument otherwise) and its own
  // gradient buffer is freed. For models that take turns on one thread (the
  // simulator's peers): backward overwrites the gradients and the optimizer
  // step right after it is their last reader, so one buffer serves them all.
  // The model keeps `buffer` alive.
  void share_gradients(std::shared_ptr<std::vector<float>> buffer);
  // From now on this model's layers run on owner's per-pass buffers
  // (Layer::share_buffers: outputs, input gradients; not parameters or
  // gradients): for the same models taking turns on one thread, each
  // forward+backward (or evaluation forward) whole, as share_gradients.
  // Needs the same layers (std::invalid_argument otherwise). Results are
  // unchanged: no layer reads a buffer of a previous pass.
  void share_activations(Sequential& owner);

  // x: [batch, input_shape...]; it must stay alive and unchanged until the
  // matching backward (layers keep pointers to their inputs, not copies).
  // Plans the layouts (plan_layouts) for x's batch first.
  const Tensor& forward(const Tensor& x);
  void backward(const Tensor& dlogits);      // fills grads() (overwrites)

  // dL/dx is skipped by default (the data needs no gradient, and the first
  // trainable layer's dx product is pure waste then). A pipeline stage turns
  // it on and reads input_grad() after backward.
  void set_need_input_grad(bool on);
  const Tensor& input_grad() const { return *input_grad_; }

  const Shape& input_shape() const { return input_shape_; }
  Shape output_shape() const;                // per sample
  size_t layer_count() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_[i]; }
  const Layer& layer(size_t i) const { return *layers_[i]; }
  // Where layer i's parameters start in params()/grads(), and the per-sample
  // shape of its input (i == layer_count(): the model's output).
  int64_t layer_param_offset(size_t i) const { return offsets_[i]; }
  const Shape& layer_input_shape(size_t i) const { return shapes_[i]; }
  int64_t forward_flops() const;             // per sample
  // Routes the products of the model's Linear layers (top level; those in
  // residual blocks keep gemm) to r; null restores gemm (product_route.hpp).
  void set_product_route(product_route* r);
  std::string describe() const;              // one line per layer, with sizes
  // Which activations between top-level layers travel channel-blocked
  // (Layer::blocked_input_ok, tensor/channel_blocked.hpp): those whose two
  // layers both take it, with tied layers' two sides made equal; never the
  // model's input or output, nor anything at batch 0. Tells every layer its
  // sides. forward calls it; code that drives the layers one by one calls it
  // first. Allocates nothing once `blocked_` is sized.
  void plan_layouts(int64_t batch);
  // Off: every activation nchw, as before the blocked chains (for
  // comparisons: tests, bench/train_throughput --conv-kernel onednn-nchw).
  // On by default.
  void set_channel_blocking(bool on) { channel_blocking_ = on; }
  // Whether the activation after top-level layer i travels blocked (as
  // last planned; false before any plan).
  bool blocked_after(size_t i) const { return i < blocked_.size() && blocked_[i] != 0; }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  Shape input_shape_;
  std::vector<float> params_, grads_;
  std::shared_ptr<std::vector<float>> shared_grads_;  // share_gradients
  float* param_ptr_ = nullptr;
  float* grad_ptr_ = nullptr;
  int64_t param_count_ = 0;
  std::vector<Shape> shapes_;     // per-sample input of layer i; output at the end
  std::vector<int64_t> offsets_;  // layer i's slice of params_/grads_
  bool need_input_grad_ = false;
  bool training_ = true;
  size_t backward_stop_ = 0;      // backward runs layers [backward_stop_, n)
  std::vector<char> blocked_;     // plan_layouts: the activation after layer i is blocked
  bool channel_blocking_ = true;
  Tensor empty_;
  const Tensor* input_grad_ = &empty_;
  void plan_backward();
};

// Builds a model from a spec:
//  "mlp"  = flatten, linear 784-256, relu, linear 256-128, relu, linear 128-10
//  "cnn"  = conv 5x5 1->32, relu, maxpool 2, conv 5x5 32->64, relu, maxpool 2,
//           flatten, linear 1024-256, relu, linear 256-10 (as ../shared/bench/torch_cnn.py)
//  or a comma-separated layer list, e.g.
//  "flatten,linear:128,relu,linear:10" or "conv2d:8:3,relu,maxpool2d:2,flatten,linear:10"
//  (conv2d:OUT:K[:STRIDE[:PAD]], maxpool2d:K, linear:OUT, relu, sigmoid, tanh, flatten,
//   groupnorm:GROUPS, dropout:P, gap (global average pooling), and
//   res[LAYER,...] a residual block y = x + body(x); brackets nest, and commas
//   inside them belong to the block).
//  "resnet9" / "resnet9:W" = DAWNBench's ResNet-9 with base width W (default
//           64: widths W, 2W, 4W, 8W), GroupNorm (groups: the largest divisor
//           of the channels not above 8) after every conv, 3x3 padded convs:
//           conv W; conv 2W, maxpool 2, res[conv 2W, conv 2W]; conv 4W,
//           maxpool 2; conv 8W, maxpool 2, res[conv 8W, conv 8W]; gap,
//           flatten, linear:classes (each conv followed by groupnorm, relu).
//           28x28 inputs go 28 -> 14 -> 7 -> 3.
// Input sizes are inferred from input_shape. Throws std::invalid_argument
// naming the offending item on a bad spec, or when the model's output is not
// [num_classes] (num_classes <= 0 skips that check).
std::unique_ptr<Sequential> build_model(const std::string& spec, const Shape& input_shape,
                                        int64_t num_classes);
// The spec as the list of layer items build_layers builds, one per layer
// (a res[...] block is one item), with the shorthands (mlp, cnn, resnet9)
// expanded and blanks trimmed: what a model file records, so that it names
// its layers. Items are not checked here (build_layers does); a bad resnet9
// width or unbalanced brackets throw std::invalid_argument.
std::vector<std::string> model_spec_items(const std::string& spec, int64_t num_classes);
// The unbound layers build_model wraps, same checks and messages: for code
// that assembles a Sequential from part of a spec (pipeline stages).
std::vector<std::unique_ptr<Layer>> build_layers(const std::string& spec, const Shape& input_shape,
                                                 int64_t num_classes);

}  // namespace murmur
