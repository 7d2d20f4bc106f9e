#include "tensor/tree_digest.hpp"

#include <algorithm>
#include <cstring>

namespace murmur {

tree_digest& tree_digest::add(const void* data, size_t bytes) {
  const auto* p = static_cast<const std::byte*>(data);
  top_.insert(top_.end(), p, p + bytes);
  return *this;
}

tree_digest& tree_digest::add_buffer(const void* data, size_t bytes, void* copy_to) {
  add_u64(bytes);  // lengths first: two buffers must not hash like their concatenation
  const auto* src = static_cast<const std::byte*>(data);
  auto* dst = static_cast<std::byte*>(copy_to);
  if (bytes <= inline_bytes) {
    if (dst && bytes) std::memcpy(dst, src, bytes);
    return add(src, bytes);
  }
  buffers_.push_back({src, dst, bytes, top_.size(), false});
  top_.resize(top_.size() + sizeof(digest));  // the buffer's digest, written at finish()
  return *this;
}

tree_digest& tree_digest::add_buffer(std::span<const std::span<const std::byte>> pieces) {
  size_t bytes = 0;
  for (const auto& p : pieces) bytes += p.size();
  add_u64(bytes);
  if (bytes <= inline_bytes) {
    for (const auto& p : pieces) add(p.data(), p.size());
    return *this;
  }
  const size_t at = top_.size();
  for (const auto& p : pieces)
    if (!p.empty()) buffers_.push_back({p.data(), nullptr, p.size(), at, true});
  buffers_.back().more = false;
  top_.resize(top_.size() + sizeof(digest));
  return *this;
}

digest tree_digest::finish() {
  for (const buffer& b : buffers_) {
    if (b.dst) {
      // Slices of a multiple of BLAKE3's 16-chunk vector width, so that
      // every update but the last hashes whole 16-chunk subtrees.
      for (size_t o = 0; o < b.bytes; o += copy_slice_bytes) {
        const size_t n = std::min(copy_slice_bytes, b.bytes - o);
        std::memcpy(b.dst + o, b.src + o, n);
        hash_.add(b.dst + o, n);
      }
    } else {
      hash_.add(b.src, b.bytes);
    }
    if (b.more) continue;  // one hash over this piece and the next
    const digest d = hash_.finish();
    std::memcpy(top_.data() + b.at, d.data(), sizeof d);
  }
  const digest d = hash_.add(top_.data(), top_.size()).finish();
  top_.clear();
  buffers_.clear();
  return d;
}

}  // namespace murmur
