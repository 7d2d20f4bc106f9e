#include "tensor/tree_digest.hpp"

#include <array>
#include <cstring>

#include "tensor/sha256_lanes.hpp"

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
  for (size_t o = 0; o < bytes; o += leaf_bytes) {
    const size_t n = std::min(leaf_bytes, bytes - o);
    leaves_.push_back({src + o, dst ? dst + o : nullptr, n, top_.size()});
    top_.resize(top_.size() + sizeof(digest));  // the leaf's digest, written at finish()
  }
  return *this;
}

digest tree_digest::finish() {
  std::array<std::span<const std::byte>, sha256_max_lanes> msgs;
  std::array<digest, sha256_max_lanes> out;
  for (size_t i = 0; i < leaves_.size(); i += sha256_max_lanes) {
    const size_t n = std::min(sha256_max_lanes, leaves_.size() - i);
    for (size_t l = 0; l < n; ++l) {
      const leaf& f = leaves_[i + l];
      // Copied just before hashing, so that the hash reads the copy from L1.
      if (f.dst) std::memcpy(f.dst, f.src, f.bytes);
      msgs[l] = {f.dst ? f.dst : f.src, f.bytes};
    }
    sha256_lanes(std::span(msgs.data(), n), std::span(out.data(), n));
    for (size_t l = 0; l < n; ++l) std::memcpy(top_.data() + leaves_[i + l].at, out[l].data(), sizeof(digest));
  }
  const digest d = hash_.add(top_.data(), top_.size()).finish();
  top_.clear();
  leaves_.clear();
  return d;
}

}  // namespace murmur
