// Tensor: float32, contiguous row-major, shape up to any rank.
// A Tensor either owns its storage (shared, reference counted) or is a view
// into someone else's buffer (e.g. a layer's slice of the model's flat
// parameter buffer). Copying a Tensor copies the handle, never the data.
// resize() keeps the allocation when the new size fits, so hot loops can
// reuse buffers without touching the allocator. Handles that share an
// owning storage (copies of one Tensor) see each other's writes; when one
// of them grows it, the others are stale() until their own resize() (which
// then keeps the grown allocation): see ensure_shape (layer.hpp).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace murmur {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape);                 // owning, zero-filled
  static Tensor view(float* data, Shape shape); // non-owning view

  float* data() { return data_; }
  const float* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i < 0 ? i + ndim() : i)); }
  int64_t numel() const { return numel_; }
  bool empty() const { return numel_ == 0; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }
  float* begin() { return data_; }
  float* end() { return data_ + numel_; }
  const float* begin() const { return data_; }
  const float* end() const { return data_ + numel_; }

  // Same storage, another shape with the same element count.
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) along the first dimension, sharing storage.
  Tensor rows(int64_t begin, int64_t end) const;
  // Change shape; reallocates (owning tensors only) when capacity is short.
  void resize(Shape shape);
  void fill(float v);
  void zero() { fill(0.f); }
  // The storage this handle shares was reallocated by another handle's
  // resize() since this one last looked: data() is dangling until resize().
  bool stale() const { return storage_ && storage_base_ != storage_->data(); }
  // Owns (shares) storage, as opposed to a view or an empty handle.
  bool owning() const { return storage_ != nullptr; }
  // Deep copy into fresh owning storage.
  Tensor clone() const;
  void copy_from(const Tensor& other);  // same numel required

 private:
  std::shared_ptr<std::vector<float>> storage_;
  float* data_ = nullptr;
  const float* storage_base_ = nullptr;  // storage_->data() when data_ was last derived from it
  Shape shape_;
  int64_t numel_ = 0;
};

}  // namespace murmur
