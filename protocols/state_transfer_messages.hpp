// State transfer messages: a (re)joining peer pulls the current flat
// parameter vector in ranges, spread over several donors. Each is one frame
// (frame_codec.hpp) whose payload is Cereal portable binary: an endianness
// tag u8 (always 1, little), then, little-endian:
//   state_request: requester u32, request_id u64, offset u32, length u32
//   state_chunk:   sender u32, request_id u64, step u64, dim u32, offset u32,
//                  count u32, count float32 (values[i] is coordinate offset + i)
// A donor answers a request with one chunk of the same request_id covering
// [offset, offset + length) of its vector (cut at its dim). Decoders never
// throw, check the value count against the bytes present before allocating,
// and reject (frame_error::undecodable): a request with length 0 or over
// max_state_chunk_floats or past 2^32; a chunk with count over
// max_state_chunk_floats, offset + count > dim, a non-finite value, or a
// byte count that is not exactly count floats; a frame of another message
// type gives unknown_type.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "protocols/frame_codec.hpp"

namespace murmur {

inline constexpr uint32_t max_state_chunk_floats = 256 * 1024;  // 1 MiB of values per chunk
inline constexpr size_t max_state_chunk_frame_bytes = frame_header_bytes + 1 + 4 + 8 + 8 + 4 + 4 + 4 +
                                                      4 * size_t{max_state_chunk_floats};

struct state_request {
  uint32_t requester = 0;
  uint64_t request_id = 0;
  uint32_t offset = 0;  // first coordinate wanted
  uint32_t length = 0;  // 1..max_state_chunk_floats coordinates
  bool operator==(const state_request&) const = default;
};

struct state_chunk {
  uint32_t sender = 0;
  uint64_t request_id = 0;  // the request it answers
  uint64_t step = 0;        // the sender's local step when it copied the values
  uint32_t dim = 0;         // the sender's parameter count
  uint32_t offset = 0;
  std::vector<float> values;  // coordinates [offset, offset + values.size()), all finite
  bool operator==(const state_chunk&) const = default;
};

// Encoders write a complete frame into out (reusing its capacity), as given.
void encode_state_request(const state_request& msg, std::vector<std::byte>& out);
void encode_state_chunk(const state_chunk& msg, std::vector<std::byte>& out);

// Decoders take a complete frame. On success they return frame_error::none
// and fill out (reusing its capacity); otherwise out is unspecified.
frame_error decode_state_request(std::span<const std::byte> frame, size_t max_frame_bytes, state_request& out);
frame_error decode_state_chunk(std::span<const std::byte> frame, size_t max_frame_bytes, state_chunk& out);

// Plans the requests that fetch [0, dim) from `donors` donors: contiguous
// ranges in increasing offset order that cover [0, dim) exactly once, each at
// most max_chunk long; request i has id first_request_id + i and goes to
// donor i % donors (round-robin). There are as many ranges as the smallest
// multiple of donors that keeps them within max_chunk, or dim if fewer (one
// coordinate each); lengths differ by at most one, the longer ones first, so
// donors serve the same number of coordinates give or take one.
// max_chunk 0 or over max_state_chunk_floats means max_state_chunk_floats;
// donors 0 means 1; dim 0 gives no requests.
std::vector<state_request> split_state_requests(uint32_t requester, uint64_t first_request_id, uint32_t dim,
                                                uint32_t donors, uint32_t max_chunk);

}  // namespace murmur
