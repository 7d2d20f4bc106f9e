#include "protocols/pipeline_messages.hpp"

#include <bit>
#include <cstring>

#include "protocols/wire_primitives.hpp"

namespace murmur {

namespace {

// Fixed fields, the endianness tag included.
constexpr size_t tensor_fixed = 1 + 2 + 2 + 8 + 4 + 2 + 4 + 4 + 1;
constexpr size_t checkpoint_fixed = 1 + 2 + 2 + 8 + 4 + 4;
constexpr size_t heartbeat_size = 1 + 2 + 2 + 4 + 8 + 4;
constexpr size_t takeover_size = 1 + 2 + 2 + 4 + 8 + 4;

// Appends n 32-bit values (floats, u32 or i32), little-endian. insert from a
// byte range copies once (resize + memcpy would zero-fill first): activations
// go through here every micro-batch.
template <class T>
void put_words(std::vector<std::byte>& out, const T* v, size_t n) {
  static_assert(sizeof(T) == 4);
  if constexpr (std::endian::native == std::endian::little) {
    auto* p = reinterpret_cast<const std::byte*>(v);
    out.insert(out.end(), p, p + 4 * n);
  } else {
    const size_t at = out.size();
    out.resize(at + 4 * n);
    for (size_t i = 0; i < n; ++i) wire::put_u32_at(out, at + 4 * i, std::bit_cast<uint32_t>(v[i]));
  }
}

// Reads n 32-bit values from in (the caller has checked 4n bytes are there).
template <class T>
void get_words(const std::byte* in, T* v, size_t n) {
  static_assert(sizeof(T) == 4);
  if constexpr (std::endian::native == std::endian::little) {
    if (n) std::memcpy(v, in, 4 * n);
  } else {
    for (size_t i = 0; i < n; ++i) v[i] = std::bit_cast<T>(wire::get_u32(in + 4 * i));
  }
}

// All exponent bits set: infinity or NaN. Branch-free over the whole array
// (the compiler vectorises it), which matters for activation-sized arrays.
bool all_finite(const std::vector<float>& v) {
  uint32_t bad = 0;
  for (float x : v) bad |= static_cast<uint32_t>((std::bit_cast<uint32_t>(x) & 0x7f800000u) == 0x7f800000u);
  return bad == 0;
}

bool all_non_negative(const std::vector<int32_t>& v) {
  uint32_t bad = 0;
  for (int32_t x : v) bad |= static_cast<uint32_t>(x < 0);
  return bad == 0;
}

bool is_stage_tensor_type(message_type t) {
  return t == message_type::stage_activation || t == message_type::stage_gradient;
}

}  // namespace

bool is_pipeline_message(message_type t) {
  return t >= message_type::stage_activation && t <= message_type::stage_takeover;
}

// ---- activations and gradients -------------------------------------------------

void encode_stage_tensor(const stage_tensor& m, std::vector<std::byte>& out) {
  const size_t labels = m.gradient ? 0 : m.labels.size();
  wire::begin_frame(out, tensor_fixed + 4 * (m.shape.size() + labels + m.values.size()));
  wire::write_fields(out, [&](auto& ar) {
    ar(m.replica, m.stage, m.step, m.generation, m.microbatch, m.batch, m.total,
       static_cast<uint8_t>(m.shape.size()));
  });
  put_words(out, m.shape.data(), m.shape.size());
  if (!m.gradient) put_words(out, m.labels.data(), m.labels.size());
  put_words(out, m.values.data(), m.values.size());
  seal_frame(m.gradient ? message_type::stage_gradient : message_type::stage_activation, out);
}

frame_error decode_stage_tensor(std::span<const std::byte> frame, size_t max_frame_bytes, stage_tensor& m) {
  const decoded_frame f = decode_frame(frame, max_frame_bytes);
  if (f.error != frame_error::none) return f.error;
  if (!is_stage_tensor_type(f.type)) return frame_error::unknown_type;
  const std::span<const std::byte> payload = f.payload;
  uint8_t dims = 0;
  if (payload.size() < tensor_fixed ||
      !wire::read_exactly(payload.first(tensor_fixed), m.replica, m.stage, m.step, m.generation, m.microbatch,
                          m.batch, m.total, dims))
    return frame_error::undecodable;
  m.gradient = f.type == message_type::stage_gradient;
  if (dims == 0 || dims > max_stage_dims || m.microbatch > max_microbatches || m.batch == 0 || m.batch > m.total)
    return frame_error::undecodable;
  if (payload.size() - tensor_fixed < 4 * size_t{dims}) return frame_error::undecodable;
  const std::byte* p = payload.data() + tensor_fixed;
  // Per-sample elements, bounded by the words left after the shape at every
  // step, so nothing below can overflow 64 bits (a dimension is at most 2^20).
  const uint64_t words = (payload.size() - tensor_fixed - 4 * size_t{dims}) / 4;
  uint64_t per_sample = 1;
  for (uint8_t i = 0; i < dims; ++i) {
    const uint32_t d = wire::get_u32(p + 4 * size_t{i});
    if (d == 0 || d > max_stage_dim || per_sample > words / d) return frame_error::undecodable;
    per_sample *= d;
  }
  const uint64_t batch = m.batch;
  if (batch > words / per_sample) return frame_error::undecodable;
  const uint64_t elements = batch * per_sample;         // <= words
  const uint64_t labels = m.gradient ? 0 : batch;       // <= words
  if (4 * (labels + elements) != payload.size() - tensor_fixed - 4 * size_t{dims}) return frame_error::undecodable;
  // Every size is checked against the bytes present: now allocate and copy.
  m.shape.resize(dims);
  get_words(p, m.shape.data(), dims);
  p += 4 * size_t{dims};
  m.labels.resize(labels);
  get_words(p, m.labels.data(), labels);
  p += 4 * labels;
  m.values.resize(elements);
  get_words(p, m.values.data(), elements);
  if (!all_non_negative(m.labels) || !all_finite(m.values)) return frame_error::undecodable;
  return frame_error::none;
}

// ---- checkpoints to a spare ----------------------------------------------------

void encode_stage_checkpoint(const stage_checkpoint_msg& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, checkpoint_fixed + m.blob.size());
  wire::write_fields(out, [&](auto& ar) {
    ar(m.replica, m.stage, m.step, m.generation, static_cast<uint32_t>(m.blob.size()));
  });
  out.insert(out.end(), m.blob.begin(), m.blob.end());
  seal_frame(message_type::stage_checkpoint, out);
}

frame_error decode_stage_checkpoint(std::span<const std::byte> frame, size_t max_frame_bytes,
                                    stage_checkpoint_msg& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::stage_checkpoint, payload);
      e != frame_error::none)
    return e;
  uint32_t len = 0;
  if (payload.size() < checkpoint_fixed ||
      !wire::read_exactly(payload.first(checkpoint_fixed), m.replica, m.stage, m.step, m.generation, len))
    return frame_error::undecodable;
  if (len == 0 || len != payload.size() - checkpoint_fixed) return frame_error::undecodable;
  const auto blob = payload.subspan(checkpoint_fixed);
  m.blob.assign(blob.begin(), blob.end());
  return frame_error::none;
}

// ---- heartbeats and take-over --------------------------------------------------

void encode_stage_heartbeat(const stage_heartbeat& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, heartbeat_size);
  wire::write_fields(out, [&](auto& ar) { ar(m.replica, m.stage, m.node, m.step, m.generation); });
  seal_frame(message_type::stage_heartbeat, out);
}

frame_error decode_stage_heartbeat(std::span<const std::byte> frame, size_t max_frame_bytes, stage_heartbeat& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::stage_heartbeat, payload);
      e != frame_error::none)
    return e;
  if (!wire::read_exactly(payload, m.replica, m.stage, m.node, m.step, m.generation)) return frame_error::undecodable;
  return frame_error::none;
}

void encode_stage_takeover(const stage_takeover& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, takeover_size);
  wire::write_fields(out, [&](auto& ar) { ar(m.replica, m.stage, m.node, m.resume_step, m.generation); });
  seal_frame(message_type::stage_takeover, out);
}

frame_error decode_stage_takeover(std::span<const std::byte> frame, size_t max_frame_bytes, stage_takeover& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::stage_takeover, payload);
      e != frame_error::none)
    return e;
  if (!wire::read_exactly(payload, m.replica, m.stage, m.node, m.resume_step, m.generation))
    return frame_error::undecodable;
  return frame_error::none;
}

}  // namespace murmur
