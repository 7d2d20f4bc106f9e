// blake3: the BLAKE3 hash (256-bit output, 128-bit collision security) of
// byte buffers, computed by the official C implementation that Debian's
// librust-blake3-dev ships (its SSE2/SSE4.1/AVX2/AVX-512 code is chosen at
// run time; every path gives the same digest). BLAKE3 is itself a tree over
// 1 KiB chunks, so one long message is hashed many chunks at a time: on an
// AVX-512 core about three times as fast as four interleaved SHA-256
// streams with the SHA extensions (docs/trust.md).
#pragma once
#include <cstddef>
#include <memory>

#include "tensor/digest.hpp"

namespace murmur {

// Incremental hashing with one reusable state (allocated once, at
// construction; none per hash). Not thread-safe.
class blake3_builder {
 public:
  blake3_builder();
  ~blake3_builder();
  blake3_builder(const blake3_builder&) = delete;
  blake3_builder& operator=(const blake3_builder&) = delete;
  blake3_builder& add(const void* data, size_t bytes);
  digest finish();  // returns the hash and starts a new one

 private:
  struct state;
  std::unique_ptr<state> s_;
};

digest blake3(const void* data, size_t bytes);

}  // namespace murmur
