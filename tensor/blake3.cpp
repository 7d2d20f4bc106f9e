#include "tensor/blake3.hpp"

#include <blake3.h>

namespace murmur {

struct blake3_builder::state {
  blake3_hasher h;
};

blake3_builder::blake3_builder() : s_(std::make_unique<state>()) { blake3_hasher_init(&s_->h); }

blake3_builder::~blake3_builder() = default;

blake3_builder& blake3_builder::add(const void* data, size_t bytes) {
  blake3_hasher_update(&s_->h, data, bytes);
  return *this;
}

digest blake3_builder::finish() {
  digest d;
  static_assert(sizeof(digest) == BLAKE3_OUT_LEN);
  blake3_hasher_finalize(&s_->h, d.data(), d.size());
  blake3_hasher_init(&s_->h);
  return d;
}

digest blake3(const void* data, size_t bytes) {
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, data, bytes);
  digest d;
  blake3_hasher_finalize(&h, d.data(), d.size());
  return d;
}

}  // namespace murmur
