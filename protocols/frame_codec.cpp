#include "protocols/frame_codec.hpp"

#include <array>
#include <cstring>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace murmur {

namespace {

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // Castagnoli, reflected
    t[i] = c;
  }
  return t;
}
constexpr auto crc_table = make_crc32c_table();

void put_u16(std::byte* p, uint16_t v) { p[0] = std::byte(v & 0xff); p[1] = std::byte(v >> 8); }
void put_u32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = std::byte((v >> (8 * i)) & 0xff);
}
uint16_t get_u16(const std::byte* p) {
  return static_cast<uint16_t>(std::to_integer<uint16_t>(p[0]) | (std::to_integer<uint16_t>(p[1]) << 8));
}
uint32_t get_u32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::to_integer<uint32_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

bool known_message_type(uint16_t t) {
  return t >= static_cast<uint16_t>(message_type::gossip_update) && t <= static_cast<uint16_t>(message_type::segment_unavailable);
}

std::string_view to_string(frame_error e) {
  switch (e) {
    case frame_error::none: return "ok";
    case frame_error::too_short: return "too_short";
    case frame_error::bad_magic: return "bad_magic";
    case frame_error::bad_version: return "bad_version";
    case frame_error::unknown_type: return "unknown_type";
    case frame_error::too_large: return "too_large";
    case frame_error::length_mismatch: return "length_mismatch";
    case frame_error::bad_checksum: return "bad_checksum";
    case frame_error::undecodable: return "undecodable";
  }
  return "unknown";
}

namespace {

uint32_t crc32c_table(const unsigned char* p, size_t n, uint32_t c) {
  for (size_t i = 0; i < n; ++i) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
// The SSE4.2 crc32 instruction computes the same polynomial ~20x faster,
// which matters: every frame is checksummed once sent and once per receiver.
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const unsigned char* p, size_t n, uint32_t c) {
  uint64_t c64 = c;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
  }
  c = static_cast<uint32_t>(c64);
  for (; n > 0; --n, ++p) c = _mm_crc32_u8(c, *p);
  return c;
}
#endif

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  auto* p = static_cast<const unsigned char*>(data);
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return crc32c_sse42(p, n, 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
#endif
  return crc32c_table(p, n, 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
}

uint32_t crc32c_portable(const void* data, size_t n) {
  return crc32c_table(static_cast<const unsigned char*>(data), n, 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
}

void seal_frame(message_type type, std::vector<std::byte>& buf) {
  const size_t n = buf.size() - frame_header_bytes;
  put_u32(buf.data(), frame_magic);
  put_u16(buf.data() + 4, protocol_version);
  put_u16(buf.data() + 6, static_cast<uint16_t>(type));
  put_u32(buf.data() + 8, static_cast<uint32_t>(n));
  put_u32(buf.data() + 12, crc32c(buf.data() + frame_header_bytes, n));
}

void encode_frame(message_type type, std::span<const std::byte> payload, std::vector<std::byte>& out) {
  out.resize(frame_header_bytes + payload.size());
  if (!payload.empty()) std::memcpy(out.data() + frame_header_bytes, payload.data(), payload.size());
  seal_frame(type, out);
}

decoded_frame decode_frame(std::span<const std::byte> f, size_t max_frame_bytes) {
  decoded_frame d;
  if (f.size() > max_frame_bytes) { d.error = frame_error::too_large; return d; }
  if (f.size() < frame_header_bytes) { d.error = frame_error::too_short; return d; }
  if (get_u32(f.data()) != frame_magic) { d.error = frame_error::bad_magic; return d; }
  if (get_u16(f.data() + 4) != protocol_version) { d.error = frame_error::bad_version; return d; }
  uint16_t type = get_u16(f.data() + 6);
  if (!known_message_type(type)) { d.error = frame_error::unknown_type; return d; }
  uint32_t len = get_u32(f.data() + 8);
  if (len != f.size() - frame_header_bytes) { d.error = frame_error::length_mismatch; return d; }
  auto payload = f.subspan(frame_header_bytes);
  if (crc32c(payload.data(), payload.size()) != get_u32(f.data() + 12)) {
    d.error = frame_error::bad_checksum;
    return d;
  }
  d.type = static_cast<message_type>(type);
  d.payload = payload;
  return d;
}

}  // namespace murmur
