#include "tensor/digest.hpp"

#include <bit>
#include <openssl/evp.h>
#include <stdexcept>

namespace murmur {

static_assert(std::endian::native == std::endian::little, "float bytes are hashed as stored");

digest_builder::digest_builder() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
  if (!md_ || !ctx_ ||
      EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), static_cast<const EVP_MD*>(md_), nullptr) != 1) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    EVP_MD_free(static_cast<EVP_MD*>(md_));
    throw std::runtime_error("digest: cannot initialise SHA-256 (OpenSSL)");
  }
}

digest_builder::~digest_builder() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
  EVP_MD_free(static_cast<EVP_MD*>(md_));
}

digest_builder& digest_builder::add(const void* data, size_t bytes) {
  if (bytes) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, bytes);
  return *this;
}

digest digest_builder::finish() {
  digest d{};
  unsigned int n = 0;
  auto* c = static_cast<EVP_MD_CTX*>(ctx_);
  EVP_DigestFinal_ex(c, d.data(), &n);
  EVP_DigestInit_ex(c, static_cast<const EVP_MD*>(md_), nullptr);
  return d;
}

digest sha256(const void* data, size_t bytes) {
  digest_builder b;
  return b.add(data, bytes).finish();
}

std::string to_hex(const digest& d) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (uint8_t v : d) {
    s += hex[v >> 4];
    s += hex[v & 15];
  }
  return s;
}

}  // namespace murmur
