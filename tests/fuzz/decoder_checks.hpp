// Invariants of the network decoders, shared by the libFuzzer harness
// (tests/fuzz/fuzz_decoders.cpp) and the corpus replay in the normal test
// suite (tests/protocols/test_fuzz_corpus.cpp), so both check exactly the same
// thing. Header-only; builds with g++ (tests) and clang++ (fuzzer).
//
// check_input(bytes) hands the bytes to every entry of `decoder_checks` twice:
// as they are (frame validation), and "resealed" (length and CRC32C fields of
// the header recomputed), because a mutated frame almost never carries a
// matching checksum and the payload decoders would otherwise stay unexplored.
//
// Adding a decoder (membership, state transfer, ...): write a
//   const char* check_xxx(std::span<const std::byte> frame)
// that returns nullptr when every invariant holds, or a static description
// of the violated one; add a row to `decoder_checks`; add its sources to
// FUZZ_DECODERS_SOURCES in tests/fuzz/CMakeLists.txt and seed frames to
// tests/fuzz/corpus/decoders/ (generator: tests/fuzz/make_corpus.cpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "protocols/frame_codec.hpp"
#include "protocols/gossip_messages.hpp"

namespace murmur::fuzz {

// The receiver's frame size limit the decoders are fuzzed with.
inline constexpr size_t max_frame_bytes = size_t{1} << 20;

inline uint32_t load_u32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::to_integer<uint32_t>(p[i]) << (8 * i);
  return v;
}

inline void store_u32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

// ---- frame codec -----------------------------------------------------------

inline const char* check_frame(std::span<const std::byte> in) {
  if (crc32c(in.data(), in.size()) != crc32c_portable(in.data(), in.size()))
    return "crc32c (hardware) differs from crc32c_portable";
  const decoded_frame d = decode_frame(in, max_frame_bytes);
  if (d.error == frame_error::none) {
    if (in.size() < frame_header_bytes) return "decode_frame accepted fewer bytes than a header";
    if (d.payload.data() != in.data() + frame_header_bytes || d.payload.size() != in.size() - frame_header_bytes)
      return "decode_frame's payload is not the bytes after the header";
    if (!known_message_type(static_cast<uint16_t>(d.type))) return "decode_frame accepted an unknown type";
    if (load_u32(in.data()) != frame_magic) return "decode_frame accepted a bad magic";
    if (crc32c(d.payload.data(), d.payload.size()) != load_u32(in.data() + 12))
      return "decode_frame accepted a bad checksum";
    if (decode_frame(in, in.size() - 1).error != frame_error::too_large)
      return "decode_frame accepted a frame over max_frame_bytes";
    std::vector<std::byte> again;
    encode_frame(d.type, d.payload, again);
    if (!std::equal(again.begin(), again.end(), in.begin(), in.end()))
      return "encode_frame(decode_frame(f)) != f";
  } else {
    if (!d.payload.empty()) return "decode_frame rejected a frame but exposes a payload";
    if (d.error == frame_error::undecodable) return "decode_frame reported a payload error";
  }
  return nullptr;
}

// ---- gossip updates --------------------------------------------------------

// What every message decode_gossip accepts must satisfy.
inline const char* gossip_invariants(const gossip_update& m) {
  const auto kind = static_cast<uint8_t>(m.kind);
  if (kind > 3) return "gossip: unknown kind accepted";
  for (float v : m.values)
    if (!std::isfinite(v)) return "gossip: non-finite value accepted";
  if (m.kind == update_kind::dense_set) {
    if (!m.indices.empty()) return "gossip dense_set: has indices";
    if (m.values.size() != m.dim) return "gossip dense_set: values.size() != dim";
  } else {
    if (m.values.size() != m.indices.size()) return "gossip sparse: values.size() != indices.size()";
    if (m.indices.size() > m.dim) return "gossip sparse: more indices than dim";
    for (size_t i = 0; i < m.indices.size(); ++i) {
      if (m.indices[i] >= m.dim) return "gossip sparse: index >= dim";
      if (i > 0 && m.indices[i] <= m.indices[i - 1]) return "gossip sparse: indices not strictly increasing";
    }
  }
  if (m.kind == update_kind::grid_set) {
    if (!std::isfinite(m.scale) || !(m.scale > 0)) return "gossip grid_set: scale not positive and finite";
    if (m.grid.size() != m.values.size()) return "gossip grid_set: grid.size() != values.size()";
    for (size_t i = 0; i < m.grid.size(); ++i)
      if (m.values[i] != static_cast<float>(m.grid[i]) * m.scale)
        return "gossip grid_set: value != float(grid) * scale";
  } else {
    if (!m.grid.empty()) return "gossip: grid entries on a non-grid kind";
    if (m.scale != 0) return "gossip: scale set on a non-grid kind";
  }
  return nullptr;
}

// A message full of stale state, to check that decoding into a reused
// message gives the same result as decoding into a fresh one.
inline gossip_update gossip_dirty() {
  gossip_update m;
  m.sender = 77;
  m.round = 88;
  m.step = 99;
  m.dim = 12345;
  m.kind = update_kind::grid_set;
  m.indices = {1, 2, 3, 4, 5, 6, 7};
  m.values = {1, 2, 3, 4, 5, 6, 7};
  m.scale = 0.5f;
  m.grid = {2, 4, 6, 8, 10, 12, 14};
  return m;
}

inline const char* check_gossip(std::span<const std::byte> in) {
  gossip_update m;
  const frame_error e = decode_gossip(in, max_frame_bytes, m);
  gossip_update reused = gossip_dirty();
  if (decode_gossip(in, max_frame_bytes, reused) != e) return "gossip: result depends on the output's old contents";
  const decoded_frame f = decode_frame(in, max_frame_bytes);
  if (f.error != frame_error::none) {
    if (e != f.error) return "gossip: decode_gossip and decode_frame disagree on a bad frame";
    return nullptr;
  }
  if (f.type != message_type::gossip_update) {
    if (e == frame_error::none) return "gossip: accepted a frame of another message type";
    return nullptr;
  }
  if (e != frame_error::none) {
    if (e != frame_error::undecodable) return "gossip: good frame rejected for a frame-level reason";
    return nullptr;
  }
  if (const char* w = gossip_invariants(m)) return w;
  if (!(reused == m)) return "gossip: decoding into a reused message differs from a fresh one";
  // Round trip: the canonical encoding decodes to the same message, is
  // stable, and is never longer than what was accepted (varints minimal).
  std::vector<std::byte> canon;
  encode_gossip(m, canon);
  if (canon.size() > in.size()) return "gossip: encode(decode(f)) is longer than f";
  gossip_update back;
  if (decode_gossip(canon, max_frame_bytes, back) != frame_error::none) return "gossip: decode rejects encode(m)";
  if (!(back == m)) return "gossip: decode(encode(m)) != m";
  std::vector<std::byte> canon2;
  encode_gossip(back, canon2);
  if (canon2 != canon) return "gossip: encode(decode(encode(m))) != encode(m)";
  return nullptr;
}

// ---- the table ---------------------------------------------------------------

using check_fn = const char* (*)(std::span<const std::byte>);
struct decoder_check {
  const char* name;
  check_fn check;
};
inline constexpr decoder_check decoder_checks[] = {
    {"frame", check_frame},
    {"gossip", check_gossip},
};

struct failure {
  const char* decoder;  // row of decoder_checks
  const char* what;     // the violated invariant
  bool resealed;        // found on the resealed copy of the input
};

// The input with its header's length and CRC fields recomputed; false when
// it is shorter than a header or already sealed (nothing new to check).
inline bool reseal(std::span<const std::byte> in, std::vector<std::byte>& out) {
  if (in.size() < frame_header_bytes) return false;
  out.assign(in.begin(), in.end());
  std::byte* h = out.data();
  store_u32(h + 8, static_cast<uint32_t>(out.size() - frame_header_bytes));
  store_u32(h + 12, crc32c(h + frame_header_bytes, out.size() - frame_header_bytes));
  return !std::equal(out.begin(), out.end(), in.begin(), in.end());
}

// Runs every decoder check on the input and on its resealed copy.
inline std::optional<failure> check_input(std::span<const std::byte> in) {
  for (const auto& d : decoder_checks)
    if (const char* w = d.check(in)) return failure{d.name, w, false};
  std::vector<std::byte> sealed;
  if (reseal(in, sealed))
    for (const auto& d : decoder_checks)
      if (const char* w = d.check(sealed)) return failure{d.name, w, true};
  return std::nullopt;
}

}  // namespace murmur::fuzz
