// tree_digest: a BLAKE3 commitment to a fixed sequence of values and large
// buffers: each large buffer is hashed on its own with BLAKE3 (itself a
// tree over 1 KiB chunks, hashed many chunks at a time with the CPU's
// vector units: tensor/blake3.hpp), and the digest is BLAKE3 over the top
// message: the small values as added, and for each buffer its byte length
// followed by its bytes (up to inline_bytes) or its BLAKE3 digest. For a
// fixed sequence of add calls (a schema) this encoding is injective, so the
// digest binds every byte as one BLAKE3 over them would (a collision of it
// gives one of BLAKE3: 128-bit security). Each buffer gets a fresh hasher,
// so it starts on a chunk boundary and keeps the widest vector path.
//
// Buffers are read at finish(), not when added: they must stay valid and
// unchanged until then. With copy_to, finish() also copies each buffer
// there, a slice at a time just before hashing the slice, so the bytes are
// read from memory once. Reuses its storage (no allocation once it has seen
// the largest sequence). Not thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tensor/blake3.hpp"
#include "tensor/digest.hpp"

namespace murmur {

class tree_digest {
 public:
  static constexpr size_t inline_bytes = 1024;
  static constexpr size_t copy_slice_bytes = 16 * 1024;  // copied, then hashed while in L1

  tree_digest& add(const void* data, size_t bytes);  // into the top message as is
  tree_digest& add_u64(uint64_t v) { return add(&v, sizeof v); }
  // Its length, then its bytes or its digest (see above).
  tree_digest& add_buffer(const void* data, size_t bytes, void* copy_to = nullptr);
  template <class T>
  tree_digest& add_vector(const std::vector<T>& v) {
    return add_buffer(v.data(), v.size() * sizeof(T));
  }
  template <class T>
  tree_digest& add_vector(std::span<const T> v) {
    return add_buffer(v.data(), v.size_bytes());
  }
  // One buffer given in pieces: hashed exactly as add_buffer of their
  // concatenation (a state held in two vectors, without joining them).
  tree_digest& add_buffer(std::span<const std::span<const std::byte>> pieces);
  digest finish();  // returns the digest and starts a new one

 private:
  struct buffer {
    const std::byte* src;
    std::byte* dst;  // null: no copy
    size_t bytes;
    size_t at;  // where its digest goes in top_
    bool more;  // the next buffer continues this one (pieces of one buffer)
  };
  std::vector<std::byte> top_;
  std::vector<buffer> buffers_;
  blake3_builder hash_;
};

}  // namespace murmur
