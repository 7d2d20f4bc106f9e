#include "protocols/gossip_messages.hpp"

#include <algorithm>
#include <cmath>

#include "protocols/wire_primitives.hpp"

namespace murmur {

namespace {

using wire::get_floats;
using wire::put_floats;
using wire::put_u32_at;

// The fixed fields go through Cereal's portable binary archive; the arrays
// that follow are written and read in place (protocols/wire_primitives.hpp).
constexpr size_t fixed_fields_bytes = 1 + 4 + 8 + 8 + 4 + 1 + 4 + 4;
constexpr size_t gap_bytes_at = fixed_fields_bytes - 4;

void put_varint(std::vector<std::byte>& out, uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::byte>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::byte>(v));
}

// Reads one varint of at most 5 bytes from in[p, end); false if truncated or too long.
bool get_varint(const std::byte* in, size_t end, size_t& p, uint32_t& out) {
  uint64_t v = 0;
  for (int shift = 0; shift <= 28; shift += 7) {
    if (p >= end) return false;
    auto b = std::to_integer<uint8_t>(in[p++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (v > UINT32_MAX) return false;
      out = static_cast<uint32_t>(v);
      return true;
    }
  }
  return false;
}

uint32_t zigzag(int32_t v) { return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31); }
int32_t unzigzag(uint32_t v) { return static_cast<int32_t>((v >> 1) ^ (~(v & 1) + 1)); }

}  // namespace

void encode_gossip(const gossip_update& m, std::vector<std::byte>& out) {
  const bool dense = m.kind == update_kind::dense_set;
  const uint32_t count = dense ? m.dim : static_cast<uint32_t>(m.indices.size());
  wire::begin_frame(out, fixed_fields_bytes + 8 + count * (dense ? 4 : 6));
  wire::write_fields(out, [&](auto& ar) {
    ar(m.sender, m.round, m.step, m.dim, static_cast<uint8_t>(m.kind), count, uint32_t{0});
  });
  const size_t payload_at = frame_header_bytes;
  if (!dense) {
    const size_t g0 = out.size();
    for (size_t i = 0; i < m.indices.size(); ++i)
      put_varint(out, i == 0 ? m.indices[0] : m.indices[i] - m.indices[i - 1] - 1);
    put_u32_at(out, payload_at + gap_bytes_at, static_cast<uint32_t>(out.size() - g0));
  }
  if (m.kind == update_kind::grid_set) {
    put_floats(out, &m.scale, 1);
    const size_t len_at = out.size();
    out.resize(len_at + 4);
    for (int32_t g : m.grid) put_varint(out, zigzag(g));
    put_u32_at(out, len_at, static_cast<uint32_t>(out.size() - len_at - 4));
  } else {
    put_floats(out, m.values.data(), m.values.size());
  }
  seal_frame(message_type::gossip_update, out);
}

frame_error decode_gossip(std::span<const std::byte> frame, size_t max_frame_bytes, gossip_update& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::gossip_update, payload); e != frame_error::none)
    return e;
  const std::byte* in = payload.data();
  const size_t end = payload.size();
  if (end < fixed_fields_bytes) return frame_error::undecodable;
  uint8_t kind = 0;
  uint32_t count = 0, gap_bytes = 0;
  if (!wire::read_fields(payload.first(fixed_fields_bytes), [&](auto& ar, const wire::span_source&) {
        ar(m.sender, m.round, m.step, m.dim, kind, count, gap_bytes);
        return true;
      }))
    return frame_error::undecodable;
  if (kind > 3) return frame_error::undecodable;
  m.kind = static_cast<update_kind>(kind);
  const bool dense = m.kind == update_kind::dense_set, grid = m.kind == update_kind::grid_set;
  if (count > m.dim || (dense && count != m.dim) || (dense && gap_bytes != 0)) return frame_error::undecodable;
  // Every count is checked against the bytes actually present before any allocation.
  size_t p = fixed_fields_bytes;
  const uint64_t rest = end - p;
  if (grid ? static_cast<uint64_t>(gap_bytes) + 8 + count > rest
           : static_cast<uint64_t>(gap_bytes) + 4ull * count != rest)
    return frame_error::undecodable;
  m.indices.clear();
  if (!dense) {
    const size_t gaps_end = p + gap_bytes;
    // Geometric growth: a receiver's buffers stop growing after a few rounds
    // instead of reallocating at every new largest frame.
    if (m.indices.capacity() < count) m.indices.reserve(std::max<size_t>(count, 2 * m.indices.capacity()));
    uint64_t idx = 0;
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t v = 0;
      if (!get_varint(in, gaps_end, p, v)) return frame_error::undecodable;
      idx = i == 0 ? v : idx + 1 + v;
      if (idx >= m.dim) return frame_error::undecodable;
      m.indices.push_back(static_cast<uint32_t>(idx));
    }
    if (p != gaps_end) return frame_error::undecodable;
  }
  m.values.resize(count);
  m.grid.clear();
  if (grid) {
    get_floats(in + p, &m.scale, 1);
    const uint32_t value_bytes = wire::get_u32(in + p + 4);
    p += 8;
    if (!std::isfinite(m.scale) || m.scale <= 0 || value_bytes != end - p) return frame_error::undecodable;
    m.grid.resize(count);
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t z = 0;
      if (!get_varint(in, end, p, z)) return frame_error::undecodable;
      m.grid[i] = unzigzag(z);
      m.values[i] = static_cast<float>(m.grid[i]) * m.scale;
    }
    if (p != end) return frame_error::undecodable;
  } else {
    m.scale = 0;
    get_floats(in + p, m.values.data(), count);
  }
  for (float v : m.values)
    if (!std::isfinite(v)) return frame_error::undecodable;
  return frame_error::none;
}

}  // namespace murmur
