// backend_buffer: a move-only owner of one compute_backend buffer (floats
// or int32s), freed by its backend when the owner goes; empty by default.
// For classes that keep backend buffers and must stay movable.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

#include "tensor/backend.hpp"

namespace murmur {

template <class T>
class backend_buffer {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, int32_t>);

 public:
  backend_buffer() = default;
  backend_buffer(compute_backend& be, int64_t n) : be_(&be), n_(n) {
    if constexpr (std::is_same_v<T, float>)
      p_ = be.alloc(n);
    else
      p_ = be.alloc_int(n);
  }
  backend_buffer(backend_buffer&& o) noexcept : be_(o.be_), p_(std::exchange(o.p_, nullptr)), n_(o.n_) {}
  backend_buffer& operator=(backend_buffer&& o) noexcept {
    if (this != &o) {
      release();
      be_ = o.be_;
      p_ = std::exchange(o.p_, nullptr);
      n_ = o.n_;
    }
    return *this;
  }
  backend_buffer(const backend_buffer&) = delete;
  backend_buffer& operator=(const backend_buffer&) = delete;
  ~backend_buffer() { release(); }

  T* get() const { return p_; }
  int64_t size() const { return n_; }

 private:
  void release() {
    if (!p_) return;
    if constexpr (std::is_same_v<T, float>)
      be_->free(p_);
    else
      be_->free_int(p_);
    p_ = nullptr;
  }
  compute_backend* be_ = nullptr;
  T* p_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace murmur
