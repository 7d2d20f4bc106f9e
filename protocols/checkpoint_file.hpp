// Checkpoints: one peer's or one pipeline stage's training state at a step,
// as bytes (sent to a spare) and as a file (written atomically: temporary
// file, fsync, rename, fsync of the directory).
// Layout, little-endian:
//   magic "MRMRCKPT" (8 bytes), version u16 (1), kind u8, reserved u8 (0),
//   payload_bytes u64, SHA-256 of the payload (32 bytes), then the payload:
//   step u64, replica u16, stage u16, stages u16, layer_begin u16,
//   layer_end u16, seed u64, spec_bytes u32 + model spec (UTF-8),
//   param_count u64 + floats, opt_steps u64, opt_count u64 + floats,
//   extra_count u32 + u64s (whatever else a resume needs, e.g. RNG state).
// A reader refuses, with checkpoint_error naming the source and the problem:
// fewer bytes than a header, bad magic, another version, unknown kind,
// payload length not matching the bytes present (truncated or trailing),
// checksum mismatch, counts over the limits below or not matching the
// payload, non-finite floats. Nothing is allocated before the sizes check.
// (It also refuses a reserved byte other than 0, so that every accepted
// checkpoint has exactly one encoding: encode(decode(b)) == b.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/byte_pieces.hpp"

namespace murmur {

inline constexpr uint64_t max_checkpoint_floats = 1ull << 30;
inline constexpr uint32_t max_checkpoint_spec_bytes = 1u << 16;
inline constexpr uint32_t max_checkpoint_extra = 1u << 16;

enum class checkpoint_kind : uint8_t { peer = 0, stage = 1 };

struct checkpoint {
  checkpoint_kind kind = checkpoint_kind::peer;
  uint64_t step = 0;
  uint16_t replica = 0, stage = 0, stages = 1, layer_begin = 0, layer_end = 0;
  uint64_t seed = 0;
  std::string model_spec;
  std::vector<float> params;
  uint64_t opt_steps = 0;
  std::vector<float> opt_state;
  std::vector<uint64_t> extra;
  bool operator==(const checkpoint&) const = default;
};

struct checkpoint_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A checkpoint's fields over storage held elsewhere (a trainer's live
// vectors): encoded from it, the floats are not copied.
struct checkpoint_view {
  checkpoint_kind kind = checkpoint_kind::peer;
  uint64_t step = 0;
  uint16_t replica = 0, stage = 0, stages = 1, layer_begin = 0, layer_end = 0;
  uint64_t seed = 0;
  std::string_view model_spec;
  std::span<const float> params;
  uint64_t opt_steps = 0;
  std::span<const float> opt_state[2];  // the optimizer state is their concatenation (Adam: m, then v)
  std::span<const uint64_t> extra;
  size_t opt_state_size() const { return opt_state[0].size() + opt_state[1].size(); }
};
checkpoint_view view_of(const checkpoint& c);

// Throws checkpoint_error (instead of writing bytes no reader would take)
// for counts over the limits, non-finite floats or an unknown kind.
std::vector<std::byte> encode_checkpoint(const checkpoint& c);
// The same bytes, appended to out as pieces: the header and small fields
// in its own storage, the floats referred to where they lie (on a
// little-endian host). Same checks.
void encode_checkpoint(const checkpoint_view& v, byte_pieces& out);
// The same without the checksum (its 32 bytes zero), for bytes that are
// stored and sealed (below) only if read back: a segment_log's boundaries,
// written every K steps and read back a few times a run, skip a SHA-256 of
// the parameters and optimizer state at each.
void encode_checkpoint_unsealed(const checkpoint_view& v, byte_pieces& out);
// Fills in the checksum of a checkpoint encoded unsealed (bytes: all of it,
// as encode_checkpoint writes it); a sealed one is left as it was. Throws
// checkpoint_error when bytes are too short for the header and payload
// they declare.
void seal_checkpoint(std::span<std::byte> bytes);
// How many bytes encode_checkpoint writes for v.
uint64_t encoded_checkpoint_bytes(const checkpoint_view& v);
// `source` names the bytes in error messages (a file name, "checkpoint from peer 3").
checkpoint decode_checkpoint(std::span<const std::byte> bytes, const std::string& source);

// Atomic: writes path + ".tmp", fsyncs it, renames it over path, fsyncs the
// directory. Throws checkpoint_error naming the path on any failure.
void write_checkpoint_file(const std::string& path, std::span<const std::byte> bytes);
inline void write_checkpoint_file(const std::string& path, const checkpoint& c) {
  write_checkpoint_file(path, encode_checkpoint(c));
}
// Throws checkpoint_error naming the path (missing, unreadable, or any of
// decode_checkpoint's problems).
checkpoint read_checkpoint_file(const std::string& path);

}  // namespace murmur
