// Membership messages (SWIM-like): how `murmur peer` processes find each
// other, detect failures and leave. Each is one frame (frame_codec.hpp) whose
// payload is Cereal portable binary: an endianness tag u8 (always 1, little),
// then the fields below in order, little-endian.
//   peer record: index u32, incarnation u64, status u8, endpoint_len u16,
//                key_len u8, endpoint bytes, key bytes
//   membership_join:   one peer record (status alive)
//   membership_update: sender u32, sender_incarnation u64, count u32, count records
//   heartbeat, heartbeat_ack: sender u32, incarnation u64, seq u64
//   leave:             sender u32, incarnation u64
// Encoders write what they are given (a string over its length field's range
// is cut there, so the frame stays well-formed and the receiver rejects it);
// valid_peer_info says beforehand whether a receiver will accept a record.
// Decoders never throw, check every count and length against the bytes
// present before allocating, and reject (frame_error::undecodable) any bad
// field: status byte, endpoint or key format, too many or duplicate peers,
// trailing bytes; a frame of another message type gives unknown_type.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/frame_codec.hpp"

namespace murmur {

inline constexpr size_t max_endpoint_bytes = 256;  // "tcp://HOST:PORT"
inline constexpr size_t public_key_chars = 40;     // Z85 CURVE public key; empty when CURVE is off
inline constexpr size_t max_peers = 1024;          // per membership_update

enum class peer_status : uint8_t { alive = 0, suspect = 1, dead = 2, left = 3 };

struct peer_info {
  uint32_t index = 0;
  std::string endpoint;    // tcp://HOST:PORT
  std::string public_key;  // 40 Z85 characters, or empty
  uint64_t incarnation = 0;
  peer_status status = peer_status::alive;
  bool operator==(const peer_info&) const = default;
};

// Sent to a known peer to enter (or re-enter, with a higher incarnation).
struct membership_join {
  peer_info self;
  bool operator==(const membership_join&) const = default;
};

// The sender's peer list, or a delta of it, spread by gossip. Indices are
// distinct within one message.
struct membership_update {
  uint32_t sender = 0;
  uint64_t sender_incarnation = 0;
  std::vector<peer_info> peers;
  bool operator==(const membership_update&) const = default;
};

struct heartbeat {
  uint32_t sender = 0;
  uint64_t incarnation = 0;
  uint64_t seq = 0;
  bool operator==(const heartbeat&) const = default;
};

// The answer to a heartbeat: the responder's own sender and incarnation,
// the seq of the heartbeat it answers.
struct heartbeat_ack {
  uint32_t sender = 0;
  uint64_t incarnation = 0;
  uint64_t seq = 0;
  bool operator==(const heartbeat_ack&) const = default;
};

struct leave {
  uint32_t sender = 0;
  uint64_t incarnation = 0;
  bool operator==(const leave&) const = default;
};

// Largest payload bytes of one peer record, and the largest membership
// frame: a receiver passing this as max_frame_bytes accepts every valid one.
inline constexpr size_t max_peer_record_bytes = 4 + 8 + 1 + 2 + 1 + max_endpoint_bytes + public_key_chars;
inline constexpr size_t max_membership_frame_bytes =
    frame_header_bytes + 1 + 4 + 8 + 4 + max_peers * max_peer_record_bytes;

// tcp://HOST:PORT with PORT in 1..65535 (decimal, no leading zero) and HOST
// either a name or IPv4 address of [A-Za-z0-9.-] or a bracketed IPv6
// address of [0-9A-Fa-f:.] ("tcp://[::1]:5555"); at most max_endpoint_bytes.
bool valid_endpoint(std::string_view endpoint);
// Empty, or exactly public_key_chars characters of the Z85 alphabet (is_z85_key).
bool valid_public_key(const std::string& key);
// What decoders accept in a peer record (any status; a join also needs alive).
bool valid_peer_info(const peer_info& p);

// Encoders write a complete frame into out (reusing its capacity).
void encode_membership_join(const membership_join& msg, std::vector<std::byte>& out);
void encode_membership_update(const membership_update& msg, std::vector<std::byte>& out);
void encode_heartbeat(const heartbeat& msg, std::vector<std::byte>& out);
void encode_heartbeat_ack(const heartbeat_ack& msg, std::vector<std::byte>& out);
void encode_leave(const leave& msg, std::vector<std::byte>& out);

// Decoders take a complete frame. On success they return frame_error::none
// and fill out (reusing its capacity); otherwise out is unspecified.
frame_error decode_membership_join(std::span<const std::byte> frame, size_t max_frame_bytes, membership_join& out);
frame_error decode_membership_update(std::span<const std::byte> frame, size_t max_frame_bytes,
                                     membership_update& out);
frame_error decode_heartbeat(std::span<const std::byte> frame, size_t max_frame_bytes, heartbeat& out);
frame_error decode_heartbeat_ack(std::span<const std::byte> frame, size_t max_frame_bytes, heartbeat_ack& out);
frame_error decode_leave(std::span<const std::byte> frame, size_t max_frame_bytes, leave& out);

// For dispatch: the type of a frame whose header has the right magic, version
// and a known type, without checking its length or checksum (the decode_X
// chosen from it does); nullopt otherwise. Works for every message type.
std::optional<message_type> peek_type(std::span<const std::byte> frame);

}  // namespace murmur
