#include "protocols/membership_messages.hpp"

#include <algorithm>
#include <limits>

#include "protocols/curve_keys.hpp"
#include "protocols/wire_primitives.hpp"

namespace murmur {

namespace {

constexpr std::string_view endpoint_prefix = "tcp://";
// index, incarnation, status, endpoint_len, key_len: the fixed part of a peer record.
constexpr size_t peer_fixed_bytes = 4 + 8 + 1 + 2 + 1;
constexpr size_t update_fixed_bytes = 1 + 4 + 8 + 4;  // tag, sender, sender_incarnation, count

bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool valid_host(std::string_view h) {
  if (h.empty()) return false;
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    return std::all_of(h.begin() + 1, h.end() - 1, [](char c) { return is_hex(c) || c == ':' || c == '.'; });
  }
  return std::all_of(h.begin(), h.end(), [](char c) { return is_alnum(c) || c == '.' || c == '-'; });
}

bool valid_port(std::string_view p) {
  if (p.empty() || p.size() > 5 || p.front() == '0') return false;
  uint32_t v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v <= 65535;
}

// Strings travel as a length field of at most `limit` then the bytes; a
// longer string is cut at the limit (the receiver rejects it anyway).
template <class Archive>
void save_peer(Archive& ar, const peer_info& p) {
  const size_t ep = std::min<size_t>(p.endpoint.size(), std::numeric_limits<uint16_t>::max());
  const size_t key = std::min<size_t>(p.public_key.size(), std::numeric_limits<uint8_t>::max());
  ar(p.index, p.incarnation, static_cast<uint8_t>(p.status), static_cast<uint16_t>(ep), static_cast<uint8_t>(key));
  ar(cereal::binary_data(p.endpoint.data(), ep), cereal::binary_data(p.public_key.data(), key));
}

// Reads and validates one record; every length is checked against the bytes
// left before the strings are sized.
template <class Archive>
bool load_peer(Archive& ar, const wire::span_source& src, peer_info& p) {
  if (src.remaining() < peer_fixed_bytes) return false;
  uint8_t status = 0, key = 0;
  uint16_t ep = 0;
  ar(p.index, p.incarnation, status, ep, key);
  if (status > static_cast<uint8_t>(peer_status::left) || ep > max_endpoint_bytes ||
      (key != 0 && key != public_key_chars) || size_t{ep} + key > src.remaining())
    return false;
  p.status = static_cast<peer_status>(status);
  p.endpoint.resize(ep);
  p.public_key.resize(key);
  ar(cereal::binary_data(p.endpoint.data(), ep), cereal::binary_data(p.public_key.data(), key));
  return valid_endpoint(p.endpoint) && valid_public_key(p.public_key);
}

size_t record_bytes(const peer_info& p) { return peer_fixed_bytes + p.endpoint.size() + p.public_key.size(); }

// The three messages made only of fixed fields share their codec.
template <class... T>
void encode_fixed(message_type type, std::vector<std::byte>& out, const T&... fields) {
  wire::begin_frame(out, 1 + (sizeof(T) + ...));
  wire::write_fields(out, [&](auto& ar) { ar(fields...); });
  seal_frame(type, out);
}

template <class... T>
frame_error decode_fixed(std::span<const std::byte> frame, size_t max_frame_bytes, message_type type, T&... fields) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, type, payload); e != frame_error::none) return e;
  return wire::read_exactly(payload, fields...) ? frame_error::none : frame_error::undecodable;
}

}  // namespace

bool valid_endpoint(std::string_view e) {
  if (e.size() > max_endpoint_bytes || !e.starts_with(endpoint_prefix)) return false;
  e.remove_prefix(endpoint_prefix.size());
  const size_t colon = e.rfind(':');
  if (colon == std::string_view::npos) return false;
  return valid_host(e.substr(0, colon)) && valid_port(e.substr(colon + 1));
}

bool valid_public_key(const std::string& key) { return key.empty() || is_z85_key(key); }

bool valid_peer_info(const peer_info& p) {
  return static_cast<uint8_t>(p.status) <= static_cast<uint8_t>(peer_status::left) && valid_endpoint(p.endpoint) &&
         valid_public_key(p.public_key);
}

void encode_membership_join(const membership_join& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, 1 + record_bytes(m.self));
  wire::write_fields(out, [&](auto& ar) { save_peer(ar, m.self); });
  seal_frame(message_type::membership_join, out);
}

frame_error decode_membership_join(std::span<const std::byte> frame, size_t max_frame_bytes, membership_join& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::membership_join, payload); e != frame_error::none)
    return e;
  if (payload.empty() || payload[0] != wire::little_endian_tag) return frame_error::undecodable;
  const bool ok = wire::read_fields(payload, [&](auto& ar, const wire::span_source& src) {
    return load_peer(ar, src, m.self) && src.remaining() == 0;
  });
  return ok && m.self.status == peer_status::alive ? frame_error::none : frame_error::undecodable;
}

void encode_membership_update(const membership_update& m, std::vector<std::byte>& out) {
  size_t bytes = update_fixed_bytes;
  for (const auto& p : m.peers) bytes += record_bytes(p);
  wire::begin_frame(out, bytes);
  wire::write_fields(out, [&](auto& ar) {
    ar(m.sender, m.sender_incarnation, static_cast<uint32_t>(m.peers.size()));
    for (const auto& p : m.peers) save_peer(ar, p);
  });
  seal_frame(message_type::membership_update, out);
}

frame_error decode_membership_update(std::span<const std::byte> frame, size_t max_frame_bytes,
                                     membership_update& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::membership_update, payload);
      e != frame_error::none)
    return e;
  if (payload.size() < update_fixed_bytes || payload[0] != wire::little_endian_tag) return frame_error::undecodable;
  const bool ok = wire::read_fields(payload, [&](auto& ar, const wire::span_source& src) {
    uint32_t count = 0;
    ar(m.sender, m.sender_incarnation, count);
    // Each record takes at least peer_fixed_bytes: a count the bytes cannot hold allocates nothing.
    if (count > max_peers || uint64_t{count} * peer_fixed_bytes > src.remaining()) return false;
    m.peers.resize(count);
    for (auto& p : m.peers)
      if (!load_peer(ar, src, p)) return false;
    return src.remaining() == 0;
  });
  if (!ok) return frame_error::undecodable;
  // Distinct indices (at most max_peers of them, so the sort is cheap).
  std::vector<uint32_t> idx(m.peers.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = m.peers[i].index;
  std::sort(idx.begin(), idx.end());
  return std::adjacent_find(idx.begin(), idx.end()) == idx.end() ? frame_error::none : frame_error::undecodable;
}

void encode_heartbeat(const heartbeat& m, std::vector<std::byte>& out) {
  encode_fixed(message_type::heartbeat, out, m.sender, m.incarnation, m.seq);
}
frame_error decode_heartbeat(std::span<const std::byte> frame, size_t max_frame_bytes, heartbeat& m) {
  return decode_fixed(frame, max_frame_bytes, message_type::heartbeat, m.sender, m.incarnation, m.seq);
}

void encode_heartbeat_ack(const heartbeat_ack& m, std::vector<std::byte>& out) {
  encode_fixed(message_type::heartbeat_ack, out, m.sender, m.incarnation, m.seq);
}
frame_error decode_heartbeat_ack(std::span<const std::byte> frame, size_t max_frame_bytes, heartbeat_ack& m) {
  return decode_fixed(frame, max_frame_bytes, message_type::heartbeat_ack, m.sender, m.incarnation, m.seq);
}

void encode_leave(const leave& m, std::vector<std::byte>& out) {
  encode_fixed(message_type::leave, out, m.sender, m.incarnation);
}
frame_error decode_leave(std::span<const std::byte> frame, size_t max_frame_bytes, leave& m) {
  return decode_fixed(frame, max_frame_bytes, message_type::leave, m.sender, m.incarnation);
}

std::optional<message_type> peek_type(std::span<const std::byte> frame) {
  if (frame.size() < frame_header_bytes || wire::get_u32(frame.data()) != frame_magic) return std::nullopt;
  const auto u16_at = [&](size_t at) {
    return static_cast<uint16_t>(std::to_integer<uint16_t>(frame[at]) | (std::to_integer<uint16_t>(frame[at + 1]) << 8));
  };
  if (u16_at(4) != protocol_version || !known_message_type(u16_at(6))) return std::nullopt;
  return static_cast<message_type>(u16_at(6));
}

}  // namespace murmur
