#include "tensor/sequential.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "tensor/activation.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/dropout.hpp"
#include "tensor/flatten.hpp"
#include "tensor/global_avg_pool.hpp"
#include "tensor/groupnorm.hpp"
#include "tensor/linear.hpp"
#include "tensor/maxpool2d.hpp"
#include "tensor/residual.hpp"

namespace murmur {

Sequential::Sequential(std::vector<std::unique_ptr<Layer>> layers, Shape input_shape)
    : layers_(std::move(layers)), input_shape_(std::move(input_shape)) {
  shapes_.push_back(input_shape_);
  int64_t total = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!layers_[i]) throw std::invalid_argument("Sequential: layer " + std::to_string(i) + " is null");
    shapes_.push_back(layers_[i]->output_shape(shapes_.back()));
    offsets_.push_back(total);
    total += layers_[i]->param_count();
  }
  params_.assign(static_cast<size_t>(total), 0.f);
  grads_.assign(static_cast<size_t>(total), 0.f);
  param_ptr_ = params_.data();
  grad_ptr_ = grads_.data();
  param_count_ = total;
  for (size_t i = 0; i < layers_.size(); ++i)
    layers_[i]->bind(param_ptr_ + offsets_[i], grad_ptr_ + offsets_[i]);
  plan_backward();
}

void Sequential::share_parameters(Sequential& owner) {
  if (owner.offsets_ != offsets_ || owner.param_count_ != param_count_ || owner.shapes_ != shapes_)
    throw std::invalid_argument("share_parameters: the models' layers differ");
  param_ptr_ = owner.param_ptr_;
  grad_ptr_ = owner.grad_ptr_;
  for (size_t i = 0; i < layers_.size(); ++i)
    layers_[i]->bind(param_ptr_ + offsets_[i], grad_ptr_ + offsets_[i]);
  std::vector<float>().swap(params_);
  std::vector<float>().swap(grads_);
}

void Sequential::share_gradients(std::shared_ptr<std::vector<float>> buffer) {
  if (!buffer || buffer->size() != static_cast<size_t>(param_count_))
    throw std::invalid_argument("share_gradients: the buffer holds " + std::to_string(buffer ? buffer->size() : 0) +
                                " floats, the model has " + std::to_string(param_count_) + " parameters");
  shared_grads_ = std::move(buffer);
  grad_ptr_ = shared_grads_->data();
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->bind(param_ptr_ + offsets_[i], grad_ptr_ + offsets_[i]);
  std::vector<float>().swap(grads_);
}

void Sequential::share_activations(Sequential& owner) {
  if (owner.layers_.size() != layers_.size())
    throw std::invalid_argument("share_activations: " + std::to_string(layers_.size()) + " layers, the owner has " +
                                std::to_string(owner.layers_.size()));
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i]->name() != owner.layers_[i]->name())
      throw std::invalid_argument("share_activations: layer " + std::to_string(i) + " is " + layers_[i]->name() +
                                  ", the owner's " + owner.layers_[i]->name());
  if (&owner == this) return;
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->share_buffers(*owner.layers_[i]);
}

void Sequential::plan_backward() {
  // Without an input gradient, backward can stop at the first layer with
  // parameters, and that layer need not produce dL/dx.
  backward_stop_ = 0;
  if (!need_input_grad_)
    while (backward_stop_ < layers_.size() && layers_[backward_stop_]->param_count() == 0)
      ++backward_stop_;
  for (size_t i = 0; i < layers_.size(); ++i)
    layers_[i]->set_need_input_grad(need_input_grad_ || i > backward_stop_);
  input_grad_ = &empty_;
}

void Sequential::set_need_input_grad(bool on) {
  need_input_grad_ = on;
  plan_backward();
}

void Sequential::init(uint64_t seed) {
  Rng rng(seed);
  for (auto& l : layers_) l->init(rng);
  set_noise_seed(seed);
}

void Sequential::set_training(bool on) {
  training_ = on;
  for (auto& l : layers_) l->set_training(on);
}

void Sequential::set_noise_seed(uint64_t seed) {
  // A distinct stream per layer; each layer hashes its own further.
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_noise_seed(seed + 0x9e3779b97f4a7c15ULL * (i + 1));
}

const Tensor& Sequential::forward(const Tensor& x) {
  if (x.ndim() != static_cast<int>(input_shape_.size()) + 1 ||
      !std::equal(input_shape_.begin(), input_shape_.end(), x.shape().begin() + 1))
    throw std::invalid_argument("Sequential: input " + shape_str(x.shape()) + " does not match " +
                                shape_str(input_shape_) + " per sample");
  plan_layouts(x.dim(0));
  const Tensor* cur = &x;
  for (auto& l : layers_) cur = &l->forward(*cur);
  return *cur;
}

void Sequential::plan_layouts(int64_t batch) {
  const size_t n = layers_.size();
  blocked_.assign(n, 0);  // sized once: assign keeps the capacity
  for (size_t i = 0; i + 1 < n; ++i)
    blocked_[i] = channel_blocking_ && batch > 0 && layers_[i]->blocked_output_ok(shapes_[i]) &&
                  layers_[i + 1]->blocked_input_ok(shapes_[i + 1]);
  // A tied layer with its two sides planned apart gets both nchw; that can
  // untie a neighbouring tied layer, so repeat until nothing changes (each
  // pass only clears, so at most n passes).
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < n; ++i) {
      if (!layers_[i]->layouts_tied()) continue;
      const bool in = i > 0 && blocked_[i - 1], out = blocked_[i] != 0;
      if (in == out) continue;
      if (i > 0) blocked_[i - 1] = 0;
      blocked_[i] = 0;
      changed = true;
    }
  }
  for (size_t i = 0; i < n; ++i) layers_[i]->set_layouts(i > 0 && blocked_[i - 1], blocked_[i] != 0);
}

void Sequential::backward(const Tensor& dlogits) {
  const Tensor* g = &dlogits;
  for (size_t i = layers_.size(); i-- > backward_stop_;) g = &layers_[i]->backward(*g);
  input_grad_ = need_input_grad_ ? g : &empty_;
}

void Sequential::set_product_route(product_route* r) {
  for (auto& l : layers_)
    if (auto* lin = dynamic_cast<Linear*>(l.get())) lin->set_product_route(r);
}

Shape Sequential::output_shape() const { return shapes_.back(); }

int64_t Sequential::forward_flops() const {
  int64_t f = 0;
  for (size_t i = 0; i < layers_.size(); ++i) f += layers_[i]->forward_flops(shapes_[i]);
  return f;
}

std::string Sequential::describe() const {
  std::string out = "Sequential: input " + shape_str(input_shape_) + ", " +
                    std::to_string(layers_.size()) + " layers, " +
                    std::to_string(param_count()) + " params, " +
                    std::to_string(forward_flops()) + " MACs/sample\n";
  char line[256];
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::snprintf(line, sizeof line, "  %2zu %-28s %-14s -> %-14s %10lld params\n", i,
                  layers_[i]->name().c_str(), shape_str(shapes_[i]).c_str(),
                  shape_str(shapes_[i + 1]).c_str(),
                  static_cast<long long>(layers_[i]->param_count()));
    out += line;
  }
  return out;
}

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

// Splits at `sep` outside brackets: "a,res[b,c],d" -> a | res[b,c] | d.
// Unbalanced brackets throw, naming the spec.
std::vector<std::string> split_top(const std::string& s, char sep) {
  std::vector<std::string> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') ++depth;
    if (s[i] == ']' && --depth < 0) throw std::invalid_argument("build_model: unmatched ']' in '" + s + "'");
    if (s[i] == sep && depth == 0) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  if (depth != 0) throw std::invalid_argument("build_model: unclosed '[' in '" + s + "'");
  parts.push_back(s.substr(start));
  return parts;
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

std::vector<std::unique_ptr<Layer>> parse_list(const std::string& list, const std::string& spec, Shape& shape);

// The largest divisor of c not above 8: resnet9's GroupNorm groups (8 for
// every width that is a multiple of 8, as the widths 64..512 are).
int64_t resnet_groups(int64_t c) {
  for (int64_t g = std::min<int64_t>(8, c); g > 1; --g)
    if (c % g == 0) return g;
  return 1;
}

// "resnet9:W": the DAWNBench ResNet-9 layout with base width W and
// GroupNorm in place of BatchNorm, global average pooling before the head.
std::string resnet9_spec(int64_t w, int64_t classes) {
  auto conv = [](int64_t c) {
    return "conv2d:" + std::to_string(c) + ":3:1:1,groupnorm:" + std::to_string(resnet_groups(c)) + ",relu";
  };
  auto res = [&](int64_t c) { return "res[" + conv(c) + "," + conv(c) + "]"; };
  return conv(w) + "," + conv(2 * w) + ",maxpool2d:2," + res(2 * w) + "," + conv(4 * w) + ",maxpool2d:2," +
         conv(8 * w) + ",maxpool2d:2," + res(8 * w) + ",gap,flatten,linear:" + std::to_string(classes);
}

// One item of the spec; throws std::invalid_argument with a reason only, the
// caller adds which item it was.
std::unique_ptr<Layer> parse_item(const std::string& item, const Shape& in, const std::string& spec) {
  if (item.rfind("res", 0) == 0 && item.size() > 3 && item[3] == '[') {
    if (item.back() != ']') throw std::invalid_argument("expected res[LAYER,LAYER,...]");
    Shape body_shape = in;
    auto body = parse_list(item.substr(4, item.size() - 5), spec, body_shape);
    return std::make_unique<Residual>(std::move(body), in);
  }
  auto args = split(item, ':');
  const std::string& kind = args[0];
  auto num = [&](size_t i, int64_t min) {
    const std::string& a = args[i];
    int64_t v = 0;
    auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), v);
    if (a.empty() || ec != std::errc() || p != a.data() + a.size() || v < min)
      throw std::invalid_argument("argument '" + a + "' is not an integer >= " + std::to_string(min));
    return v;
  };
  auto arity = [&](size_t lo, size_t hi, const char* usage) {
    if (args.size() - 1 < lo || args.size() - 1 > hi)
      throw std::invalid_argument(std::string("expected ") + usage);
  };
  if (kind == "linear") {
    arity(1, 1, "linear:OUT");
    if (in.size() != 1) throw std::invalid_argument("input " + shape_str(in) + " is not flat (add flatten)");
    return std::make_unique<Linear>(in[0], num(1, 1));
  }
  if (kind == "conv2d") {
    arity(2, 4, "conv2d:OUT:K[:STRIDE[:PAD]]");
    if (in.size() != 3) throw std::invalid_argument("input " + shape_str(in) + " is not [C,H,W]");
    return std::make_unique<Conv2d>(in[0], num(1, 1), num(2, 1), args.size() > 3 ? num(3, 1) : 1,
                                    args.size() > 4 ? num(4, 0) : 0);
  }
  if (kind == "maxpool2d") {
    arity(1, 1, "maxpool2d:K");
    return std::make_unique<MaxPool2d>(num(1, 1));
  }
  if (kind == "groupnorm") {
    arity(1, 1, "groupnorm:GROUPS");
    if (in.empty()) throw std::invalid_argument("input has no channel dimension");
    const int64_t g = num(1, 1);
    if (in[0] % g != 0)
      throw std::invalid_argument(std::to_string(in[0]) + " channels do not split into " + std::to_string(g) +
                                  " groups");
    return std::make_unique<GroupNorm>(in[0], g);
  }
  if (kind == "dropout") {
    arity(1, 1, "dropout:P");
    const std::string& a = args[1];
    double p = -1;
    auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), p);
    if (a.empty() || ec != std::errc() || end != a.data() + a.size() || !(p >= 0.0 && p < 1.0))
      throw std::invalid_argument("probability '" + a + "' is not a number in [0, 1)");
    return std::make_unique<Dropout>(p);
  }
  if (kind == "gap") {
    arity(0, 0, "no arguments");
    if (in.size() != 3) throw std::invalid_argument("input " + shape_str(in) + " is not [C,H,W]");
    return std::make_unique<GlobalAvgPool2d>();
  }
  if (kind == "res") throw std::invalid_argument("expected res[LAYER,LAYER,...]");
  if (kind == "relu" || kind == "sigmoid" || kind == "tanh" || kind == "flatten") {
    arity(0, 0, "no arguments");
    if (kind == "relu") return std::make_unique<ReLU>();
    if (kind == "sigmoid") return std::make_unique<Sigmoid>();
    if (kind == "tanh") return std::make_unique<Tanh>();
    return std::make_unique<Flatten>();
  }
  throw std::invalid_argument("unknown layer type '" + kind +
                              "' (known: linear, conv2d, maxpool2d, relu, sigmoid, tanh, flatten, groupnorm, "
                              "dropout, gap, res[...])");
}

// The layers of a comma-separated list (brackets nest), from input `shape`,
// which is left at the list's output shape.
std::vector<std::unique_ptr<Layer>> parse_list(const std::string& list, const std::string& spec, Shape& shape) {
  std::vector<std::unique_ptr<Layer>> layers;
  auto items = split_top(list, ',');
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string item = trim(items[i]);
    try {
      if (item.empty()) throw std::invalid_argument("empty item");
      auto layer = parse_item(item, shape, spec);
      shape = layer->output_shape(shape);
      layers.push_back(std::move(layer));
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      // An error inside a res block already names the inner item.
      if (what.rfind("build_model:", 0) == 0) throw;
      throw std::invalid_argument("build_model: bad spec item " + std::to_string(i + 1) + " '" + item + "' of '" +
                                  (list == spec ? spec : list + "' in '" + spec) + "' (input " + shape_str(shape) +
                                  "): " + what);
    }
  }
  return layers;
}

// The spec with its shorthands (mlp, cnn, resnet9[:WIDTH]) expanded to a
// layer list; "" stays "".
std::string expand_spec(const std::string& spec, int64_t num_classes) {
  std::string list = trim(spec);
  const std::string nc = std::to_string(num_classes);
  if (list == "mlp") list = "flatten,linear:256,relu,linear:128,relu,linear:" + nc;
  if (list == "cnn")
    list = "conv2d:32:5,relu,maxpool2d:2,conv2d:64:5,relu,maxpool2d:2,flatten,linear:256,relu,"
           "linear:" + nc;
  if (list == "resnet9" || list.rfind("resnet9:", 0) == 0) {
    int64_t w = 64;
    if (list.size() > 7) {
      const std::string a = list.substr(8);
      auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), w);
      if (a.empty() || ec != std::errc() || p != a.data() + a.size() || w < 1 || w > 4096)
        throw std::invalid_argument("build_model: '" + spec + "': width '" + a +
                                    "' is not an integer in [1, 4096] (resnet9:WIDTH)");
    }
    if (num_classes <= 0) throw std::invalid_argument("build_model: resnet9 needs the number of classes");
    list = resnet9_spec(w, num_classes);
  }
  return list;
}

}  // namespace

std::vector<std::string> model_spec_items(const std::string& spec, int64_t num_classes) {
  const std::string list = expand_spec(spec, num_classes);
  if (list.empty()) return {};
  auto items = split_top(list, ',');
  for (auto& item : items) item = trim(item);
  return items;
}

std::vector<std::unique_ptr<Layer>> build_layers(const std::string& spec, const Shape& input_shape,
                                                 int64_t num_classes) {
  const std::string list = expand_spec(spec, num_classes);
  const std::string nc = std::to_string(num_classes);
  if (list.empty()) throw std::invalid_argument("build_model: empty model spec");
  for (auto d : input_shape)
    if (d <= 0) throw std::invalid_argument("build_model: bad input shape " + shape_str(input_shape));

  Shape shape = input_shape;
  auto layers = parse_list(list, list, shape);
  if (num_classes > 0 && shape != Shape{num_classes})
    throw std::invalid_argument("build_model: '" + spec + "' ends in " + shape_str(shape) +
                                ", expected [" + nc + "] for " + nc + " classes (last item '" +
                                trim(split_top(list, ',').back()) + "')");
  return layers;
}

std::unique_ptr<Sequential> build_model(const std::string& spec, const Shape& input_shape,
                                        int64_t num_classes) {
  return std::make_unique<Sequential>(build_layers(spec, input_shape, num_classes), input_shape);
}

}  // namespace murmur
