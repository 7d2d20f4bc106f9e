#include "protocols/gossip_messages.hpp"

#include <cereal/archives/portable_binary.hpp>
#include <cmath>
#include <istream>
#include <ostream>
#include <streambuf>

namespace murmur {

namespace {

// Stream buffers over byte vectors/spans so Cereal reads and writes in place.
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
  size_t remaining() const { return static_cast<size_t>(egptr() - gptr()); }
};

void put_varint(std::vector<uint8_t>& out, uint32_t v) {
  while (v >= 0x80) { out.push_back(static_cast<uint8_t>(v | 0x80)); v >>= 7; }
  out.push_back(static_cast<uint8_t>(v));
}

// Reads one varint of at most 5 bytes; false if truncated or too long.
bool get_varint(const std::vector<uint8_t>& in, size_t& p, uint32_t& out) {
  uint64_t v = 0;
  for (int shift = 0; shift <= 28; shift += 7) {
    if (p >= in.size()) return false;
    uint8_t b = in[p++];
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
  std::vector<uint8_t> gaps;
  if (m.kind != update_kind::dense_set) {
    gaps.reserve(m.indices.size() * 2);
    uint32_t prev = 0;
    for (size_t i = 0; i < m.indices.size(); ++i) {
      put_varint(gaps, i == 0 ? m.indices[0] : m.indices[i] - prev - 1);
      prev = m.indices[i];
    }
  }
  std::vector<std::byte> payload;
  payload.reserve(32 + gaps.size() + 4 * m.values.size());
  {
    vector_sink sink(payload);
    std::ostream os(&sink);
    cereal::PortableBinaryOutputArchive ar(os);
    uint32_t count = m.kind == update_kind::dense_set ? m.dim : static_cast<uint32_t>(m.indices.size());
    ar(m.sender, m.round, m.step, m.dim, static_cast<uint8_t>(m.kind), count,
       static_cast<uint32_t>(gaps.size()));
    if (!gaps.empty()) ar(cereal::binary_data(gaps.data(), gaps.size()));
    if (m.kind == update_kind::grid_set) {
      std::vector<uint8_t> q;
      q.reserve(m.grid.size() * 2);
      for (int32_t g : m.grid) put_varint(q, zigzag(g));
      ar(m.scale, static_cast<uint32_t>(q.size()));
      if (!q.empty()) ar(cereal::binary_data(q.data(), q.size()));
    } else if (!m.values.empty()) {
      ar(cereal::binary_data(m.values.data(), m.values.size() * sizeof(float)));
    }
  }
  encode_frame(message_type::gossip_update, payload, out);
}

frame_error decode_gossip(std::span<const std::byte> frame, size_t max_frame_bytes, gossip_update& m) {
  auto f = decode_frame(frame, max_frame_bytes);
  if (f.error != frame_error::none) return f.error;
  if (f.type != message_type::gossip_update) return frame_error::unknown_type;
  try {
    span_source src(f.payload);
    std::istream is(&src);
    cereal::PortableBinaryInputArchive ar(is);
    uint8_t kind = 0;
    uint32_t count = 0, gap_bytes = 0;
    ar(m.sender, m.round, m.step, m.dim, kind, count, gap_bytes);
    if (kind > 3) return frame_error::undecodable;
    m.kind = static_cast<update_kind>(kind);
    bool dense = m.kind == update_kind::dense_set;
    if (count > m.dim || (dense && count != m.dim) || (dense && gap_bytes != 0)) return frame_error::undecodable;
    const bool grid = m.kind == update_kind::grid_set;
    // Every count is checked against the bytes actually present before any allocation.
    if (grid ? static_cast<uint64_t>(gap_bytes) + 8 + count > src.remaining()
             : static_cast<uint64_t>(gap_bytes) + 4ull * count != src.remaining())
      return frame_error::undecodable;
    m.indices.clear();
    if (!dense) {
      std::vector<uint8_t> gaps(gap_bytes);
      if (gap_bytes) ar(cereal::binary_data(gaps.data(), gaps.size()));
      m.indices.reserve(count);
      uint64_t idx = 0;
      size_t p = 0;
      for (uint32_t i = 0; i < count; ++i) {
        uint32_t v = 0;
        if (!get_varint(gaps, p, v)) return frame_error::undecodable;
        idx = i == 0 ? v : idx + 1 + v;
        if (idx >= m.dim) return frame_error::undecodable;
        m.indices.push_back(static_cast<uint32_t>(idx));
      }
      if (p != gaps.size()) return frame_error::undecodable;
    }
    m.values.resize(count);
    m.grid.clear();
    if (grid) {
      uint32_t value_bytes = 0;
      ar(m.scale, value_bytes);
      if (!std::isfinite(m.scale) || m.scale <= 0 || value_bytes != src.remaining() || value_bytes < count ||
          value_bytes > 5ull * count)
        return frame_error::undecodable;
      std::vector<uint8_t> q(value_bytes);
      if (value_bytes) ar(cereal::binary_data(q.data(), q.size()));
      m.grid.resize(count);
      size_t p = 0;
      for (uint32_t i = 0; i < count; ++i) {
        uint32_t z = 0;
        if (!get_varint(q, p, z)) return frame_error::undecodable;
        m.grid[i] = unzigzag(z);
        m.values[i] = static_cast<float>(m.grid[i]) * m.scale;
      }
      if (p != q.size()) return frame_error::undecodable;
    } else {
      m.scale = 0;
      if (count) ar(cereal::binary_data(m.values.data(), count * sizeof(float)));
    }
    for (float v : m.values)
      if (!std::isfinite(v)) return frame_error::undecodable;
  } catch (const std::exception&) {
    return frame_error::undecodable;
  }
  return frame_error::none;
}

}  // namespace murmur
