// segment_log: a data-parallel peer's amortised commitment to its training,
// one segment of K steps at a time (docs/trust.md, "Amortised commitments").
//
// At every boundary step jK it saves and hashes the state that determines
// every later step: the trainer's checkpoint (parameters, optimizer state,
// step, hence learning rate, dropout and augmentation seeds, and the number
// of batches drawn, hence the batch order) and the gossip state's replay
// state (public estimates of itself and its neighbours, rounds, frames in
// flight). Between boundaries it records, in order, what reaches the
// trainer from outside: every gossip call that changes the state (an
// accepted frame with its bytes, a frame leaving, a mix, a publish) and
// every step taken, every quarantine the gossip state applies (a
// verifier's verdict changes what it mixes) and every neighbour list the
// membership gives it (on a LAN peers join, leave and are relinked around a
// quarantined one mid-run; the list and incarnations go in as bytes). segment_replay re-runs a segment from its start
// boundary and its records, bit for bit.
//
// The caller reports each call right after making it (the calls stay where
// they are; a log only listens): received() after an accepted
// gossip_state::receive, sent() after on_sent, mixed() after mix,
// published() after publish, quarantined() after a quarantine that took
// effect, neighbours() after set_neighbours, stepped() after trainer::step. Rejected frames
// need no record: they leave the gossip state unchanged.
//
// Memory: the last closed segment and the open one, i.e. two boundary
// states (the closed one's end is the open one's start) and two segments'
// records, plus the 32-byte digest of every boundary so far. With a
// boundary_store the boundary states and a closed segment's records go to
// its file instead (as a segment_reply carries them: encode_segment_start,
// encode_segment_records; a boundary's checkpoint checksum is filled in
// only when it is read back: encode_segment_reply), and a segment holds only the store's entries
// (step, digest, slot): a boundary costs memory only while it is taken (a
// copy of the state to hash and encode, freed at once), the records only
// while their segment is open, and the store's file holds as many as
// segments are kept (a verifier's keep_segments). Not in it: a
// state install inside a segment (stepped() throws std::logic_error when
// the step jumps; a host installs before training and calls start() again
// afterwards), gossip on a compute backend, a
// detector or update attack (start() throws
// std::invalid_argument, gossip_state::replay_unsupported). Not
// thread-safe: one caller at a time (a reader that keeps a closed segment's
// start boundary past the next close holds its shared pointer, and the log
// then allocates a new one instead of reusing it).
#pragma once
#include <type_traits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "actors/boundary_store.hpp"
#include "actors/gossip_state.hpp"
#include "protocols/byte_pieces.hpp"
#include "protocols/checkpoint_file.hpp"
#include "tensor/blake3.hpp"
#include "tensor/digest.hpp"
#include "tensor/tree_digest.hpp"

namespace murmur {

class trainer;

// The state after a step: everything the following steps depend on.
struct segment_boundary {
  checkpoint trainer;                 // trainer::save_checkpoint (its train-loss mean is not hashed)
  gossip_state::replay_state gossip;
  digest d{};                         // segment_state_digest(trainer, gossip)
  uint64_t step() const { return trainer.step; }
  bool operator==(const segment_boundary&) const = default;
};

// A BLAKE3 commitment (tree_digest: each large vector's BLAKE3 in a BLAKE3
// over the scalars and lengths) to the parts of a trainer checkpoint that later
// steps depend on (step, schedule length, batches drawn, optimizer steps,
// parameters, optimizer state) and to the whole gossip replay state. Prover
// and replay both hash with it.
digest segment_state_digest(const checkpoint& trainer, const gossip_state::replay_state& gossip, tree_digest& h);
// The same digest from views (of the live state: nothing copied).
digest segment_state_digest(const checkpoint_view& trainer, const gossip_state::replay_view& gossip, tree_digest& h);

struct segment_event {
  enum kind_t : uint8_t { received, sent, mixed, published, stepped, quarantined, neighbours } kind = stepped;
  // Explicit, zeroed padding: events go on the wire as they lie in memory
  // (segment_messages), so no byte of one may be left uninitialised.
  uint8_t unused_[3] = {0, 0, 0};
  uint32_t from = 0;    // received: the sender; quarantined: the peer; neighbours: how many
  uint32_t bytes = 0;   // received: the frame's length; neighbours: 12 per neighbour (u32 ids, then u64 incarnations)
  uint32_t unused2_ = 0;
  uint64_t offset = 0;  // received, neighbours: where its bytes start in segment_records::frames
  uint64_t step = 0;    // published: the publish's step; stepped: the step taken (1-based); quarantined: the cause
  bool carries_bytes() const { return kind == received || kind == neighbours; }
  bool operator==(const segment_event&) const = default;
};
static_assert(std::has_unique_object_representations_v<segment_event>, "segment_event must have no padding");

struct segment_records {
  std::vector<segment_event> events;
  std::vector<std::byte> frames;  // the accepted frames' and neighbour lists' bytes, in order
  size_t bytes() const { return events.size() * sizeof(segment_event) + frames.size(); }
  void clear() {
    events.clear();
    frames.clear();
  }
  bool operator==(const segment_records&) const = default;
};

// The digest of a segment's records (segment::records_digest): BLAKE3 over
// the event count (u64), E, the frames' length in bytes (u64), F, where E is
// the BLAKE3 of every event as its 32 bytes lie in memory (kind, 3 zero
// bytes, from, bytes, 4 zero bytes, offset, step; little-endian), in order,
// and F the BLAKE3 of the frames' bytes: the two arrays encode_segment_records
// writes (and a segment_reply and the boundary_store carry). Two inner
// hashes rather than one over the wire bytes so that a prover can hash each
// array as it goes to the store in chunks, while the segment is still open
// (the counts come last). Every field of every event, its place in the
// order and every frame byte are bound; so are the offsets, which
// consistent records fix (below). It is defined for any records: a
// verifier first holds fetched records to the commitment, then refuses
// inconsistent ones (segment_records_inconsistency).
digest segment_records_digest(const segment_records& r, blake3_builder& h);
// The same from its parts (E and F already hashed).
digest segment_records_digest(uint64_t events, const digest& events_hash, uint64_t frame_bytes,
                              const digest& frames_hash, blake3_builder& h);

// Empty if r is as a segment_log writes records, else what is wrong (naming
// the event): every event of a known kind with zero padding; an event that
// carries bytes (received, neighbours) with offset = the bytes carried by
// the events before it (0 when it carries none); any other event with no
// bytes and offset 0; the carried bytes together exactly the frames (no
// gap, overlap or trailing byte). Replay reads frames by offset: consistent
// records leave it no other reading of them.
std::string segment_records_inconsistency(const segment_records& r);

// A closed segment's records in a boundary_store, encode_segment_records'
// bytes: one entry, or (records written in chunks while the segment was
// open) the event count, the events' chunks, the frame bytes' count and
// the frames' chunks, the counts held here.
struct segment_records_in_store {
  std::shared_ptr<const boundary_store::entry> whole;  // unchunked: the bytes in one entry
  uint64_t events = 0, frames = 0;                     // chunked: how many events, how many frame bytes
  std::vector<std::shared_ptr<const boundary_store::entry>> event_chunks, frame_chunks;
  size_t bytes() const {
    return whole ? whole->bytes() : 16 + events * sizeof(segment_event) + frames;
  }
  // Appends the bytes, read back and checked (boundary_store_error).
  void append_to(std::vector<std::byte>& out) const;
};

struct segment {
  // The start boundary: in memory, or (a log with a boundary_store) in the
  // store, start then null. Exactly one of the two is set.
  std::shared_ptr<const segment_boundary> start;
  std::shared_ptr<const boundary_store::entry> stored;
  uint64_t start_step() const { return start ? start->step() : stored->step(); }
  const digest& start_digest() const { return start ? start->d : stored->state(); }
  // The records: in memory, or, once a log with a boundary_store closed the
  // segment, in the store (records then empty): encode_segment_records'
  // bytes under the records digest.
  segment_records records;
  std::shared_ptr<const segment_records_in_store> stored_records;
  size_t records_bytes() const { return stored_records ? stored_records->bytes() - 16 : records.bytes(); }
  uint64_t end_step = 0;       // closed: start step + K
  digest records_digest{};     // closed: segment_records_digest of its records
  digest end{};                // closed: the next boundary's digest
  std::vector<digest> step_digests;  // with step digests on: the state after each step
};

class segment_log {
 public:
  // step_digests: also hash the whole state after every step (a prover's
  // answers to a bisection; costs a boundary hash per step).
  // store: where the boundary states go (null: kept in memory).
  // records_chunk_bytes: with a store, the open segment's events and frame
  // bytes go to it each time either reaches this many bytes, so a segment's
  // records are never all in memory (the open segment's `records` then hold
  // the part not yet written; offsets count from the segment's start).
  // 64 KiB: per peer, what verification holds in memory between
  // boundaries is about one chunk of frames (a simulation holds N peers'),
  // at a few more writes (one per ~7 steps of the default run's frames).
  static constexpr size_t default_records_chunk_bytes = 64 * 1024;
  explicit segment_log(uint64_t steps_per_segment, bool step_digests = false,
                       std::shared_ptr<boundary_store> store = nullptr,
                       size_t records_chunk_bytes = default_records_chunk_bytes);
  // Opens the first segment at the trainer's current step (which closes at
  // the next multiple of K), dropping whatever was recorded before: a
  // peer that installed donors' state before training starts anew.
  void start(const trainer& t, const gossip_state& g);
  void received(uint32_t from, std::span<const std::byte> frame);
  void sent();
  void mixed();
  void published(uint64_t step);
  void quarantined(uint32_t peer, uint8_t cause);
  void neighbours(std::span<const uint32_t> ids, std::span<const uint64_t> incarnations);
  // After every step; at a multiple of K closes the open segment.
  void stepped(const trainer& t, const gossip_state& g);

  uint64_t steps_per_segment() const { return k_; }
  const segment* closed() const { return closed_ ? &*closed_ : nullptr; }
  // The same, to keep past the next close (the log then allocates anew
  // instead of reusing its storage).
  std::shared_ptr<const segment> closed_shared() const { return closed_; }
  const segment& open() const;
  // (step, digest) of every boundary so far: the commitments.
  const std::vector<std::pair<uint64_t, digest>>& boundaries() const { return boundaries_; }

 private:
  uint64_t k_;
  bool step_digests_;
  uint64_t last_step_ = 0;  // the last step recorded
  std::unique_ptr<segment> open_;
  std::shared_ptr<segment> closed_;
  std::shared_ptr<segment_boundary> spare_;  // a freed boundary, its storage reused (in memory)
  std::shared_ptr<boundary_store> store_;
  std::vector<std::pair<uint64_t, digest>> boundaries_;
  tree_digest state_hash_;
  blake3_builder records_hash_;  // the records digest at each close (its state allocated once)
  blake3_builder events_hash_, frames_hash_;  // the open segment's E and F (segment_records_digest) so far
  std::vector<std::byte> neighbour_bytes_;  // scratch for neighbours()
  checkpoint scratch_trainer_;
  gossip_state::replay_state scratch_gossip_;
  byte_pieces start_pieces_;  // a stored boundary's bytes: its small fields, views of the live state
  size_t records_chunk_;
  std::shared_ptr<segment_records_in_store> spilled_;  // the open segment's records written so far (null: none)
  // Writes the open segment's events and frame bytes that reached a chunk
  // (all of them: every one left) to the store.
  void spill_records(bool all);
  void record(const segment_event& e, std::span<const std::byte> frame = {});
  std::shared_ptr<segment_boundary> snapshot(const trainer& t, const gossip_state& g);
  // Takes the boundary after the trainer's last step as `into`'s start.
  void take_start(const trainer& t, const gossip_state& g, segment& into);
};

}  // namespace murmur
