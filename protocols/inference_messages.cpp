#include "protocols/inference_messages.hpp"

#include <bit>
#include <cstring>

#include "protocols/curve_keys.hpp"
#include "protocols/pipeline_messages.hpp"
#include "protocols/wire_primitives.hpp"

namespace murmur {

namespace {

// Fixed fields, the endianness tag included.
constexpr size_t fixed_bytes = 1 + 8 + 2 + 1 + 4 + 1 + 1 + 2;

bool printable_endpoint(std::string_view s) {
  if (s.size() > max_reply_endpoint || s.rfind("tcp://", 0) != 0) return false;
  for (char c : s)
    if (c <= ' ' || c > '~') return false;
  return true;
}

bool all_finite(const std::vector<float>& v) {
  uint32_t bad = 0;
  for (float x : v) bad |= static_cast<uint32_t>((std::bit_cast<uint32_t>(x) & 0x7f800000u) == 0x7f800000u);
  return bad == 0;
}

}  // namespace

bool is_inference_message(message_type t) {
  return t >= message_type::inference_request && t <= message_type::inference_reply;
}

void encode_inference_message(const inference_message& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, fixed_bytes + m.client_key.size() + m.reply_to.size() + 4 * (m.shape.size() + m.values.size()));
  wire::write_fields(out, [&](auto& ar) {
    ar(m.request_id, m.stage, static_cast<uint8_t>(m.status), m.batch, static_cast<uint8_t>(m.shape.size()),
       static_cast<uint8_t>(m.client_key.size()), static_cast<uint16_t>(m.reply_to.size()));
  });
  auto put_text = [&](const std::string& s) {
    auto* p = reinterpret_cast<const std::byte*>(s.data());
    out.insert(out.end(), p, p + s.size());
  };
  put_text(m.client_key);
  put_text(m.reply_to);
  for (uint32_t d : m.shape) {
    const size_t at = out.size();
    out.resize(at + 4);
    wire::put_u32_at(out, at, d);
  }
  wire::put_floats(out, m.values.data(), m.values.size());
  seal_frame(m.type, out);
}

frame_error decode_inference_message(std::span<const std::byte> frame, size_t max_frame_bytes, inference_message& m) {
  const decoded_frame f = decode_frame(frame, max_frame_bytes);
  if (f.error != frame_error::none) return f.error;
  if (!is_inference_message(f.type)) return frame_error::unknown_type;
  const std::span<const std::byte> payload = f.payload;
  uint8_t status = 0, dims = 0, key_len = 0;
  uint16_t reply_len = 0;
  if (payload.size() < fixed_bytes ||
      !wire::read_exactly(payload.first(fixed_bytes), m.request_id, m.stage, status, m.batch, dims, key_len,
                          reply_len))
    return frame_error::undecodable;
  m.type = f.type;
  if (status >= inference_status_count) return frame_error::undecodable;
  m.status = static_cast<inference_status>(status);
  const bool reply = f.type == message_type::inference_reply;
  const bool activation = f.type == message_type::inference_activation;
  if (!reply && m.status != inference_status::ok) return frame_error::undecodable;
  // Which texts the type carries.
  if ((activation ? key_len != 40 : key_len != 0) || (reply ? reply_len != 0 : reply_len == 0))
    return frame_error::undecodable;
  if (m.status == inference_status::ok) {
    if (dims == 0 || dims > max_stage_dims || m.batch == 0 || m.batch > max_inference_batch)
      return frame_error::undecodable;
  } else if (dims > max_stage_dims || m.batch != 0) {
    return frame_error::undecodable;
  }
  size_t left = payload.size() - fixed_bytes;
  const size_t texts = size_t{key_len} + reply_len;
  if (left < texts + 4 * size_t{dims}) return frame_error::undecodable;
  const std::byte* p = payload.data() + fixed_bytes;
  m.client_key.assign(reinterpret_cast<const char*>(p), key_len);
  p += key_len;
  m.reply_to.assign(reinterpret_cast<const char*>(p), reply_len);
  p += reply_len;
  if (activation && !is_z85_key(m.client_key)) return frame_error::undecodable;
  if (!reply && !printable_endpoint(m.reply_to)) return frame_error::undecodable;
  left -= texts + 4 * size_t{dims};
  // Per-sample elements, bounded by the words left after the shape at every
  // step, so nothing below can overflow 64 bits (a dimension is at most 2^20).
  const uint64_t words = left / 4;
  // An error reply's shape (the expected input) sizes nothing.
  const bool sized = m.batch > 0;
  uint64_t per_sample = 1;
  for (uint8_t i = 0; i < dims; ++i) {
    const uint32_t d = wire::get_u32(p + 4 * size_t{i});
    if (d == 0 || d > max_stage_dim || (sized && per_sample > words / d)) return frame_error::undecodable;
    if (sized) per_sample *= d;
  }
  const uint64_t batch = m.batch;
  if (sized && batch > words / per_sample) return frame_error::undecodable;
  const uint64_t elements = sized ? batch * per_sample : 0;  // <= words
  if (4 * elements != left) return frame_error::undecodable;
  // Every size is checked against the bytes present: now allocate and copy.
  m.shape.resize(dims);
  for (uint8_t i = 0; i < dims; ++i) m.shape[i] = wire::get_u32(p + 4 * size_t{i});
  p += 4 * size_t{dims};
  m.values.resize(elements);
  wire::get_floats(p, m.values.data(), elements);
  if (!all_finite(m.values)) return frame_error::undecodable;
  return frame_error::none;
}

}  // namespace murmur
