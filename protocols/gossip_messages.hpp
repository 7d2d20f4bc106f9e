// Gossip messages: what one peer publishes to its neighbours in a round.
// Wire form (Cereal portable binary, inside a frame of type gossip_update):
//   sender u32, round u64, step u64, dim u32, kind u8, count u32,
//   gap_bytes u32 + varint-coded index gaps (sparse kinds only),
//   values: count float32 (sparse) or dim float32 (dense);
//   grid_set instead: scale f32, value_bytes u32 + zigzag varints.
// Kinds: sparse_set / dense_set carry the sender's new public estimate for
// those coordinates (absolute values, so a lost or repeated message never
// corrupts a receiver's copy); sparse_add carries increments (delta mode).
// decode_gossip validates everything before it allocates: counts bounded by
// the bytes present, indices strictly increasing and < dim, values finite.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "protocols/frame_codec.hpp"

namespace murmur {

enum class update_kind : uint8_t { sparse_set = 0, dense_set = 1, sparse_add = 2, grid_set = 3 };

struct gossip_update {
  uint32_t sender = 0;
  uint64_t round = 0;
  uint64_t step = 0;
  uint32_t dim = 0;
  update_kind kind = update_kind::sparse_set;
  std::vector<uint32_t> indices;  // sparse kinds: strictly increasing, < dim
  std::vector<float> values;      // sparse: one per index; dense: dim values
  // grid_set: values[i] = float(grid[i]) * scale exactly; on the wire only
  // scale and the zigzag-varint grid indices travel (1 byte for |grid| < 64).
  float scale = 0;
  std::vector<int32_t> grid;
  bool operator==(const gossip_update&) const = default;
};

// Encodes msg as a complete frame into out (reusing its capacity).
void encode_gossip(const gossip_update& msg, std::vector<std::byte>& out);

// Decodes a complete frame. On success returns frame_error::none and fills
// out (reusing its capacity); otherwise out is unspecified.
frame_error decode_gossip(std::span<const std::byte> frame, size_t max_frame_bytes,
                          gossip_update& out);

}  // namespace murmur
