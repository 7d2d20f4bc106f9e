#include "protocols/state_transfer_messages.hpp"

#include <algorithm>
#include <cmath>

#include "protocols/wire_primitives.hpp"

namespace murmur {

namespace {

// tag, sender, request_id, step, dim, offset, count: then count floats in place.
constexpr size_t chunk_fixed_bytes = 1 + 4 + 8 + 8 + 4 + 4 + 4;

}  // namespace

void encode_state_request(const state_request& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, 1 + 4 + 8 + 4 + 4);
  wire::write_fields(out, [&](auto& ar) { ar(m.requester, m.request_id, m.offset, m.length); });
  seal_frame(message_type::state_request, out);
}

frame_error decode_state_request(std::span<const std::byte> frame, size_t max_frame_bytes, state_request& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::state_request, payload); e != frame_error::none)
    return e;
  if (!wire::read_exactly(payload, m.requester, m.request_id, m.offset, m.length)) return frame_error::undecodable;
  if (m.length == 0 || m.length > max_state_chunk_floats || uint64_t{m.offset} + m.length > (uint64_t{1} << 32))
    return frame_error::undecodable;
  return frame_error::none;
}

void encode_state_chunk(const state_chunk& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, chunk_fixed_bytes + 4 * m.values.size());
  wire::write_fields(out, [&](auto& ar) {
    ar(m.sender, m.request_id, m.step, m.dim, m.offset, static_cast<uint32_t>(m.values.size()));
  });
  wire::put_floats(out, m.values.data(), m.values.size());
  seal_frame(message_type::state_chunk, out);
}

frame_error decode_state_chunk(std::span<const std::byte> frame, size_t max_frame_bytes, state_chunk& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::state_chunk, payload); e != frame_error::none)
    return e;
  if (payload.size() < chunk_fixed_bytes) return frame_error::undecodable;
  uint32_t count = 0;
  if (!wire::read_exactly(payload.first(chunk_fixed_bytes), m.sender, m.request_id, m.step, m.dim, m.offset, count))
    return frame_error::undecodable;
  // The count is checked against the bytes actually present before the values are sized.
  if (count > max_state_chunk_floats || uint64_t{m.offset} + count > m.dim ||
      4 * uint64_t{count} != payload.size() - chunk_fixed_bytes)
    return frame_error::undecodable;
  m.values.resize(count);
  wire::get_floats(payload.data() + chunk_fixed_bytes, m.values.data(), count);
  for (float v : m.values)
    if (!std::isfinite(v)) return frame_error::undecodable;
  return frame_error::none;
}

std::vector<state_request> split_state_requests(uint32_t requester, uint64_t first_request_id, uint32_t dim,
                                                uint32_t donors, uint32_t max_chunk) {
  std::vector<state_request> out;
  if (dim == 0) return out;
  const uint64_t d = std::max<uint32_t>(donors, 1);
  const uint64_t chunk = max_chunk == 0 ? max_state_chunk_floats : std::min(max_chunk, max_state_chunk_floats);
  // Fewest ranges within the chunk size, rounded up to whole rounds of donors.
  uint64_t n = (dim + chunk - 1) / chunk;
  n = std::min<uint64_t>((n + d - 1) / d * d, dim);
  const uint64_t base = dim / n, longer = dim % n;
  out.reserve(n);
  uint64_t offset = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t len = base + (i < longer ? 1 : 0);
    out.push_back({requester, first_request_id + i, static_cast<uint32_t>(offset), static_cast<uint32_t>(len)});
    offset += len;
  }
  return out;
}

}  // namespace murmur
