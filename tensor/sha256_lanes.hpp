// sha256_lanes: plain SHA-256 of several independent messages at once.
//
// With the CPU's SHA extensions one SHA-256 stream is bound by the latency
// of its round instruction, not by throughput: interleaving the rounds of
// several messages in one loop (here up to four, as many as the CPU keeps
// in flight) hashes them in about the time of one. Each output is exactly
// SHA-256 of its message (tests hold it to OpenSSL's); where the CPU has no
// SHA extensions the messages are hashed one by one with OpenSSL.
// Thread-safe (no state).
#pragma once
#include <cstddef>
#include <span>

#include "tensor/digest.hpp"

namespace murmur {

// The most messages sha256_lanes interleaves in one pass.
inline constexpr size_t sha256_max_lanes = 4;

// out[i] = SHA-256(msgs[i]) for every i; msgs.size() == out.size() <=
// sha256_max_lanes (std::invalid_argument otherwise). Messages of equal
// length interleave fully; unequal ones for their common length.
void sha256_lanes(std::span<const std::span<const std::byte>> msgs, std::span<digest> out);

// Whether this CPU hashes with the SHA extensions (else: OpenSSL, one by one).
bool sha256_lanes_accelerated();

}  // namespace murmur
