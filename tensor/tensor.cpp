#include "tensor/tensor.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace murmur {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_str(s));
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  out += ']';
  return out;
}

Tensor::Tensor(Shape shape) : shape_(std::move(shape)), numel_(shape_numel(shape_)) {
  storage_ = std::make_shared<std::vector<float>>(static_cast<size_t>(numel_), 0.f);
  data_ = storage_->data();
  storage_base_ = data_;
}

Tensor Tensor::view(float* data, Shape shape) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.data_ = data;
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  if (shape_numel(shape) != numel_)
    throw std::invalid_argument("reshape " + shape_str(shape_) + " -> " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  if (shape_.empty() || begin < 0 || end > shape_[0] || begin > end)
    throw std::out_of_range("rows [" + std::to_string(begin) + "," + std::to_string(end) +
                            ") of " + shape_str(shape_));
  int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  Tensor t = *this;
  t.data_ = data_ + begin * row;
  t.shape_[0] = end - begin;
  t.numel_ = (end - begin) * row;
  return t;
}

void Tensor::resize(Shape shape) {
  int64_t n = shape_numel(shape);
  if (storage_) {
    if (static_cast<size_t>(n) > storage_->size()) storage_->resize(static_cast<size_t>(n));
    data_ = storage_->data();
    storage_base_ = data_;
  } else if (n > numel_) {
    if (data_ != nullptr) throw std::logic_error("cannot grow a non-owning tensor view");
    storage_ = std::make_shared<std::vector<float>>(static_cast<size_t>(n), 0.f);
    data_ = storage_->data();
    storage_base_ = data_;
  }
  shape_ = std::move(shape);
  numel_ = n;
}

void Tensor::fill(float v) { std::fill(data_, data_ + numel_, v); }

Tensor Tensor::clone() const {
  Tensor t(shape_);
  if (numel_) std::memcpy(t.data_, data_, sizeof(float) * static_cast<size_t>(numel_));
  return t;
}

void Tensor::copy_from(const Tensor& other) {
  if (other.numel_ != numel_)
    throw std::invalid_argument("copy_from " + shape_str(other.shape_) + " into " + shape_str(shape_));
  if (numel_) std::memcpy(data_, other.data_, sizeof(float) * static_cast<size_t>(numel_));
}

}  // namespace murmur
