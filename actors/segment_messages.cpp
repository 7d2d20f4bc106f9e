#include "actors/segment_messages.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "protocols/checkpoint_file.hpp"
#include "protocols/wire_primitives.hpp"

namespace murmur {

namespace {

static_assert(std::endian::native == std::endian::little, "segment frames are written in host order (little-endian)");

// Appends plain values and length-prefixed arrays.
struct writer {
  std::vector<std::byte>& out;
  template <class T>
  void value(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
  }
  template <class T>
  void array(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    value<uint64_t>(v.size());
    const size_t at = out.size();
    out.resize(at + v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(out.data() + at, v.data(), v.size() * sizeof(T));
  }
};

// Reads them back; every read is bounds-checked and a failure sticks.
struct reader {
  std::span<const std::byte> in;
  size_t at = 0;
  bool ok = true;
  template <class T>
  bool value(T& v) {
    if (!ok || in.size() - at < sizeof(T)) return ok = false;
    std::memcpy(&v, in.data() + at, sizeof(T));
    at += sizeof(T);
    return true;
  }
  template <class T>
  bool array(std::vector<T>& v) {
    uint64_t n = 0;
    if (!value(n) || n > (in.size() - at) / sizeof(T)) return ok = false;
    v.resize(n);
    if (n) std::memcpy(v.data(), in.data() + at, n * sizeof(T));
    at += n * sizeof(T);
    return true;
  }
  // A length-prefixed byte array, as a view into the frame (no copy).
  bool view(std::span<const std::byte>& v) {
    uint64_t n = 0;
    if (!value(n) || n > in.size() - at) return ok = false;
    v = in.subspan(at, n);
    at += n;
    return true;
  }
  bool done() const { return ok && at == in.size(); }
};

bool get_replay_state(reader& r, gossip_state::replay_state& g, uint32_t max_peers) {
  r.array(g.neighbours);
  r.array(g.quarantined);
  r.array(g.last_round);
  r.array(g.incarnation);
  r.array(g.heard_at);
  r.array(g.self_hat);
  uint64_t n = 0;
  // Each estimate costs at least its 8-byte length: a count the remaining
  // bytes cannot hold is refused before anything is allocated for it.
  if (!r.value(n) || n > max_peers || n > (r.in.size() - r.at) / sizeof(uint64_t)) return r.ok = false;
  g.nbr_hat.resize(n);
  for (auto& h : g.nbr_hat) r.array(h);
  r.array(g.residual);
  r.array(g.base);
  r.array(g.pending);
  for (uint64_t* v : {&g.rounds, &g.round, &g.in_flight, &g.silent_streak, &g.last_step}) r.value(*v);
  r.value(g.max_value);
  uint8_t full = 2;
  if (r.value(full) && full > 1) r.ok = false;  // one encoding per message: 0 or 1
  g.force_full = full != 0;
  r.value(g.robust_reference);
  // A gossip state holds finite values only (receive refuses others), and
  // the reference distance is a distance: finite and non-negative.
  auto finite = [](const std::vector<float>& v) {
    for (float x : v)
      if (!std::isfinite(x)) return false;
    return true;
  };
  if (!r.ok || !std::isfinite(g.max_value) || !std::isfinite(g.robust_reference) || g.robust_reference < 0) return false;
  if (!finite(g.self_hat) || !finite(g.residual) || !finite(g.base) || !finite(g.pending)) return false;
  for (const auto& h : g.nbr_hat)
    if (!finite(h)) return false;
  return true;
}

// Every event of a known kind, the bytes of every event that carries some
// (a received frame, a neighbour list) inside the records' bytes (replay
// would otherwise index past them on a prover's word).
bool records_well_formed(const segment_records& r) {
  for (const segment_event& e : r.events) {
    if (e.kind > segment_event::neighbours) return false;
    if (e.carries_bytes() && (e.offset > r.frames.size() || e.bytes > r.frames.size() - e.offset)) return false;
  }
  return true;
}

// put_replay_state's bytes as pieces: small arrays copied, large ones
// referred to where they lie.
struct piece_writer {
  byte_pieces& out;
  static constexpr size_t copy_below = 4096;
  template <class T>
  void value(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out.copy(&v, sizeof v);
  }
  template <class T>
  void array(std::span<const T> v) {
    static_assert(std::is_trivially_copyable_v<T>);
    value<uint64_t>(v.size());
    if (v.size_bytes() < copy_below)
      out.copy(v.data(), v.size_bytes());
    else
      out.refer(std::as_bytes(v));
  }
};

void put_replay_state(piece_writer& w, const gossip_state::replay_view& g) {
  w.array(g.neighbours);
  w.array(g.quarantined);
  w.array(g.last_round);
  w.array(g.incarnation);
  w.array(g.heard_at);
  w.array(g.self_hat);
  w.value<uint64_t>(g.nbr_hat.size());
  for (const auto& h : g.nbr_hat) w.array(std::span<const float>(h));
  w.array(g.residual);
  w.array(g.base);
  w.array(g.pending);
  for (uint64_t v : {g.rounds, g.round, g.in_flight, g.silent_streak, g.last_step}) w.value(v);
  w.value(g.max_value);
  w.value<uint8_t>(g.force_full ? 1 : 0);
  w.value(g.robust_reference);
}

// What put_replay_state writes, to reserve a reply's bytes at once (a
// boundary is megabytes: growing the frame by doubling would copy it).
size_t replay_state_bytes(const gossip_state::replay_state& g) {
  size_t n = 8 * 6 + g.neighbours.size() * 4 + g.quarantined.size() * 4 +
             (g.last_round.size() + g.incarnation.size() + g.heard_at.size()) * 8 + g.self_hat.size() * 4;
  n += 8;
  for (const auto& h : g.nbr_hat) n += 8 + h.size() * 4;
  n += 3 * 8 + (g.residual.size() + g.base.size() + g.pending.size()) * 4;
  return n + 5 * 8 + sizeof g.max_value + 1 + sizeof g.robust_reference;
}

}  // namespace

void encode_segment_commit(const segment_commit_msg& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, 4 + 16 + 96 + 24 + 8 + 8);
  writer w{out};
  w.value(m.prover);
  w.value(m.start_step);
  w.value(m.end_step);
  w.value(m.start);
  w.value(m.end);
  w.value(m.records);
  w.value(m.fingerprint.build);
  w.value(m.fingerprint.kernel);
  w.value(m.fingerprint.config);
  w.value(m.records_bytes);
  w.value(m.incarnation);
  seal_frame(message_type::segment_commit, out);
}

frame_error decode_segment_commit(std::span<const std::byte> frame, size_t max_frame_bytes, segment_commit_msg& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::segment_commit, payload); e != frame_error::none)
    return e;
  reader r{payload};
  r.value(m.prover), r.value(m.start_step), r.value(m.end_step), r.value(m.start), r.value(m.end), r.value(m.records);
  r.value(m.fingerprint.build), r.value(m.fingerprint.kernel), r.value(m.fingerprint.config);
  r.value(m.records_bytes), r.value(m.incarnation);
  return r.done() && m.end_step > m.start_step ? frame_error::none : frame_error::undecodable;
}

void encode_segment_request(const segment_request_msg& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, 8 + 16);
  writer w{out};
  w.value(m.verifier);
  w.value(m.prover);
  w.value(m.start_step);
  w.value(m.nonce);
  seal_frame(message_type::segment_request, out);
}

frame_error decode_segment_request(std::span<const std::byte> frame, size_t max_frame_bytes, segment_request_msg& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::segment_request, payload); e != frame_error::none)
    return e;
  reader r{payload};
  r.value(m.verifier), r.value(m.prover), r.value(m.start_step), r.value(m.nonce);
  return r.done() ? frame_error::none : frame_error::undecodable;
}

void encode_segment_unavailable(const segment_unavailable_msg& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, 4 + 24);
  writer w{out};
  w.value(m.prover);
  w.value(m.start_step);
  w.value(m.nonce);
  w.value(m.last_end);
  seal_frame(message_type::segment_unavailable, out);
}

frame_error decode_segment_unavailable(std::span<const std::byte> frame, size_t max_frame_bytes,
                                       segment_unavailable_msg& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::segment_unavailable, payload);
      e != frame_error::none)
    return e;
  reader r{payload};
  r.value(m.prover), r.value(m.start_step), r.value(m.nonce), r.value(m.last_end);
  return r.done() && m.last_end > m.start_step ? frame_error::none : frame_error::undecodable;
}

void encode_segment_start(const checkpoint_view& trainer, const gossip_state::replay_view& gossip, byte_pieces& out,
                          bool sealed) {
  piece_writer w{out};
  w.value<uint64_t>(encoded_checkpoint_bytes(trainer));  // the checkpoint as a byte array
  if (sealed)
    encode_checkpoint(trainer, out);
  else
    encode_checkpoint_unsealed(trainer, out);
  put_replay_state(w, gossip);
}

void seal_segment_start(std::span<std::byte> bytes) {
  uint64_t n = 0;
  if (bytes.size() < sizeof n) throw checkpoint_error("cannot seal a segment start: shorter than its length");
  std::memcpy(&n, bytes.data(), sizeof n);
  if (n > bytes.size() - sizeof n)
    throw checkpoint_error("cannot seal a segment start: its checkpoint of " + std::to_string(n) +
                           " bytes is longer than the " + std::to_string(bytes.size() - sizeof n) + " left");
  seal_checkpoint(bytes.subspan(sizeof n, n));
}

void encode_segment_start(const segment_boundary& b, std::vector<std::byte>& out) {
  byte_pieces p;
  encode_segment_start(view_of(b.trainer), gossip_state::replay_view::of(b.gossip), p);
  p.append_to(out);
}

frame_error decode_segment_start(std::span<const std::byte> bytes, segment_boundary& b) {
  reader r{bytes};
  std::span<const std::byte> ck;
  if (!r.view(ck) || !get_replay_state(r, b.gossip, 1u << 16) || !r.done()) return frame_error::undecodable;
  try {
    b.trainer = decode_checkpoint(ck, "segment start");
  } catch (const std::exception&) {
    return frame_error::undecodable;
  }
  b.d = {};
  return frame_error::none;
}

void encode_segment_records(const segment_records& r, std::vector<std::byte>& out) {
  writer w{out};
  w.array(r.events);
  w.array(r.frames);
}

// Here, with the encoders whose bytes it reads back (and the decoders'
// fuzz harness, built without segment_log.cpp, links it).
void segment_records_in_store::append_to(std::vector<std::byte>& out) const {
  if (whole) return whole->append_to(out);
  const size_t from = out.size();
  auto put_u64 = [&out](uint64_t v) {
    const size_t at = out.size();
    out.resize(at + sizeof v);
    std::memcpy(out.data() + at, &v, sizeof v);
  };
  put_u64(events);
  for (const auto& c : event_chunks) c->append_to(out);
  put_u64(frames);
  for (const auto& c : frame_chunks) c->append_to(out);
  if (const size_t got = out.size() - from; got != bytes()) {
    out.resize(from);
    throw boundary_store_error("boundary store: a segment's records read back as " + std::to_string(got) +
                               " bytes in their chunks, not " + std::to_string(bytes()));
  }
}

void encode_segment_reply(uint32_t prover, uint64_t nonce, const segment& s, std::vector<std::byte>& out) {
  // The checkpoint's floats and 256 bytes for its header, spec and extras.
  const size_t start_bytes = s.start ? 8 + 256 + s.start->trainer.model_spec.size() +
                                           (s.start->trainer.params.size() + s.start->trainer.opt_state.size()) * 4 +
                                           s.start->trainer.extra.size() * 8 + replay_state_bytes(s.start->gossip)
                                     : s.stored->bytes();
  wire::begin_frame(out, start_bytes + s.records_bytes() + s.step_digests.size() * sizeof(digest) + 1024);
  writer w{out};
  w.value(prover);
  w.value(s.start_step());
  w.value(nonce);
  if (s.start)
    encode_segment_start(*s.start, out);
  else {
    const size_t from = out.size();
    s.stored->append_to(out);  // encode_segment_start's bytes, as segment_log stored them (unsealed)
    seal_segment_start(std::span(out).subspan(from));
  }
  if (s.stored_records)
    s.stored_records->append_to(out);  // encode_segment_records' bytes, as segment_log stored them
  else
    encode_segment_records(s.records, out);
  w.array(s.step_digests);
  seal_frame(message_type::segment_reply, out);
}

frame_error decode_segment_reply(std::span<const std::byte> frame, size_t max_frame_bytes, segment_reply_msg& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::segment_reply, payload); e != frame_error::none)
    return e;
  reader r{payload};
  std::span<const std::byte> ck;
  r.value(m.prover), r.value(m.start_step), r.value(m.nonce), r.view(ck);
  if (!r.ok || !get_replay_state(r, m.start.gossip, 1u << 16)) return frame_error::undecodable;
  r.array(m.records.events), r.array(m.records.frames), r.array(m.step_digests);
  if (!r.done() || !records_well_formed(m.records)) return frame_error::undecodable;
  try {
    m.start.trainer = decode_checkpoint(ck, "segment reply");
  } catch (const std::exception&) {
    return frame_error::undecodable;
  }
  if (m.start.trainer.step != m.start_step) return frame_error::undecodable;
  m.start.d = {};  // not on the wire: the verifier computes it
  return frame_error::none;
}

void encode_segment_evidence(const segment_evidence_msg& m, std::vector<std::byte>& out) {
  wire::begin_frame(out, 16 + 8 + m.reply.size());
  writer w{out};
  w.value(m.accuser);
  w.value(m.prover);
  w.value(m.start_step);
  w.array(m.reply);
  seal_frame(message_type::segment_evidence, out);
}

frame_error decode_segment_evidence(std::span<const std::byte> frame, size_t max_frame_bytes, segment_evidence_msg& m) {
  std::span<const std::byte> payload;
  if (auto e = wire::open_frame(frame, max_frame_bytes, message_type::segment_evidence, payload); e != frame_error::none)
    return e;
  reader r{payload};
  r.value(m.accuser), r.value(m.prover), r.value(m.start_step), r.array(m.reply);
  if (!r.done()) return frame_error::undecodable;
  const decoded_frame nested = decode_frame(m.reply, max_frame_bytes);
  return nested.error == frame_error::none && nested.type == message_type::segment_reply ? frame_error::none
                                                                                       : frame_error::undecodable;
}

}  // namespace murmur
