// Wire primitives shared by the message codecs (internal: include it from
// protocols/*.cpp only). Fixed fields go through Cereal's portable binary
// archive (a one-byte endianness tag, then little-endian fields) over the
// stream buffers below, which write into a byte vector and read from a span
// without copies; float arrays are written and read in place, little-endian,
// as Cereal's binary_data would, but without staging copies.
#pragma once
#include <bit>
#include <cereal/archives/portable_binary.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <span>
#include <streambuf>
#include <type_traits>
#include <vector>

#include "protocols/frame_codec.hpp"

namespace murmur::wire {

// The endianness tag Cereal writes first: 1 = little-endian fields.
inline constexpr std::byte little_endian_tag{1};

class vector_sink : public std::streambuf {
 public:
  explicit vector_sink(std::vector<std::byte>& v) : v_(v) {}
 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    auto* p = reinterpret_cast<const std::byte*>(s);
    v_.insert(v_.end(), p, p + n);
    return n;
  }
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) v_.push_back(static_cast<std::byte>(c));
    return c;
  }
 private:
  std::vector<std::byte>& v_;
};

class span_source : public std::streambuf {
 public:
  explicit span_source(std::span<const std::byte> s) {
    auto* b = const_cast<char*>(reinterpret_cast<const char*>(s.data()));
    setg(b, b, b + s.size());
  }
  // Bytes not read yet: every length field is checked against this before
  // anything is allocated for it.
  size_t remaining() const { return static_cast<size_t>(egptr() - gptr()); }
};

// Starts a frame in out (reusing its capacity): room for the header, which
// seal_frame fills in once the payload follows.
inline void begin_frame(std::vector<std::byte>& out, size_t payload_bytes_hint) {
  out.clear();
  out.reserve(frame_header_bytes + payload_bytes_hint);
  out.resize(frame_header_bytes);
}

// Appends to out what write(archive) writes through one portable binary
// archive (the endianness tag first, then the fields, little-endian).
template <class F>
void write_fields(std::vector<std::byte>& out, F&& write) {
  vector_sink sink(out);
  std::ostream os(&sink);
  cereal::PortableBinaryOutputArchive ar(os, cereal::PortableBinaryOutputArchive::Options::LittleEndian());
  write(ar);
}

// Runs read(archive, source) over payload through one portable binary
// archive. Returns what read returns, or false if anything threw (a short
// read): never throws.
template <class F>
bool read_fields(std::span<const std::byte> payload, F&& read) noexcept {
  try {
    span_source src(payload);
    std::istream is(&src);
    cereal::PortableBinaryInputArchive ar(is);
    return read(ar, static_cast<const span_source&>(src));
  } catch (...) {
    return false;
  }
}

// A payload that is exactly the little-endian tag and the given arithmetic
// fields, nothing more: true and the fields filled, or false.
template <class... T>
bool read_exactly(std::span<const std::byte> payload, T&... fields) noexcept {
  static_assert((std::is_arithmetic_v<T> && ...));
  if (payload.size() != 1 + (sizeof(T) + ... + 0) || payload[0] != little_endian_tag) return false;
  return read_fields(payload, [&](auto& ar, const span_source&) {
    ar(fields...);
    return true;
  });
}

// decode_frame plus the type check every payload decoder starts with.
inline frame_error open_frame(std::span<const std::byte> frame, size_t max_frame_bytes, message_type want,
                              std::span<const std::byte>& payload) {
  auto f = decode_frame(frame, max_frame_bytes);
  if (f.error != frame_error::none) return f.error;
  if (f.type != want) return frame_error::unknown_type;
  payload = f.payload;
  return frame_error::none;
}

inline void put_u32_at(std::vector<std::byte>& out, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + static_cast<size_t>(i)] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

inline uint32_t get_u32(const std::byte* in) {
  uint32_t v = 0;
  for (int b = 0; b < 4; ++b) v |= std::to_integer<uint32_t>(in[b]) << (8 * b);
  return v;
}

// Appends n floats, little-endian.
inline void put_floats(std::vector<std::byte>& out, const float* v, size_t n) {
  size_t at = out.size();
  out.resize(at + 4 * n);
  if constexpr (std::endian::native == std::endian::little) {
    if (n) std::memcpy(out.data() + at, v, 4 * n);
  } else {
    for (size_t i = 0; i < n; ++i) put_u32_at(out, at + 4 * i, std::bit_cast<uint32_t>(v[i]));
  }
}

// Reads n little-endian floats from in (the caller has checked 4n bytes are there).
inline void get_floats(const std::byte* in, float* v, size_t n) {
  if constexpr (std::endian::native == std::endian::little) {
    if (n) std::memcpy(v, in, 4 * n);
  } else {
    for (size_t i = 0; i < n; ++i) v[i] = std::bit_cast<float>(get_u32(in + 4 * i));
  }
}

}  // namespace murmur::wire
