// segment_messages: the wire frames of segment verification
// (verify.scheme = segment, docs/trust.md "Amortised commitments").
//   segment_commit:  a prover's commitment to one closed segment, sent to
//                    its verifiers: the start and end boundary digests, the
//                    records' digest, the prover's replay fingerprint (what
//                    must agree for a verifier's replay to be bit for bit; a
//                    verifier replays only an equal one), and the records'
//                    size in bytes (not bound: it sizes the verifier's
//                    deadline, capped), and the prover's incarnation, which
//                    names its chain of segments (a restarted prover states
//                    a higher one and starts a new chain; segment_verifier).
//   segment_request: a verifier's challenge of one segment (by its start
//                    step), with a nonce the reply repeats.
//   segment_reply:   the prover's start boundary state and records of that
//                    segment, and its per-step state digests (for
//                    bisection; not bound by the commitment).
//   segment_evidence: (type 27) a verifier whose replay of a segment failed
//                    relays the prover's segment_reply frame, verbatim, to
//                    the prover's other verifiers: accuser, prover, the
//                    segment's start step, the reply frame.
//   segment_unavailable: (type 28) a prover's answer to a segment_request
//                    for a segment it no longer keeps: the request's start
//                    step and nonce, and the end step of its latest
//                    commitment when it answered (it dropped the segment
//                    for keep_segments newer ones; the verifier excuses the
//                    answer only once those reach it too, verifier_actor).
// They travel like the other verify messages (is_verify_message). Decoders
// never throw: a malformed frame is frame_error::undecodable (a reply's
// checkpoint is decoded by decode_checkpoint and bound by the verifier to
// the committed start digest).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "actors/replay_fingerprint.hpp"
#include "actors/segment_log.hpp"
#include "protocols/frame_codec.hpp"

namespace murmur {

struct segment_commit_msg {
  uint32_t prover = 0;
  uint64_t start_step = 0, end_step = 0;
  digest start{}, end{}, records{};
  replay_fingerprint fingerprint{};
  uint64_t records_bytes = 0;
  // The prover's membership incarnation when it started (wall-clock ms at
  // start on a LAN, so a restart states a higher one; 0 in the simulator).
  uint64_t incarnation = 0;
  bool operator==(const segment_commit_msg&) const = default;
};

struct segment_request_msg {
  uint32_t verifier = 0, prover = 0;
  uint64_t start_step = 0, nonce = 0;
  bool operator==(const segment_request_msg&) const = default;
};

struct segment_reply_msg {
  uint32_t prover = 0;
  uint64_t start_step = 0, nonce = 0;
  segment_boundary start;
  segment_records records;
  std::vector<digest> step_digests;
  bool operator==(const segment_reply_msg&) const = default;
};

struct segment_evidence_msg {
  uint32_t accuser = 0, prover = 0;
  uint64_t start_step = 0;
  std::vector<std::byte> reply;  // a segment_reply frame, as the prover sent it
  bool operator==(const segment_evidence_msg&) const = default;
};

struct segment_unavailable_msg {
  uint32_t prover = 0;
  uint64_t start_step = 0, nonce = 0;
  uint64_t last_end = 0;  // the end step of the prover's latest commitment
  bool operator==(const segment_unavailable_msg&) const = default;
};

void encode_segment_commit(const segment_commit_msg& m, std::vector<std::byte>& out);
frame_error decode_segment_commit(std::span<const std::byte> frame, size_t max_frame_bytes, segment_commit_msg& m);
void encode_segment_request(const segment_request_msg& m, std::vector<std::byte>& out);
frame_error decode_segment_request(std::span<const std::byte> frame, size_t max_frame_bytes, segment_request_msg& m);
// A start boundary as a segment_reply carries it (its trainer checkpoint as
// encode_checkpoint writes it, then its gossip replay state): what a
// segment_log keeps in its boundary_store.
void encode_segment_start(const segment_boundary& b, std::vector<std::byte>& out);
// The same bytes as pieces, from views of the live state (its floats
// referred to, not copied): what segment_log writes to its store.
// sealed = false: the checkpoint's checksum left zero (encode_checkpoint_unsealed),
// for bytes stored and sealed by seal_segment_start only if read back.
void encode_segment_start(const checkpoint_view& trainer, const gossip_state::replay_view& gossip, byte_pieces& out,
                          bool sealed = true);
// Fills in the checksum of the checkpoint in encode_segment_start's bytes
// (all of them) written unsealed; checkpoint_error if they are too short.
void seal_segment_start(std::span<std::byte> bytes);
// Reads encode_segment_start's bytes (sealed) back into b (its digest d
// left zero): undecodable when they are not exactly such bytes, or their
// checkpoint's checksum fails. Never throws.
frame_error decode_segment_start(std::span<const std::byte> bytes, segment_boundary& b);
// A segment's records as a segment_reply carries them (the events, then the
// frames' bytes, each an array): what a segment_log keeps in its
// boundary_store once the segment closed.
void encode_segment_records(const segment_records& r, std::vector<std::byte>& out);
// The reply to `request` from a closed segment s of this prover. Its start
// boundary and records are read back from the boundary store when s keeps
// them there (boundary_store_error when that fails: the reply is not made).
void encode_segment_reply(uint32_t prover, uint64_t nonce, const segment& s, std::vector<std::byte>& out);
// Refuses (undecodable) a reply whose records name an unknown event kind or a
// received frame past the records' bytes; counts are bounded by the bytes
// present before anything is allocated.
frame_error decode_segment_reply(std::span<const std::byte> frame, size_t max_frame_bytes, segment_reply_msg& m);
void encode_segment_evidence(const segment_evidence_msg& m, std::vector<std::byte>& out);
// Checks the nested reply's frame header and checksum only (a segment_reply
// frame within max_frame_bytes): the receiver decodes it (decode_segment_reply)
// once it wants to re-check it, and holds it to the outer prover and start
// step. The nested length is checked against the bytes present before the
// copy is allocated.
frame_error decode_segment_evidence(std::span<const std::byte> frame, size_t max_frame_bytes, segment_evidence_msg& m);
void encode_segment_unavailable(const segment_unavailable_msg& m, std::vector<std::byte>& out);
// Refuses (undecodable) a last_end not after the start step (the segment
// asked for was committed, so the latest commitment ends after it starts).
frame_error decode_segment_unavailable(std::span<const std::byte> frame, size_t max_frame_bytes,
                                       segment_unavailable_msg& m);

}  // namespace murmur
