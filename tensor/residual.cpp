#include "tensor/residual.hpp"

#include <stdexcept>

namespace murmur {

Residual::Residual(std::vector<std::unique_ptr<Layer>> body, const Shape& in) : body_(std::move(body)) {
  if (body_.empty()) throw std::invalid_argument("res: empty body");
  shapes_.push_back(in);
  for (size_t i = 0; i < body_.size(); ++i) {
    if (!body_[i]) throw std::invalid_argument("res: body layer " + std::to_string(i) + " is null");
    offsets_.push_back(params_);
    params_ += body_[i]->param_count();
    shapes_.push_back(body_[i]->output_shape(shapes_.back()));
  }
  if (shapes_.back() != in)
    throw std::invalid_argument("res block " + name() + ": its body maps " + shape_str(in) + " to " +
                                shape_str(shapes_.back()) + "; a residual body must keep the shape");
  // Every body layer feeds the next, and the block's input gradient is
  // dy + the body's: all of them produce dL/dx (set_need_input_grad may
  // turn it off for the first).
  for (auto& l : body_) l->set_need_input_grad(true);
}

std::string Residual::name() const {
  std::string n = "res[";
  for (size_t i = 0; i < body_.size(); ++i) {
    if (i) n += ',';
    n += body_[i]->name();
  }
  return n + "]";
}

Shape Residual::output_shape(const Shape& in) const {
  if (in != shapes_.front())
    throw std::invalid_argument("res block expects input " + shape_str(shapes_.front()) + ", got " + shape_str(in));
  return in;
}

void Residual::bind(float* params, float* grads) {
  for (size_t i = 0; i < body_.size(); ++i)
    body_[i]->bind(params ? params + offsets_[i] : nullptr, grads ? grads + offsets_[i] : nullptr);
}

void Residual::init(Rng& rng) {
  for (auto& l : body_) l->init(rng);
}

int64_t Residual::forward_flops(const Shape& in) const {
  int64_t f = shape_numel(in);  // the addition
  for (size_t i = 0; i < body_.size(); ++i) f += body_[i]->forward_flops(shapes_[i]);
  return f;
}

void Residual::set_training(bool on) {
  for (auto& l : body_) l->set_training(on);
}

void Residual::set_noise_seed(uint64_t seed) {
  // A distinct stream per body layer (golden-ratio steps, then each layer
  // hashes its own).
  for (size_t i = 0; i < body_.size(); ++i) body_[i]->set_noise_seed(seed + 0x9e3779b97f4a7c15ULL * (i + 1));
}

void Residual::set_need_input_grad(bool on) {
  need_input_grad_ = on;
  body_.front()->set_need_input_grad(on);
}

const Tensor& Residual::forward(const Tensor& x) {
  const Tensor* h = &x;
  for (auto& l : body_) h = &l->forward(*h);
  if (h->numel() != x.numel()) throw std::invalid_argument(name() + ": body output " + shape_str(h->shape()) +
                                                           " does not match input " + shape_str(x.shape()));
  ensure_shape(y_, x.shape());
  const int64_t n = x.numel();
  const float* a = x.data();
  const float* b = h->data();
  float* y = y_.data();
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  return y_;
}

const Tensor& Residual::backward(const Tensor& dy) {
  if (dy.numel() != y_.numel()) throw std::invalid_argument(name() + ": bad gradient " + shape_str(dy.shape()));
  const Tensor* g = &dy;
  for (size_t i = body_.size(); i-- > 0;) g = &body_[i]->backward(*g);
  if (!need_input_grad_) return dx_;
  ensure_shape(dx_, y_.shape());
  const int64_t n = dy.numel();
  const float* a = dy.data();
  const float* b = g->data();
  float* dx = dx_.data();
  for (int64_t i = 0; i < n; ++i) dx[i] = a[i] + b[i];
  return dx_;
}

}  // namespace murmur
