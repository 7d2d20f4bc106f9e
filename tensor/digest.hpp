// digest: SHA-256 (OpenSSL's libcrypto, which uses the CPU's SHA extensions
// where present) over byte and float buffers. Used to commit to tensors
// before anyone asks for them: a commitment binds the exact bytes.
// Floats are hashed as their little-endian IEEE bytes.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace murmur {

using digest = std::array<uint8_t, 32>;

// Incremental hashing with one reusable context (no allocation per hash).
// SHA-256 is fetched from OpenSSL's provider once per builder: OpenSSL 3's
// implicit fetch on every init costs more than hashing a small tensor.
class digest_builder {
 public:
  digest_builder();
  ~digest_builder();
  digest_builder(const digest_builder&) = delete;
  digest_builder& operator=(const digest_builder&) = delete;
  digest_builder& add(const void* data, size_t bytes);
  digest_builder& add(std::span<const float> v) { return add(v.data(), v.size() * sizeof(float)); }
  digest finish();  // returns the hash and starts a new one

 private:
  void* md_;   // EVP_MD, fetched once
  void* ctx_;  // EVP_MD_CTX
};

digest sha256(const void* data, size_t bytes);
std::string to_hex(const digest& d);

}  // namespace murmur
