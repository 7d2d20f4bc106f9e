// tree_digest: a SHA-256 commitment to a fixed sequence of values and large
// buffers, hashed faster than one SHA-256 stream: each large buffer is cut
// into 16 KiB leaves, the leaves are hashed several at a time
// (sha256_lanes), and the digest is SHA-256 over the top message: the small
// values as added, and for each buffer its byte length followed by its
// bytes (up to inline_bytes) or its leaves' digests in order. For a fixed
// sequence of add calls (a schema) this encoding is injective, so the
// digest binds every byte as a plain SHA-256 over them would (a collision
// of it gives one of SHA-256).
//
// Buffers are read at finish(), not when added: they must stay valid and
// unchanged until then. With copy_to, finish() also copies each leaf there
// just before hashing it, so the bytes are read from memory once. Reuses
// its storage (no allocation once it has seen the largest sequence). Not
// thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tensor/digest.hpp"

namespace murmur {

class tree_digest {
 public:
  static constexpr size_t leaf_bytes = 16 * 1024;
  static constexpr size_t inline_bytes = 1024;

  tree_digest& add(const void* data, size_t bytes);  // into the top message as is
  tree_digest& add_u64(uint64_t v) { return add(&v, sizeof v); }
  // Its length, then its bytes or its leaves' digests (see above).
  tree_digest& add_buffer(const void* data, size_t bytes, void* copy_to = nullptr);
  template <class T>
  tree_digest& add_vector(const std::vector<T>& v) {
    return add_buffer(v.data(), v.size() * sizeof(T));
  }
  digest finish();  // returns the digest and starts a new one

 private:
  struct leaf {
    const std::byte* src;
    std::byte* dst;  // null: no copy
    size_t bytes;
    size_t at;  // where its digest goes in top_
  };
  std::vector<std::byte> top_;
  std::vector<leaf> leaves_;
  digest_builder hash_;
};

}  // namespace murmur
