// Frame codec: every message that crosses a wire (or the simulated network)
// is one frame = 16-byte header + payload.
//   offset 0  u32 magic 'MRMR' (0x4D524D52)   offset 8  u32 payload length
//   offset 4  u16 protocol version           offset 12 u32 CRC32C(payload)
//   offset 6  u16 message type
// All header fields are little-endian. decode_frame never throws and never
// allocates: it validates and returns a view of the payload, or the reason
// the frame was dropped.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace murmur {

inline constexpr uint32_t frame_magic = 0x4D524D52;
inline constexpr uint16_t protocol_version = 1;
inline constexpr size_t frame_header_bytes = 16;

enum class message_type : uint16_t {
  gossip_update = 1,      // protocols/gossip_messages.hpp
  membership_join = 2,    // protocols/membership_messages.hpp
  membership_update = 3,
  heartbeat = 4,
  heartbeat_ack = 5,
  leave = 6,
  state_request = 7,      // protocols/state_transfer_messages.hpp
  state_chunk = 8,
  transcript_commit = 9,  // protocols/verify_messages.hpp
  tensor_request = 10,
  tensor_reply = 11,
  evidence = 12,
  matmul_task = 13,
  matmul_result = 14,
  stage_activation = 15,  // protocols/pipeline_messages.hpp
  stage_gradient = 16,
  stage_checkpoint = 17,
  stage_heartbeat = 18,
  stage_takeover = 19,
  miss_claim = 20,        // protocols/verify_messages.hpp (a verify message outside 9..14)
  inference_request = 21,  // protocols/inference_messages.hpp
  inference_activation = 22,
  inference_reply = 23,
  segment_commit = 24,     // actors/segment_messages.hpp (verify messages outside 9..14)
  segment_request = 25,
  segment_reply = 26,
  segment_evidence = 27,   // a failed segment reply relayed to the prover's other verifiers
  segment_unavailable = 28,  // a prover's answer that it no longer keeps the segment asked for
};
bool known_message_type(uint16_t t);

enum class frame_error : uint8_t {
  none = 0,
  too_short,       // fewer bytes than a header
  bad_magic,
  bad_version,
  unknown_type,
  too_large,       // over the receiver's max frame size
  length_mismatch, // header length != bytes present
  bad_checksum,
  undecodable,     // payload failed to decode or validate (set by payload decoders)
};
inline constexpr int frame_error_count = 9;
std::string_view to_string(frame_error e);

// CRC32C (Castagnoli), with the SSE4.2 instruction where the CPU has it.
uint32_t crc32c(const void* data, size_t n);
uint32_t crc32c_portable(const void* data, size_t n);  // table-driven reference

// Writes a frame holding `payload` into `out` (replacing its contents).
void encode_frame(message_type type, std::span<const std::byte> payload, std::vector<std::byte>& out);
// For encoders that write the payload in place: buf holds frame_header_bytes
// of room followed by the payload; this fills in the header.
void seal_frame(message_type type, std::vector<std::byte>& buf);

struct decoded_frame {
  frame_error error = frame_error::none;
  message_type type{};
  std::span<const std::byte> payload;
};
decoded_frame decode_frame(std::span<const std::byte> frame, size_t max_frame_bytes);

}  // namespace murmur
