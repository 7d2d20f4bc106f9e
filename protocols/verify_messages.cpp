#include "protocols/verify_messages.hpp"

#include <cmath>
#include <cstring>

#include "protocols/wire_primitives.hpp"

namespace murmur {

namespace {

constexpr size_t commit_fixed = 1 + 4 + 8 + 2;
constexpr size_t reply_fixed = 1 + 4 + 8 + 2 + 8 + 4 + 4 + 4 + 1;
constexpr size_t reply_rows = 4 + 4;  // in_row, out_row (flags bit 1)
constexpr size_t evidence_fixed = 1 + 4 + 4 + 8 + 2 + 1 + 4;
constexpr size_t task_fixed = 1 + 4 + 8 + 4 + 4 + 4;
constexpr size_t result_fixed = 1 + 4 + 8 + 4 + 4;

// Reads arrays off a payload in order; every read is bounds-checked.
struct array_reader {
  std::span<const std::byte> p;
  size_t at;
  bool ok = true;
  bool floats(std::vector<float>& v, uint64_t n) {
    if (!ok || n * 4 > p.size() - at) return ok = false;
    v.resize(n);
    wire::get_floats(p.data() + at, v.data(), n);
    at += 4 * n;
    for (float x : v)
      if (!std::isfinite(x)) return ok = false;
    return true;
  }
  bool u32s(std::vector<uint32_t>& v, uint64_t n) {
    if (!ok || n * 4 > p.size() - at) return ok = false;
    v.resize(n);
    for (size_t i = 0; i < n; ++i) v[i] = wire::get_u32(p.data() + at + 4 * i);
    at += 4 * n;
    return true;
  }
  bool done() const { return ok && at == p.size(); }
};

void put_u32s(std::vector<std::byte>& out, const std::vector<uint32_t>& v) {
  size_t at = out.size();
  out.resize(at + 4 * v.size());
  for (size_t i = 0; i < v.size(); ++i) wire::put_u32_at(out, at + 4 * i, v[i]);
}

bool dim_ok(uint32_t d) { return d > 0 && d <= max_verify_dim; }

}  // namespace

bool is_verify_message(message_type t) {
  return (t >= message_type::transcript_commit && t <= message_type::matmul_result) || t == message_type::miss_claim ||
         (t >= message_type::segment_commit && t <= message_type::segment_unavailable);
}

void encode_transcript_commit(const transcript_commit& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, commit_fixed + m.layers.size() * committed_count * 32);
  wire::write_fields(out, [&](auto& ar) { ar(m.prover, m.step, static_cast<uint16_t>(m.layers.size())); });
  for (const auto& l : m.layers)
    for (const auto& d : l.d) {
      auto* p = reinterpret_cast<const std::byte*>(d.data());
      out.insert(out.end(), p, p + d.size());
    }
  seal_frame(message_type::transcript_commit, out);
}

frame_error decode_transcript_commit(std::span<const std::byte> frame, size_t max_frame_bytes, transcript_commit& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::transcript_commit, payload); e != frame_error::none)
    return e;
  uint16_t n = 0;
  if (payload.size() < commit_fixed || !wire::read_exactly(payload.first(commit_fixed), m.prover, m.step, n))
    return frame_error::undecodable;
  if (n == 0 || n > max_commit_layers || payload.size() - commit_fixed != size_t{n} * committed_count * 32)
    return frame_error::undecodable;
  m.layers.resize(n);
  const std::byte* p = payload.data() + commit_fixed;
  for (auto& l : m.layers)
    for (auto& d : l.d) {
      std::memcpy(d.data(), p, d.size());
      p += d.size();
    }
  return frame_error::none;
}

void encode_tensor_request(const tensor_request& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, 1 + 4 + 4 + 8 + 2 + 8);
  wire::write_fields(out, [&](auto& ar) { ar(m.verifier, m.prover, m.step, m.layer, m.nonce); });
  seal_frame(message_type::tensor_request, out);
}

frame_error decode_tensor_request(std::span<const std::byte> frame, size_t max_frame_bytes, tensor_request& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::tensor_request, payload); e != frame_error::none)
    return e;
  if (!wire::read_exactly(payload, m.verifier, m.prover, m.step, m.layer, m.nonce)) return frame_error::undecodable;
  if (m.layer >= max_commit_layers) return frame_error::undecodable;
  return frame_error::none;
}

void encode_tensor_reply(const tensor_reply& m, std::vector<std::byte>& out) {
  const size_t floats = m.input.size() + m.weight.size() + m.bias.size() + m.output.size() + m.output_grad.size() +
                        m.weight_grad.size() + m.bias_grad.size();
  const bool rows = m.in_row != 0 || m.out_row != 0;
  wire::begin_frame(out, reply_fixed + (rows ? reply_rows : 0) + 4 * (m.indices.size() + floats));
  wire::write_fields(out, [&](auto& ar) {
    ar(m.prover, m.step, m.layer, m.nonce, m.batch, m.in, m.out,
       static_cast<uint8_t>((m.has_input ? 1 : 0) | (rows ? 2 : 0)));
  });
  if (rows) put_u32s(out, {m.in_row, m.out_row});
  put_u32s(out, m.indices);
  for (const auto* v : {&m.input, &m.weight, &m.bias, &m.output, &m.output_grad, &m.weight_grad, &m.bias_grad})
    wire::put_floats(out, v->data(), v->size());
  seal_frame(message_type::tensor_reply, out);
}

frame_error decode_tensor_reply(std::span<const std::byte> frame, size_t max_frame_bytes, tensor_reply& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::tensor_reply, payload); e != frame_error::none)
    return e;
  uint8_t has = 0;
  if (payload.size() < reply_fixed ||
      !wire::read_exactly(payload.first(reply_fixed), m.prover, m.step, m.layer, m.nonce, m.batch, m.in, m.out, has))
    return frame_error::undecodable;
  if (has > 3 || m.layer >= max_commit_layers || !dim_ok(m.batch) || !dim_ok(m.in) || !dim_ok(m.out))
    return frame_error::undecodable;
  m.has_input = (has & 1) != 0;
  size_t fixed = reply_fixed;
  m.in_row = m.out_row = 0;
  if (has & 2) {
    if (payload.size() < reply_fixed + reply_rows) return frame_error::undecodable;
    m.in_row = wire::get_u32(payload.data() + reply_fixed);
    m.out_row = wire::get_u32(payload.data() + reply_fixed + 4);
    if (!dim_ok(m.in_row) || !dim_ok(m.out_row)) return frame_error::undecodable;
    fixed += reply_rows;
  }
  const uint64_t B = m.batch, I = m.in, O = m.out, IR = m.input_row(), OR = m.output_row();
  const uint64_t need = B + (m.has_input ? B * IR : 0) + 2 * O * I + 2 * O + 2 * B * OR;
  if (need * 4 != payload.size() - fixed) return frame_error::undecodable;
  array_reader r{payload, fixed};
  r.u32s(m.indices, B);
  if (m.has_input) r.floats(m.input, B * IR);
  else m.input.clear();
  r.floats(m.weight, O * I);
  r.floats(m.bias, O);
  r.floats(m.output, B * OR);
  r.floats(m.output_grad, B * OR);
  r.floats(m.weight_grad, O * I);
  r.floats(m.bias_grad, O);
  return r.done() ? frame_error::none : frame_error::undecodable;
}

void encode_evidence(const evidence_msg& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, evidence_fixed + m.reply.size());
  wire::write_fields(out, [&](auto& ar) {
    ar(m.accuser, m.prover, m.step, m.layer, m.check, static_cast<uint32_t>(m.reply.size()));
  });
  out.insert(out.end(), m.reply.begin(), m.reply.end());
  seal_frame(message_type::evidence, out);
}

frame_error decode_evidence(std::span<const std::byte> frame, size_t max_frame_bytes, evidence_msg& m,
                            tensor_reply* reply) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::evidence, payload); e != frame_error::none)
    return e;
  uint32_t len = 0;
  if (payload.size() < evidence_fixed ||
      !wire::read_exactly(payload.first(evidence_fixed), m.accuser, m.prover, m.step, m.layer, m.check, len))
    return frame_error::undecodable;
  if (len != payload.size() - evidence_fixed) return frame_error::undecodable;
  auto nested = payload.subspan(evidence_fixed);
  tensor_reply local;
  tensor_reply& r = reply ? *reply : local;
  if (decode_tensor_reply(nested, max_frame_bytes, r) != frame_error::none) return frame_error::undecodable;
  if (r.prover != m.prover || r.step != m.step || r.layer != m.layer) return frame_error::undecodable;
  m.reply.assign(nested.begin(), nested.end());
  return frame_error::none;
}

void encode_matmul_task(const matmul_task& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, task_fixed + 4 * (m.a.size() + m.b.size()));
  wire::write_fields(out, [&](auto& ar) { ar(m.requester, m.task, m.m, m.n, m.k); });
  wire::put_floats(out, m.a.data(), m.a.size());
  wire::put_floats(out, m.b.data(), m.b.size());
  seal_frame(message_type::matmul_task, out);
}

frame_error decode_matmul_task(std::span<const std::byte> frame, size_t max_frame_bytes, matmul_task& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::matmul_task, payload); e != frame_error::none)
    return e;
  if (payload.size() < task_fixed || !wire::read_exactly(payload.first(task_fixed), m.requester, m.task, m.m, m.n, m.k))
    return frame_error::undecodable;
  if (!dim_ok(m.m) || !dim_ok(m.n) || !dim_ok(m.k)) return frame_error::undecodable;
  const uint64_t need = uint64_t{m.m} * m.k + uint64_t{m.k} * m.n;
  if (need * 4 != payload.size() - task_fixed) return frame_error::undecodable;
  array_reader r{payload, task_fixed};
  r.floats(m.a, uint64_t{m.m} * m.k);
  r.floats(m.b, uint64_t{m.k} * m.n);
  return r.done() ? frame_error::none : frame_error::undecodable;
}

void encode_matmul_result(const matmul_result& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, result_fixed + 4 * m.c.size());
  wire::write_fields(out, [&](auto& ar) { ar(m.worker, m.task, m.m, m.n); });
  wire::put_floats(out, m.c.data(), m.c.size());
  seal_frame(message_type::matmul_result, out);
}

frame_error decode_matmul_result(std::span<const std::byte> frame, size_t max_frame_bytes, matmul_result& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::matmul_result, payload); e != frame_error::none)
    return e;
  if (payload.size() < result_fixed || !wire::read_exactly(payload.first(result_fixed), m.worker, m.task, m.m, m.n))
    return frame_error::undecodable;
  if (!dim_ok(m.m) || !dim_ok(m.n) || uint64_t{m.m} * m.n * 4 != payload.size() - result_fixed)
    return frame_error::undecodable;
  array_reader r{payload, result_fixed};
  r.floats(m.c, uint64_t{m.m} * m.n);
  return r.done() ? frame_error::none : frame_error::undecodable;
}

void encode_miss_claim(const miss_claim& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, 1 + 4 + 4 + 8 + 2);
  wire::write_fields(out, [&](auto& ar) { ar(m.accuser, m.prover, m.step, m.layer); });
  seal_frame(message_type::miss_claim, out);
}

frame_error decode_miss_claim(std::span<const std::byte> frame, size_t max_frame_bytes, miss_claim& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::miss_claim, payload); e != frame_error::none)
    return e;
  if (!wire::read_exactly(payload, m.accuser, m.prover, m.step, m.layer)) return frame_error::undecodable;
  if (m.layer >= max_commit_layers) return frame_error::undecodable;
  return frame_error::none;
}

}  // namespace murmur
