// Invariants of the network decoders, shared by the libFuzzer harness
// (tests/fuzz/fuzz_decoders.cpp) and the corpus replay in the normal test
// suite (tests/protocols/test_fuzz_corpus.cpp), so both check exactly the same
// thing. Header-only; builds with g++ (tests) and clang++ (fuzzer).
//
// check_input(bytes) hands the bytes to every entry of `decoder_checks` twice:
// as they are (frame validation), and "resealed" (length and CRC32C fields of
// the header recomputed), because a mutated frame almost never carries a
// matching checksum and the payload decoders would otherwise stay unexplored.
//
// Adding a decoder: write a
//   const char* check_xxx(std::span<const std::byte> frame)
// that returns nullptr when every invariant holds, or a static description
// of the violated one (for a codec with one encoding per message, instantiate
// check_codec with a codec<M>, as the membership, state transfer, verify and
// pipeline rows do);
// add a row to `decoder_checks`; add its sources to FUZZ_DECODERS_SOURCES in
// tests/fuzz/CMakeLists.txt and seed frames to tests/fuzz/corpus/decoders/
// (generator: tests/fuzz/make_corpus.cpp; name prefixes checked by
// tests/protocols/test_fuzz_corpus.cpp).
//
// decode_checkpoint (protocols/checkpoint_file.hpp) is a decoder too: it reads
// checkpoints from disk and from peers. It takes raw bytes, not a frame, so its
// row gets the input bytes as they are (and, like the frames, a copy with the
// header's payload length and SHA-256 recomputed; inputs that do not start
// with the checkpoint magic are sampled: check_checkpoint).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "actors/segment_messages.hpp"
#include "protocols/checkpoint_file.hpp"
#include "protocols/curve_keys.hpp"
#include "protocols/frame_codec.hpp"
#include "protocols/gossip_messages.hpp"
#include "protocols/inference_messages.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/pipeline_messages.hpp"
#include "protocols/state_transfer_messages.hpp"
#include "protocols/verify_messages.hpp"
#include "tensor/digest.hpp"

namespace murmur::fuzz {

// The receiver's frame size limit the decoders are fuzzed with.
inline constexpr size_t max_frame_bytes = size_t{1} << 20;

inline uint32_t load_u32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::to_integer<uint32_t>(p[i]) << (8 * i);
  return v;
}

inline void store_u32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

// ---- frame codec -----------------------------------------------------------

inline const char* check_frame(std::span<const std::byte> in) {
  if (crc32c(in.data(), in.size()) != crc32c_portable(in.data(), in.size()))
    return "crc32c (hardware) differs from crc32c_portable";
  const decoded_frame d = decode_frame(in, max_frame_bytes);
  if (d.error == frame_error::none) {
    if (in.size() < frame_header_bytes) return "decode_frame accepted fewer bytes than a header";
    if (d.payload.data() != in.data() + frame_header_bytes || d.payload.size() != in.size() - frame_header_bytes)
      return "decode_frame's payload is not the bytes after the header";
    if (!known_message_type(static_cast<uint16_t>(d.type))) return "decode_frame accepted an unknown type";
    if (load_u32(in.data()) != frame_magic) return "decode_frame accepted a bad magic";
    if (crc32c(d.payload.data(), d.payload.size()) != load_u32(in.data() + 12))
      return "decode_frame accepted a bad checksum";
    if (decode_frame(in, in.size() - 1).error != frame_error::too_large)
      return "decode_frame accepted a frame over max_frame_bytes";
    std::vector<std::byte> again;
    encode_frame(d.type, d.payload, again);
    if (!std::equal(again.begin(), again.end(), in.begin(), in.end()))
      return "encode_frame(decode_frame(f)) != f";
  } else {
    if (!d.payload.empty()) return "decode_frame rejected a frame but exposes a payload";
    if (d.error == frame_error::undecodable) return "decode_frame reported a payload error";
  }
  return nullptr;
}

// ---- gossip updates --------------------------------------------------------

// What every message decode_gossip accepts must satisfy.
inline const char* gossip_invariants(const gossip_update& m) {
  const auto kind = static_cast<uint8_t>(m.kind);
  if (kind > 3) return "gossip: unknown kind accepted";
  for (float v : m.values)
    if (!std::isfinite(v)) return "gossip: non-finite value accepted";
  if (m.kind == update_kind::dense_set) {
    if (!m.indices.empty()) return "gossip dense_set: has indices";
    if (m.values.size() != m.dim) return "gossip dense_set: values.size() != dim";
  } else {
    if (m.values.size() != m.indices.size()) return "gossip sparse: values.size() != indices.size()";
    if (m.indices.size() > m.dim) return "gossip sparse: more indices than dim";
    for (size_t i = 0; i < m.indices.size(); ++i) {
      if (m.indices[i] >= m.dim) return "gossip sparse: index >= dim";
      if (i > 0 && m.indices[i] <= m.indices[i - 1]) return "gossip sparse: indices not strictly increasing";
    }
  }
  if (m.kind == update_kind::grid_set) {
    if (!std::isfinite(m.scale) || !(m.scale > 0)) return "gossip grid_set: scale not positive and finite";
    if (m.grid.size() != m.values.size()) return "gossip grid_set: grid.size() != values.size()";
    for (size_t i = 0; i < m.grid.size(); ++i)
      if (m.values[i] != static_cast<float>(m.grid[i]) * m.scale)
        return "gossip grid_set: value != float(grid) * scale";
  } else {
    if (!m.grid.empty()) return "gossip: grid entries on a non-grid kind";
    if (m.scale != 0) return "gossip: scale set on a non-grid kind";
  }
  return nullptr;
}

// A message full of stale state, to check that decoding into a reused
// message gives the same result as decoding into a fresh one.
inline gossip_update gossip_dirty() {
  gossip_update m;
  m.sender = 77;
  m.round = 88;
  m.step = 99;
  m.dim = 12345;
  m.kind = update_kind::grid_set;
  m.indices = {1, 2, 3, 4, 5, 6, 7};
  m.values = {1, 2, 3, 4, 5, 6, 7};
  m.scale = 0.5f;
  m.grid = {2, 4, 6, 8, 10, 12, 14};
  return m;
}

inline const char* check_gossip(std::span<const std::byte> in) {
  gossip_update m;
  const frame_error e = decode_gossip(in, max_frame_bytes, m);
  gossip_update reused = gossip_dirty();
  if (decode_gossip(in, max_frame_bytes, reused) != e) return "gossip: result depends on the output's old contents";
  const decoded_frame f = decode_frame(in, max_frame_bytes);
  if (f.error != frame_error::none) {
    if (e != f.error) return "gossip: decode_gossip and decode_frame disagree on a bad frame";
    return nullptr;
  }
  if (f.type != message_type::gossip_update) {
    if (e == frame_error::none) return "gossip: accepted a frame of another message type";
    return nullptr;
  }
  if (e != frame_error::none) {
    if (e != frame_error::undecodable) return "gossip: good frame rejected for a frame-level reason";
    return nullptr;
  }
  if (const char* w = gossip_invariants(m)) return w;
  if (!(reused == m)) return "gossip: decoding into a reused message differs from a fresh one";
  // Round trip: the canonical encoding decodes to the same message, is
  // stable, and is never longer than what was accepted (varints minimal).
  std::vector<std::byte> canon;
  encode_gossip(m, canon);
  if (canon.size() > in.size()) return "gossip: encode(decode(f)) is longer than f";
  gossip_update back;
  if (decode_gossip(canon, max_frame_bytes, back) != frame_error::none) return "gossip: decode rejects encode(m)";
  if (!(back == m)) return "gossip: decode(encode(m)) != m";
  std::vector<std::byte> canon2;
  encode_gossip(back, canon2);
  if (canon2 != canon) return "gossip: encode(decode(encode(m))) != encode(m)";
  return nullptr;
}

// ---- exact codecs: membership, state transfer, verify ------------------------
//
// These payloads are fixed-width fields and length-prefixed bytes behind the
// little-endian tag, so an accepted frame has exactly one encoding: the
// canonical re-encoding must give back the input byte for byte. One row per
// decoder (so a failure names it); codec<M> says how to reach it.

template <class M>
struct codec {
  message_type type;
  frame_error (*decode)(std::span<const std::byte>, size_t, M&);
  void (*encode)(const M&, std::vector<std::byte>&);
  M (*dirty)();                            // stale contents for the reuse check
  const char* (*invariants)(const M&);     // what every accepted message satisfies
  message_type also{};                     // a second type it takes (stage tensors: 15 and 16); 0 = none
};

template <class M>
const char* check_codec(std::span<const std::byte> in, const codec<M>& c) {
  M m{};
  const frame_error e = c.decode(in, max_frame_bytes, m);
  const decoded_frame f = decode_frame(in, max_frame_bytes);
  if (f.error != frame_error::none) {
    if (e != f.error) return "decoder and decode_frame disagree on a bad frame";
    return nullptr;
  }
  if (f.type != c.type && (c.also == message_type{} || f.type != c.also)) {
    if (e != frame_error::unknown_type) return "a frame of another message type is not unknown_type";
    return nullptr;
  }
  // (Only frames of its own type reach the payload decoder: the reuse check
  // and what follows are skipped for the others, which keeps the harness fast.)
  M reused = c.dirty();
  if (c.decode(in, max_frame_bytes, reused) != e) return "result depends on the output's old contents";
  if (M small{}; c.decode(in, in.size() - 1, small) != frame_error::too_large)
    return "accepted a frame over max_frame_bytes";
  if (e != frame_error::none) {
    if (e != frame_error::undecodable) return "good frame rejected for a frame-level reason";
    return nullptr;
  }
  if (const char* w = c.invariants(m)) return w;
  if (!(reused == m)) return "decoding into a reused message differs from a fresh one";
  std::vector<std::byte> canon;
  c.encode(m, canon);
  if (!std::equal(canon.begin(), canon.end(), in.begin(), in.end())) return "encode(decode(f)) != f";
  M back = c.dirty();
  if (c.decode(canon, max_frame_bytes, back) != frame_error::none) return "decode rejects encode(m)";
  if (!(back == m)) return "decode(encode(m)) != m";
  std::vector<std::byte> canon2;
  c.encode(back, canon2);
  if (canon2 != canon) return "encode(decode(encode(m))) != encode(m)";
  return nullptr;
}

// A 40-character Z85 key (ZeroMQ's test vector) for stale records.
inline constexpr const char* fuzz_z85_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

inline const char* peer_invariants(const peer_info& p) {
  if (!valid_peer_info(p)) return "a peer record that valid_peer_info rejects was accepted";
  if (p.endpoint.size() > max_endpoint_bytes) return "an endpoint over max_endpoint_bytes was accepted";
  if (!p.public_key.empty() && p.public_key.size() != public_key_chars)
    return "a public key neither empty nor public_key_chars long was accepted";
  return nullptr;
}

inline peer_info peer_dirty(uint32_t i) {
  peer_info p;
  p.index = 1000 + i;
  p.endpoint = "tcp://stale-" + std::to_string(i) + ".example:4321";
  p.public_key = fuzz_z85_key;
  p.incarnation = 555 + i;
  p.status = static_cast<peer_status>(i % 4);
  return p;
}

inline const char* join_invariants(const membership_join& m) {
  if (m.self.status != peer_status::alive) return "a join whose record is not alive was accepted";
  return peer_invariants(m.self);
}
inline membership_join join_dirty() { return membership_join{peer_dirty(2)}; }

inline const char* update_invariants(const membership_update& m) {
  if (m.peers.size() > max_peers) return "more than max_peers records accepted";
  std::vector<uint32_t> idx;
  for (const auto& p : m.peers) {
    if (const char* w = peer_invariants(p)) return w;
    idx.push_back(p.index);
  }
  std::sort(idx.begin(), idx.end());
  if (std::adjacent_find(idx.begin(), idx.end()) != idx.end()) return "duplicate peer indices accepted";
  return nullptr;
}
inline membership_update update_dirty() {
  membership_update m;
  m.sender = 77;
  m.sender_incarnation = 88;
  for (uint32_t i = 0; i < 5; ++i) m.peers.push_back(peer_dirty(i));
  return m;
}

// Fixed-field messages: every value of every field is valid.
template <class M>
const char* no_invariants(const M&) { return nullptr; }
inline heartbeat heartbeat_dirty() { return {77, 88, 99}; }
inline heartbeat_ack heartbeat_ack_dirty() { return {77, 88, 99}; }
inline leave leave_dirty() { return {77, 88}; }

inline const char* state_request_invariants(const state_request& m) {
  if (m.length == 0 || m.length > max_state_chunk_floats) return "state_request: length outside 1..max_state_chunk_floats";
  if (uint64_t{m.offset} + m.length > (uint64_t{1} << 32)) return "state_request: offset + length past 2^32";
  return nullptr;
}
inline state_request state_request_dirty() { return {77, 88, 99, 111}; }

inline const char* state_chunk_invariants(const state_chunk& m) {
  if (m.values.size() > max_state_chunk_floats) return "state_chunk: more than max_state_chunk_floats values";
  if (uint64_t{m.offset} + m.values.size() > m.dim) return "state_chunk: offset + values.size() > dim";
  for (float v : m.values)
    if (!std::isfinite(v)) return "state_chunk: non-finite value accepted";
  return nullptr;
}
inline state_chunk state_chunk_dirty() {
  state_chunk m;
  m.sender = 77;
  m.request_id = 88;
  m.step = 99;
  m.dim = 12345;
  m.offset = 100;
  m.values = {1, 2, 3, 4, 5, 6, 7};
  return m;
}

inline const char* check_membership_join(std::span<const std::byte> in) {
  return check_codec(in, codec<membership_join>{message_type::membership_join, decode_membership_join,
                                                encode_membership_join, join_dirty, join_invariants});
}
inline const char* check_membership_update(std::span<const std::byte> in) {
  return check_codec(in, codec<membership_update>{message_type::membership_update, decode_membership_update,
                                                  encode_membership_update, update_dirty, update_invariants});
}
inline const char* check_heartbeat(std::span<const std::byte> in) {
  return check_codec(in, codec<heartbeat>{message_type::heartbeat, decode_heartbeat, encode_heartbeat,
                                          heartbeat_dirty, no_invariants<heartbeat>});
}
inline const char* check_heartbeat_ack(std::span<const std::byte> in) {
  return check_codec(in, codec<heartbeat_ack>{message_type::heartbeat_ack, decode_heartbeat_ack,
                                              encode_heartbeat_ack, heartbeat_ack_dirty, no_invariants<heartbeat_ack>});
}
inline const char* check_leave(std::span<const std::byte> in) {
  return check_codec(in, codec<leave>{message_type::leave, decode_leave, encode_leave, leave_dirty, no_invariants<leave>});
}
inline const char* check_state_request(std::span<const std::byte> in) {
  return check_codec(in, codec<state_request>{message_type::state_request, decode_state_request,
                                              encode_state_request, state_request_dirty, state_request_invariants});
}
inline const char* check_state_chunk(std::span<const std::byte> in) {
  return check_codec(in, codec<state_chunk>{message_type::state_chunk, decode_state_chunk, encode_state_chunk,
                                            state_chunk_dirty, state_chunk_invariants});
}

// ---- verify messages -----------------------------------------------------------
//
// Fixed fields behind the little-endian tag, then raw arrays sized by them:
// exact codecs too (check_codec), with what every accepted message satisfies.

inline bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}
inline bool verify_dim_ok(uint32_t d) { return d > 0 && d <= max_verify_dim; }

inline const char* transcript_commit_invariants(const transcript_commit& m) {
  if (m.layers.empty()) return "transcript_commit: no layers accepted";
  if (m.layers.size() > max_commit_layers) return "transcript_commit: more than max_commit_layers layers";
  return nullptr;
}
inline transcript_commit transcript_commit_dirty() {
  transcript_commit m;
  m.prover = 77;
  m.step = 88;
  m.layers.resize(5);
  for (size_t i = 0; i < m.layers.size(); ++i)
    for (auto& d : m.layers[i].d) d.fill(static_cast<uint8_t>(0xa0 + i));
  return m;
}

inline const char* tensor_request_invariants(const tensor_request& m) {
  if (m.layer >= max_commit_layers) return "tensor_request: layer >= max_commit_layers";
  return nullptr;
}
inline tensor_request tensor_request_dirty() { return {77, 88, 99, 11, 111}; }

inline const char* miss_claim_invariants(const miss_claim& m) {
  if (m.layer >= max_commit_layers) return "miss_claim: layer >= max_commit_layers";
  return nullptr;
}
inline miss_claim miss_claim_dirty() { return {77, 88, 99, 11}; }

inline const char* tensor_reply_invariants(const tensor_reply& m) {
  if (m.layer >= max_commit_layers) return "tensor_reply: layer >= max_commit_layers";
  if (!verify_dim_ok(m.batch) || !verify_dim_ok(m.in) || !verify_dim_ok(m.out))
    return "tensor_reply: a dimension is zero or over max_verify_dim";
  if ((m.in_row == 0) != (m.out_row == 0)) return "tensor_reply: one of in_row, out_row is 0";
  if (m.in_row && (!verify_dim_ok(m.in_row) || !verify_dim_ok(m.out_row)))
    return "tensor_reply: a row size is over max_verify_dim";
  const uint64_t B = m.batch, I = m.in, O = m.out, IR = m.input_row(), OR = m.output_row();
  if (m.indices.size() != B) return "tensor_reply: indices.size() != batch";
  if (m.input.size() != (m.has_input ? B * IR : 0))
    return "tensor_reply: input.size() != (has_input ? batch x input row : 0)";
  if (m.weight.size() != O * I || m.weight_grad.size() != O * I)
    return "tensor_reply: weight or weight_grad size != out x in";
  if (m.bias.size() != O || m.bias_grad.size() != O) return "tensor_reply: bias or bias_grad size != out";
  if (m.output.size() != B * OR || m.output_grad.size() != B * OR)
    return "tensor_reply: output or output_grad size != batch x output row";
  for (const auto* v : {&m.input, &m.weight, &m.bias, &m.output, &m.output_grad, &m.weight_grad, &m.bias_grad})
    if (!all_finite(*v)) return "tensor_reply: non-finite value accepted";
  return nullptr;
}
inline tensor_reply tensor_reply_dirty() {
  tensor_reply m;
  m.prover = 77;
  m.step = 88;
  m.layer = 9;
  m.nonce = 99;
  m.batch = 3;
  m.in = 2;
  m.out = 4;
  m.has_input = true;
  m.in_row = 5;  // a decode of a linear layer's reply must clear these
  m.out_row = 6;
  m.indices = {5, 6, 7};
  m.input = {1, 2, 3, 4, 5, 6};
  m.weight = {1, 2, 3, 4, 5, 6, 7, 8};
  m.bias = {1, 2, 3, 4};
  m.output = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  m.output_grad = m.output;
  m.weight_grad = m.weight;
  m.bias_grad = m.bias;
  return m;
}

// The nested frame must itself be a tensor_reply that names the same prover,
// step and layer as the evidence.
inline const char* evidence_invariants(const evidence_msg& m) {
  tensor_reply r;
  if (decode_tensor_reply(m.reply, max_frame_bytes, r) != frame_error::none)
    return "evidence: nested reply that decode_tensor_reply rejects accepted";
  if (r.prover != m.prover || r.step != m.step || r.layer != m.layer)
    return "evidence: nested reply names another prover, step or layer";
  return tensor_reply_invariants(r);
}
inline evidence_msg evidence_dirty() {
  evidence_msg m;
  m.accuser = 66;
  m.prover = 77;
  m.step = 88;
  m.layer = 9;
  m.check = 5;
  m.reply.assign(40, std::byte{0xee});
  return m;
}
inline frame_error decode_evidence_only(std::span<const std::byte> frame, size_t max_bytes, evidence_msg& m) {
  return decode_evidence(frame, max_bytes, m);
}

inline const char* matmul_task_invariants(const matmul_task& m) {
  if (!verify_dim_ok(m.m) || !verify_dim_ok(m.n) || !verify_dim_ok(m.k))
    return "matmul_task: a dimension is zero or over max_verify_dim";
  if (m.a.size() != uint64_t{m.m} * m.k) return "matmul_task: a.size() != m x k";
  if (m.b.size() != uint64_t{m.k} * m.n) return "matmul_task: b.size() != k x n";
  if (!all_finite(m.a) || !all_finite(m.b)) return "matmul_task: non-finite value accepted";
  return nullptr;
}
inline matmul_task matmul_task_dirty() {
  matmul_task m;
  m.requester = 77;
  m.task = 88;
  m.m = 2;
  m.n = 3;
  m.k = 1;
  m.a = {1, 2};
  m.b = {3, 4, 5};
  return m;
}

inline const char* matmul_result_invariants(const matmul_result& m) {
  if (!verify_dim_ok(m.m) || !verify_dim_ok(m.n)) return "matmul_result: a dimension is zero or over max_verify_dim";
  if (m.c.size() != uint64_t{m.m} * m.n) return "matmul_result: c.size() != m x n";
  if (!all_finite(m.c)) return "matmul_result: non-finite value accepted";
  return nullptr;
}
inline matmul_result matmul_result_dirty() {
  matmul_result m;
  m.worker = 77;
  m.task = 88;
  m.m = 2;
  m.n = 2;
  m.c = {1, 2, 3, 4};
  return m;
}

inline const char* check_transcript_commit(std::span<const std::byte> in) {
  return check_codec(in, codec<transcript_commit>{message_type::transcript_commit, decode_transcript_commit,
                                                  encode_transcript_commit, transcript_commit_dirty,
                                                  transcript_commit_invariants});
}
inline const char* check_tensor_request(std::span<const std::byte> in) {
  return check_codec(in, codec<tensor_request>{message_type::tensor_request, decode_tensor_request,
                                               encode_tensor_request, tensor_request_dirty, tensor_request_invariants});
}
inline const char* check_miss_claim(std::span<const std::byte> in) {
  return check_codec(in, codec<miss_claim>{message_type::miss_claim, decode_miss_claim, encode_miss_claim,
                                           miss_claim_dirty, miss_claim_invariants});
}
inline const char* check_tensor_reply(std::span<const std::byte> in) {
  return check_codec(in, codec<tensor_reply>{message_type::tensor_reply, decode_tensor_reply, encode_tensor_reply,
                                             tensor_reply_dirty, tensor_reply_invariants});
}
// check_codec, then the nested reply decode_evidence hands back (into a
// reused reply) is the one decode_tensor_reply gives for the nested bytes,
// and asking for it changes nothing else.
inline const char* check_evidence(std::span<const std::byte> in) {
  if (const char* w = check_codec(in, codec<evidence_msg>{message_type::evidence, decode_evidence_only,
                                                          encode_evidence, evidence_dirty, evidence_invariants}))
    return w;
  evidence_msg plain;
  const frame_error e = decode_evidence(in, max_frame_bytes, plain);
  evidence_msg m = evidence_dirty();
  tensor_reply r = tensor_reply_dirty();
  if (decode_evidence(in, max_frame_bytes, m, &r) != e) return "evidence: result depends on asking for the reply";
  if (e != frame_error::none) return nullptr;
  if (!(m == plain)) return "evidence: asking for the reply changes the message";
  tensor_reply direct;
  if (decode_tensor_reply(m.reply, max_frame_bytes, direct) != frame_error::none || !(direct == r))
    return "evidence: the reply handed back differs from decoding the nested frame";
  return nullptr;
}
inline const char* check_matmul_task(std::span<const std::byte> in) {
  return check_codec(in, codec<matmul_task>{message_type::matmul_task, decode_matmul_task, encode_matmul_task,
                                            matmul_task_dirty, matmul_task_invariants});
}
inline const char* check_matmul_result(std::span<const std::byte> in) {
  return check_codec(in, codec<matmul_result>{message_type::matmul_result, decode_matmul_result,
                                              encode_matmul_result, matmul_result_dirty, matmul_result_invariants});
}

// ---- pipeline messages -----------------------------------------------------------
//
// Fixed fields behind the little-endian tag, then raw arrays sized by them:
// exact codecs (check_codec). decode_stage_tensor takes activations (15) and
// gradients (16); the re-encoding keeps the type, so the byte-for-byte round
// trip checks that the direction survives.

inline const char* stage_tensor_invariants(const stage_tensor& m) {
  if (m.shape.empty() || m.shape.size() > max_stage_dims) return "stage_tensor: dims outside 1..max_stage_dims";
  uint64_t per_sample = 1;
  for (uint32_t d : m.shape) {
    if (d == 0 || d > max_stage_dim) return "stage_tensor: a dimension is zero or over max_stage_dim";
    per_sample *= d;  // accepted, so the values are present: no overflow
  }
  if (m.batch == 0 || m.batch > m.total) return "stage_tensor: batch 0 or over total";
  if (m.microbatch > max_microbatches) return "stage_tensor: microbatch over max_microbatches";
  if (m.labels.size() != (m.gradient ? 0 : m.batch)) return "stage_tensor: labels.size() != (gradient ? 0 : batch)";
  for (int32_t l : m.labels)
    if (l < 0) return "stage_tensor: negative label accepted";
  if (m.values.size() != uint64_t{m.batch} * per_sample) return "stage_tensor: values.size() != batch x prod(shape)";
  if (!all_finite(m.values)) return "stage_tensor: non-finite value accepted";
  return nullptr;
}
inline stage_tensor stage_tensor_dirty() {
  stage_tensor m;
  m.gradient = true;
  m.replica = 77;
  m.stage = 88;
  m.step = 99;
  m.generation = 11;
  m.microbatch = 12;
  m.batch = 2;
  m.total = 13;
  m.shape = {3, 1, 1};
  m.labels = {4, 5, 6};
  m.values = {1, 2, 3, 4, 5, 6, 7};
  return m;
}

inline const char* stage_checkpoint_invariants(const stage_checkpoint_msg& m) {
  if (m.blob.empty()) return "stage_checkpoint: empty blob accepted";
  return nullptr;
}
inline stage_checkpoint_msg stage_checkpoint_dirty() {
  stage_checkpoint_msg m;
  m.replica = 77;
  m.stage = 88;
  m.step = 99;
  m.generation = 11;
  m.blob.assign(40, std::byte{0xee});
  return m;
}
inline stage_heartbeat stage_heartbeat_dirty() { return {77, 88, 99, 111, 222}; }
inline stage_takeover stage_takeover_dirty() { return {77, 88, 99, 111, 222}; }

inline const char* check_stage_tensor(std::span<const std::byte> in) {
  return check_codec(in, codec<stage_tensor>{message_type::stage_activation, decode_stage_tensor, encode_stage_tensor,
                                             stage_tensor_dirty, stage_tensor_invariants,
                                             message_type::stage_gradient});
}
inline const char* check_stage_checkpoint(std::span<const std::byte> in) {
  return check_codec(in, codec<stage_checkpoint_msg>{message_type::stage_checkpoint, decode_stage_checkpoint,
                                                     encode_stage_checkpoint, stage_checkpoint_dirty,
                                                     stage_checkpoint_invariants});
}
inline const char* check_stage_heartbeat(std::span<const std::byte> in) {
  return check_codec(in, codec<stage_heartbeat>{message_type::stage_heartbeat, decode_stage_heartbeat,
                                                encode_stage_heartbeat, stage_heartbeat_dirty,
                                                no_invariants<stage_heartbeat>});
}
inline const char* check_stage_takeover(std::span<const std::byte> in) {
  return check_codec(in, codec<stage_takeover>{message_type::stage_takeover, decode_stage_takeover,
                                               encode_stage_takeover, stage_takeover_dirty,
                                               no_invariants<stage_takeover>});
}

// ---- inference messages ----------------------------------------------------------
//
// One payload layout for requests (21), activations (22) and replies (23):
// exact codecs. The row runs check_codec under the frame's own type when it
// is one of the three (the re-encoding keeps the type), else under the
// request's (another family's frame must be unknown_type).

inline const char* inference_invariants(const inference_message& m) {
  const bool reply = m.type == message_type::inference_reply;
  if (static_cast<uint8_t>(m.status) >= inference_status_count) return "inference: unknown status accepted";
  if (!reply && m.status != inference_status::ok) return "inference: error status outside a reply accepted";
  if (m.type == message_type::inference_activation ? !is_z85_key(m.client_key) : !m.client_key.empty())
    return "inference: client key where the type has none, or a bad one";
  if (reply ? !m.reply_to.empty() : (m.reply_to.empty() || m.reply_to.size() > max_reply_endpoint))
    return "inference: reply endpoint missing, too long, or in a reply";
  if (m.shape.size() > max_stage_dims) return "inference: dims over max_stage_dims";
  uint64_t per_sample = 1;
  for (uint32_t d : m.shape) {
    if (d == 0 || d > max_stage_dim) return "inference: a dimension is zero or over max_stage_dim";
    per_sample *= d;
  }
  if (m.status == inference_status::ok) {
    if (m.shape.empty() || m.batch == 0 || m.batch > max_inference_batch) return "inference: ok with batch or dims 0";
    if (m.values.size() != uint64_t{m.batch} * per_sample) return "inference: values.size() != batch x prod(shape)";
  } else if (m.batch != 0 || !m.values.empty()) {
    return "inference: error reply with a tensor";
  }
  if (!all_finite(m.values)) return "inference: non-finite value accepted";
  return nullptr;
}
inline inference_message inference_dirty() {
  inference_message m;
  m.type = message_type::inference_activation;
  m.request_id = 99;
  m.stage = 88;
  m.status = inference_status::bad_input;
  m.client_key = "dirty";
  m.reply_to = "tcp://dirty:1";
  m.batch = 3;
  m.shape = {2, 2};
  m.values = {1, 2, 3};
  return m;
}
inline const char* check_inference(std::span<const std::byte> in) {
  const decoded_frame f = decode_frame(in, max_frame_bytes);
  const message_type t =
      f.error == frame_error::none && is_inference_message(f.type) ? f.type : message_type::inference_request;
  return check_codec(in, codec<inference_message>{t, decode_inference_message, encode_inference_message,
                                                  inference_dirty, inference_invariants});
}

// ---- checkpoints -------------------------------------------------------------------
//
// decode_checkpoint never crashes and lets nothing but checkpoint_error escape
// (its message naming the source first); what it accepts holds the limits and
// re-encodes to the input byte for byte (one encoding per checkpoint), which
// decodes to the same checkpoint again.

inline constexpr size_t checkpoint_header_bytes = 52;
inline constexpr const char* checkpoint_source = "fuzz input";

inline const char* checkpoint_invariants(const checkpoint& c) {
  if (static_cast<uint8_t>(c.kind) > static_cast<uint8_t>(checkpoint_kind::stage))
    return "checkpoint: unknown kind accepted";
  if (c.model_spec.size() > max_checkpoint_spec_bytes) return "checkpoint: model spec over the limit accepted";
  if (c.params.size() > max_checkpoint_floats || c.opt_state.size() > max_checkpoint_floats)
    return "checkpoint: more floats than max_checkpoint_floats accepted";
  if (c.extra.size() > max_checkpoint_extra) return "checkpoint: more extra values than max_checkpoint_extra accepted";
  if (!all_finite(c.params) || !all_finite(c.opt_state)) return "checkpoint: non-finite value accepted";
  return nullptr;
}

// One decode of `in`: nullptr when every invariant holds; *accepted says
// whether the checkpoint was accepted.
inline const char* check_checkpoint_bytes(std::span<const std::byte> in, bool* accepted = nullptr) {
  checkpoint c;
  try {
    c = decode_checkpoint(in, checkpoint_source);
  } catch (const checkpoint_error& e) {
    const std::string what = e.what();
    if (what.rfind(std::string(checkpoint_source) + ": ", 0) != 0) return "checkpoint: error does not name the source";
    if (accepted) *accepted = false;
    return nullptr;
  } catch (...) {
    return "checkpoint: an exception other than checkpoint_error escaped decode_checkpoint";
  }
  if (accepted) *accepted = true;
  if (const char* w = checkpoint_invariants(c)) return w;
  std::vector<std::byte> canon;
  try {
    canon = encode_checkpoint(c);
  } catch (...) {
    return "checkpoint: encode_checkpoint refuses a checkpoint decode_checkpoint accepted";
  }
  if (!std::equal(canon.begin(), canon.end(), in.begin(), in.end())) return "checkpoint: encode(decode(b)) != b";
  try {
    if (!(decode_checkpoint(canon, checkpoint_source) == c)) return "checkpoint: decode(encode(c)) != c";
  } catch (...) {
    return "checkpoint: decode rejects encode(c)";
  }
  return nullptr;
}

// Inputs that start with the checkpoint magic (or a piece of it) go through
// decode_checkpoint as they are, then with the header's payload length and
// SHA-256 recomputed: a mutated checkpoint almost never carries a matching
// checksum, and the payload parser would stay unexplored. Inputs with another
// start are refused by the reader's first memcmp; a thrown exception costs
// more under ASan than all the frame rows together, so only every 64th of
// them (by a hash of its bytes, so a rerun checks the same ones) is decoded.
// The corpus replay decodes every one (test_fuzz_corpus.cpp).
inline const char* check_checkpoint(std::span<const std::byte> in) {
  static constexpr char magic[8] = {'M', 'R', 'M', 'R', 'C', 'K', 'P', 'T'};
  const bool magic_start = std::memcmp(in.data(), magic, std::min(in.size(), sizeof magic)) == 0;
  if (!magic_start && (crc32c_portable(in.data(), std::min<size_t>(in.size(), 64)) & 63) != 0) return nullptr;
  if (const char* w = check_checkpoint_bytes(in)) return w;
  if (!magic_start || in.size() < checkpoint_header_bytes) return nullptr;
  std::vector<std::byte> fixed(in.begin(), in.end());
  const uint64_t n = fixed.size() - checkpoint_header_bytes;
  for (size_t i = 0; i < 8; ++i) fixed[12 + i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  const digest d = sha256(fixed.data() + checkpoint_header_bytes, n);
  for (size_t i = 0; i < d.size(); ++i) fixed[20 + i] = static_cast<std::byte>(d[i]);
  if (std::equal(fixed.begin(), fixed.end(), in.begin(), in.end())) return nullptr;
  return check_checkpoint_bytes(fixed);
}

// ---- segment verification (frames 24-27, actors/segment_messages.hpp) ------

// Exact codecs (check_codec). A reply carries a whole start state and its
// records: every count is bounded by the bytes present, so a reply claiming a
// huge checkpoint, event count or neighbour count is refused before anything
// is allocated for it (ASan's allocation limit would report it otherwise).
inline const char* segment_commit_invariants(const segment_commit_msg& m) {
  return m.end_step > m.start_step ? nullptr : "segment_commit: end step not after the start step";
}
inline segment_commit_msg segment_commit_dirty() {
  segment_commit_msg m;
  m.prover = 77, m.start_step = 88, m.end_step = 99, m.start[0] = 1, m.end[1] = 2, m.records[2] = 3;
  m.fingerprint = {4, 5, 6};
  m.records_bytes = 10, m.incarnation = 11;
  return m;
}
inline segment_request_msg segment_request_dirty() { return {77, 88, 99, 111}; }

inline const char* segment_reply_invariants(const segment_reply_msg& m) {
  if (m.start.trainer.step != m.start_step) return "segment_reply: checkpoint step differs from the start step";
  if (const char* w = checkpoint_invariants(m.start.trainer)) return w;
  if (!std::isfinite(m.start.gossip.robust_reference) || m.start.gossip.robust_reference < 0)
    return "segment_reply: a robust reference distance not finite and non-negative accepted";
  for (const segment_event& e : m.records.events) {
    if (e.kind > segment_event::neighbours) return "segment_reply: unknown event kind accepted";
    if (e.carries_bytes() && (e.offset > m.records.frames.size() || e.bytes > m.records.frames.size() - e.offset))
      return "segment_reply: a received frame or neighbour list past the records' bytes accepted";
  }
  return nullptr;
}
inline segment_reply_msg segment_reply_dirty() {
  segment_reply_msg m;
  m.prover = 77, m.start_step = 88, m.nonce = 99;
  m.start.trainer.step = 88;
  m.start.trainer.params = {1, 2, 3};
  m.start.gossip.neighbours = {4, 5};
  m.start.gossip.nbr_hat = {{1}, {2, 3}};
  m.start.d[0] = 7;
  m.records.events.resize(3);
  m.records.frames.resize(5);
  m.step_digests.resize(2);
  return m;
}
// encode_segment_reply takes a prover's segment: the decoded message is put
// back into one.
inline void encode_segment_reply_msg(const segment_reply_msg& m, std::vector<std::byte>& out) {
  segment s;
  s.start = std::make_shared<const segment_boundary>(m.start);
  s.records = m.records;
  s.step_digests = m.step_digests;
  encode_segment_reply(m.prover, m.nonce, s, out);
}

inline const char* check_segment_commit(std::span<const std::byte> in) {
  return check_codec(in, codec<segment_commit_msg>{message_type::segment_commit, decode_segment_commit,
                                                   encode_segment_commit, segment_commit_dirty, segment_commit_invariants});
}
inline const char* check_segment_request(std::span<const std::byte> in) {
  return check_codec(in, codec<segment_request_msg>{message_type::segment_request, decode_segment_request,
                                                    encode_segment_request, segment_request_dirty,
                                                    no_invariants<segment_request_msg>});
}
inline segment_unavailable_msg segment_unavailable_dirty() { return {77, 88, 99, 111}; }
inline const char* segment_unavailable_invariants(const segment_unavailable_msg& m) {
  return m.last_end > m.start_step ? nullptr : "segment_unavailable: a latest end not after the start step accepted";
}
inline const char* check_segment_unavailable(std::span<const std::byte> in) {
  return check_codec(in, codec<segment_unavailable_msg>{message_type::segment_unavailable, decode_segment_unavailable,
                                                        encode_segment_unavailable, segment_unavailable_dirty,
                                                        segment_unavailable_invariants});
}
inline segment_evidence_msg segment_evidence_dirty() { return {77, 88, 99, std::vector<std::byte>(5, std::byte{7})}; }
inline const char* segment_evidence_invariants(const segment_evidence_msg& m) {
  const decoded_frame nested = decode_frame(m.reply, max_frame_bytes);
  if (nested.error != frame_error::none || nested.type != message_type::segment_reply)
    return "segment_evidence: a nested frame that is no valid segment_reply frame accepted";
  return nullptr;
}
inline const char* check_segment_evidence(std::span<const std::byte> in) {
  return check_codec(in, codec<segment_evidence_msg>{message_type::segment_evidence, decode_segment_evidence,
                                                     encode_segment_evidence, segment_evidence_dirty,
                                                     segment_evidence_invariants});
}
inline const char* check_segment_reply(std::span<const std::byte> in) {
  return check_codec(in, codec<segment_reply_msg>{message_type::segment_reply, decode_segment_reply,
                                                  encode_segment_reply_msg, segment_reply_dirty, segment_reply_invariants});
}

// ---- peek_type ---------------------------------------------------------------

// peek_type looks at the header only: it names a type exactly when the magic,
// version and type fields are good, and on a valid frame it is decode_frame's.
inline const char* check_peek_type(std::span<const std::byte> in) {
  const std::optional<message_type> p = peek_type(in);
  const auto u16_at = [&](size_t at) {
    return static_cast<uint16_t>(std::to_integer<uint16_t>(in[at]) | (std::to_integer<uint16_t>(in[at + 1]) << 8));
  };
  const bool header_ok = in.size() >= frame_header_bytes && load_u32(in.data()) == frame_magic &&
                         u16_at(4) == protocol_version && known_message_type(u16_at(6));
  if (p.has_value() != header_ok) return "peek_type's verdict differs from the header's magic, version and type";
  if (p && static_cast<uint16_t>(*p) != u16_at(6)) return "peek_type differs from the header's type field";
  const decoded_frame f = decode_frame(in, max_frame_bytes);
  if (f.error == frame_error::none && (!p || *p != f.type)) return "peek_type differs from decode_frame's type";
  return nullptr;
}

// ---- the table ---------------------------------------------------------------

using check_fn = const char* (*)(std::span<const std::byte>);
struct decoder_check {
  const char* name;
  check_fn check;
};
inline constexpr decoder_check decoder_checks[] = {
    {"frame", check_frame},
    {"gossip", check_gossip},
    {"membership_join", check_membership_join},
    {"membership_update", check_membership_update},
    {"heartbeat", check_heartbeat},
    {"heartbeat_ack", check_heartbeat_ack},
    {"leave", check_leave},
    {"state_request", check_state_request},
    {"state_chunk", check_state_chunk},
    {"transcript_commit", check_transcript_commit},
    {"tensor_request", check_tensor_request},
    {"tensor_reply", check_tensor_reply},
    {"evidence", check_evidence},
    {"matmul_task", check_matmul_task},
    {"matmul_result", check_matmul_result},
    {"miss_claim", check_miss_claim},
    {"stage_tensor", check_stage_tensor},
    {"stage_checkpoint", check_stage_checkpoint},
    {"stage_heartbeat", check_stage_heartbeat},
    {"stage_takeover", check_stage_takeover},
    {"inference", check_inference},
    {"segment_commit", check_segment_commit},
    {"segment_request", check_segment_request},
    {"segment_reply", check_segment_reply},
    {"segment_evidence", check_segment_evidence},
    {"segment_unavailable", check_segment_unavailable},
    {"checkpoint", check_checkpoint},
    {"peek_type", check_peek_type},
};

struct failure {
  const char* decoder;  // row of decoder_checks
  const char* what;     // the violated invariant
  bool resealed;        // found on the resealed copy of the input
};

// The input with its header's length and CRC fields recomputed; false when
// it is shorter than a header or already sealed (nothing new to check).
inline bool reseal(std::span<const std::byte> in, std::vector<std::byte>& out) {
  if (in.size() < frame_header_bytes) return false;
  out.assign(in.begin(), in.end());
  std::byte* h = out.data();
  store_u32(h + 8, static_cast<uint32_t>(out.size() - frame_header_bytes));
  store_u32(h + 12, crc32c(h + frame_header_bytes, out.size() - frame_header_bytes));
  return !std::equal(out.begin(), out.end(), in.begin(), in.end());
}

// Runs every decoder check on the input and on its resealed copy.
inline std::optional<failure> check_input(std::span<const std::byte> in) {
  for (const auto& d : decoder_checks)
    if (const char* w = d.check(in)) return failure{d.name, w, false};
  std::vector<std::byte> sealed;
  if (reseal(in, sealed))
    for (const auto& d : decoder_checks)
      if (const char* w = d.check(sealed)) return failure{d.name, w, true};
  return std::nullopt;
}

}  // namespace murmur::fuzz
