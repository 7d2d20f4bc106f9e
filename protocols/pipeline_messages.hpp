// Pipeline messages: activations forward and gradients backward between the
// stages of one pipeline replica, and the frames that keep a pipeline alive
// (checkpoints to a spare, heartbeats, take-over). Each is one frame
// (frame_codec.hpp) whose payload is Cereal portable binary (endianness tag
// u8 = 1, then little-endian fixed fields) followed by raw little-endian arrays:
//   stage_activation (15) / stage_gradient (16):
//       replica u16, stage u16 (the sender), step u64, generation u32,
//       microbatch u16, batch u32 (samples here), total u32 (samples in the
//       whole batch), dims u8 (1..max_stage_dims), dims x u32 per-sample
//       shape, then [activation only: batch x i32 labels], then
//       batch x prod(shape) floats
//   stage_checkpoint (17): replica u16, stage u16, step u64, generation u32,
//       bytes u32, then the checkpoint blob (protocols/checkpoint_file.hpp),
//       carried opaque (its reader checks it)
//   stage_heartbeat (18): replica u16, stage u16, node u32, step u64, generation u32
//   stage_takeover (19): replica u16, stage u16, node u32 (the new host),
//       resume_step u64, generation u32 (the pipeline's new generation)
// Decoders never throw, size every array from the header fields and check it
// against the bytes present (64-bit arithmetic) before allocating, and give
// frame_error::undecodable for: wrong sizes, dims 0 or over max_stage_dims,
// a zero or over-max_stage_dim dimension, batch 0 or batch > total,
// microbatch over max_microbatches, non-finite floats, negative labels,
// an empty checkpoint blob.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "protocols/frame_codec.hpp"

namespace murmur {

inline constexpr uint8_t max_stage_dims = 4;
inline constexpr uint32_t max_stage_dim = 1u << 20;
inline constexpr uint16_t max_microbatches = 4096;

struct stage_tensor {
  bool gradient = false;             // stage_gradient when true, stage_activation otherwise
  uint16_t replica = 0, stage = 0;   // the sender
  uint64_t step = 0;                 // optimizer step this micro-batch belongs to (1-based)
  uint32_t generation = 0;           // bumped at every take-over; older frames are stale
  uint16_t microbatch = 0;
  uint32_t batch = 0, total = 0;
  std::vector<uint32_t> shape;       // per sample
  std::vector<int32_t> labels;       // activation: batch labels; gradient: empty
  std::vector<float> values;         // batch x prod(shape)
  bool operator==(const stage_tensor&) const = default;
};

struct stage_checkpoint_msg {
  uint16_t replica = 0, stage = 0;
  uint64_t step = 0;
  uint32_t generation = 0;
  std::vector<std::byte> blob;
  bool operator==(const stage_checkpoint_msg&) const = default;
};

struct stage_heartbeat {
  uint16_t replica = 0, stage = 0;
  uint32_t node = 0;
  uint64_t step = 0;
  uint32_t generation = 0;
  bool operator==(const stage_heartbeat&) const = default;
};

struct stage_takeover {
  uint16_t replica = 0, stage = 0;
  uint32_t node = 0;
  uint64_t resume_step = 0;
  uint32_t generation = 0;
  bool operator==(const stage_takeover&) const = default;
};

// Writes the frame into out (replacing its contents, reusing its capacity).
void encode_stage_tensor(const stage_tensor& m, std::vector<std::byte>& out);
void encode_stage_checkpoint(const stage_checkpoint_msg& m, std::vector<std::byte>& out);
void encode_stage_heartbeat(const stage_heartbeat& m, std::vector<std::byte>& out);
void encode_stage_takeover(const stage_takeover& m, std::vector<std::byte>& out);

// Decoders take a complete frame; stage_tensor takes either type 15 or 16.
frame_error decode_stage_tensor(std::span<const std::byte> frame, size_t max_frame_bytes, stage_tensor& out);
frame_error decode_stage_checkpoint(std::span<const std::byte> frame, size_t max_frame_bytes,
                                    stage_checkpoint_msg& out);
frame_error decode_stage_heartbeat(std::span<const std::byte> frame, size_t max_frame_bytes, stage_heartbeat& out);
frame_error decode_stage_takeover(std::span<const std::byte> frame, size_t max_frame_bytes, stage_takeover& out);

// stage_activation .. stage_takeover (dispatch with peek_type, membership_messages.hpp).
bool is_pipeline_message(message_type t);

}  // namespace murmur
