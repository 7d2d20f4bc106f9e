// Test helpers: take a valid frame apart and seal a (possibly damaged)
// payload under a correct header and checksum, so that only the payload
// decoder judges it.
#pragma once
#include <vector>

#include "protocols/frame_codec.hpp"

namespace murmur::testing {

inline std::vector<std::byte> payload_of(const std::vector<std::byte>& frame) {
  return {frame.begin() + frame_header_bytes, frame.end()};
}

inline std::vector<std::byte> reframe(message_type t, const std::vector<std::byte>& payload) {
  std::vector<std::byte> f;
  encode_frame(t, payload, f);
  return f;
}

}  // namespace murmur::testing
