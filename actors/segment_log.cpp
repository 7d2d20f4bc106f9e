#include "actors/segment_log.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

#include "actors/segment_messages.hpp"
#include "actors/trainer.hpp"

namespace murmur {

digest segment_state_digest(const checkpoint_view& c, const gossip_state::replay_view& g, tree_digest& h) {
  h.add_u64(c.step);
  h.add_u64(c.extra.size() > 0 ? c.extra[0] : 0);  // the schedule's length
  h.add_u64(c.extra.size() > 1 ? c.extra[1] : 0);  // batches drawn: the position in the batch order
  h.add_u64(c.opt_steps);
  h.add_vector(c.params);
  const std::span<const std::byte> opt[2] = {std::as_bytes(c.opt_state[0]), std::as_bytes(c.opt_state[1])};
  h.add_buffer(opt);  // as one vector (a saved checkpoint's opt_state)
  h.add_vector(g.neighbours);
  h.add_vector(g.quarantined);
  h.add_vector(g.last_round);
  h.add_vector(g.incarnation);
  h.add_vector(g.heard_at);
  h.add_vector(g.self_hat);
  h.add_u64(g.nbr_hat.size());
  for (const auto& hat : g.nbr_hat) h.add_vector(hat);
  h.add_vector(g.residual);
  h.add_vector(g.base);
  h.add_vector(g.pending);
  for (uint64_t v : {g.rounds, g.round, g.in_flight, g.silent_streak, g.last_step}) h.add_u64(v);
  h.add(&g.max_value, sizeof g.max_value);
  const uint8_t full = g.force_full ? 1 : 0;
  h.add(&full, 1);
  h.add(&g.robust_reference, sizeof g.robust_reference);
  return h.finish();
}

digest segment_state_digest(const checkpoint& c, const gossip_state::replay_state& g, tree_digest& h) {
  return segment_state_digest(view_of(c), gossip_state::replay_view::of(g), h);
}

static_assert(std::endian::native == std::endian::little,
              "the records digest hashes events as they lie in memory (little-endian)");

digest segment_records_digest(uint64_t events, const digest& events_hash, uint64_t frame_bytes,
                              const digest& frames_hash, blake3_builder& h) {
  h.add(&events, sizeof events).add(events_hash.data(), events_hash.size());
  h.add(&frame_bytes, sizeof frame_bytes).add(frames_hash.data(), frames_hash.size());
  return h.finish();
}

digest segment_records_digest(const segment_records& r, blake3_builder& h) {
  // One update per contiguous array: BLAKE3 hashes whole runs of 1 KiB
  // chunks at once (SIMD), unlike one small update per record.
  if (!r.events.empty()) h.add(r.events.data(), r.events.size() * sizeof(segment_event));
  const digest events_hash = h.finish();
  if (!r.frames.empty()) h.add(r.frames.data(), r.frames.size());
  const digest frames_hash = h.finish();
  return segment_records_digest(r.events.size(), events_hash, r.frames.size(), frames_hash, h);
}

std::string segment_records_inconsistency(const segment_records& r) {
  static const char* const kinds[] = {"received", "sent", "mixed", "published", "stepped", "quarantined", "neighbours"};
  uint64_t at = 0;  // the bytes carried by the events so far
  for (size_t i = 0; i < r.events.size(); ++i) {
    const segment_event& e = r.events[i];
    auto bad = [&](const std::string& what) {
      return "event " + std::to_string(i) + " (" +
             (e.kind <= segment_event::neighbours ? std::string(kinds[e.kind]) : "kind " + std::to_string(e.kind)) +
             ") " + what;
    };
    if (e.kind > segment_event::neighbours) return bad("is of no known kind");
    if (e.unused_[0] != 0 || e.unused_[1] != 0 || e.unused_[2] != 0 || e.unused2_ != 0)
      return bad("has nonzero padding");
    if (!e.carries_bytes()) {
      if (e.bytes != 0 || e.offset != 0)
        return bad("carries no bytes but says " + std::to_string(e.bytes) + " at offset " + std::to_string(e.offset));
      continue;
    }
    const uint64_t want = e.bytes > 0 ? at : 0;
    if (e.offset != want)
      return bad("starts at byte " + std::to_string(e.offset) + " where " + std::to_string(want) +
                 " (the bytes of the events before it)");
    if (e.bytes > r.frames.size() - at)
      return bad("has " + std::to_string(e.bytes) + " bytes at " + std::to_string(at) + ", past the records' " +
                 std::to_string(r.frames.size()) + " frame bytes");
    at += e.bytes;
  }
  if (at != r.frames.size())
    return "the events carry " + std::to_string(at) + " of the records' " + std::to_string(r.frames.size()) +
           " frame bytes";
  return {};
}

segment_log::segment_log(uint64_t steps_per_segment, bool step_digests, std::shared_ptr<boundary_store> store,
                         size_t records_chunk_bytes)
    : k_(steps_per_segment), step_digests_(step_digests), store_(std::move(store)),
      records_chunk_(std::max<size_t>(records_chunk_bytes, 1)) {
  if (k_ == 0) throw std::invalid_argument("segment_log: a segment needs at least one step");
}

void segment_log::spill_records(bool all) {
  segment_records& r = open_->records;
  const size_t event_bytes = r.events.size() * sizeof(segment_event);
  if (!all && event_bytes < records_chunk_ && r.frames.size() < records_chunk_) return;
  if (!spilled_) spilled_ = std::make_shared<segment_records_in_store>();
  // Chunks carry no digest of their own (the segment's records digest is
  // known at its close); each is checked on reading by its store sum.
  if (event_bytes > 0 && (all || event_bytes >= records_chunk_)) {
    const std::span<const std::byte> part = std::as_bytes(std::span(r.events));
    spilled_->event_chunks.push_back(store_->put(open_->start_step(), digest{}, {&part, 1}));
    events_hash_.add(part.data(), part.size());  // the records digest's events part, as they go
    spilled_->events += r.events.size();
    r.events.clear();  // its storage kept: no allocation in steady state
  }
  if (!r.frames.empty() && (all || r.frames.size() >= records_chunk_)) {
    const std::span<const std::byte> part(r.frames);
    spilled_->frame_chunks.push_back(store_->put(open_->start_step(), digest{}, {&part, 1}));
    frames_hash_.add(part.data(), part.size());
    spilled_->frames += r.frames.size();
    r.frames.clear();
  }
}

const segment& segment_log::open() const {
  if (!open_) throw std::logic_error("segment_log: no segment open before start()");
  return *open_;
}

std::shared_ptr<segment_boundary> segment_log::snapshot(const trainer& t, const gossip_state& g) {
  std::shared_ptr<segment_boundary> b = std::move(spare_);
  if (!b) b = std::make_shared<segment_boundary>();
  // Into the boundary's own storage (reused from a freed boundary: no
  // allocation in steady state), then hashed (tree_digest: BLAKE3, many
  // 1 KiB chunks at a time).
  t.save_checkpoint(b->trainer, 0, 0);
  g.save_replay_state(b->gossip);
  b->d = segment_state_digest(b->trainer, b->gossip, state_hash_);
  return b;
}

void segment_log::take_start(const trainer& t, const gossip_state& g, segment& into) {
  if (!store_) {
    into.start = snapshot(t, g);
    into.stored.reset();
    return;
  }
  // Hashed and written from views of the live state: no copy of it, no
  // state-sized buffer (the store writes the pieces with one pwritev).
  checkpoint_view tv;
  std::array<uint64_t, trainer::checkpoint_extra> extra{};
  if (!t.view_checkpoint(tv, extra, 0, 0)) {
    // A state not on the host (a compute backend): copied, then written.
    segment_boundary b;
    t.save_checkpoint(b.trainer, 0, 0);
    g.save_replay_state(b.gossip);
    const digest d = segment_state_digest(b.trainer, b.gossip, state_hash_);
    start_pieces_.clear();
    encode_segment_start(view_of(b.trainer), gossip_state::replay_view::of(b.gossip), start_pieces_, false);
    into.stored = store_->put(b.step(), d, start_pieces_.pieces());
    start_pieces_.clear();
    into.start.reset();
    return;
  }
  const gossip_state::replay_view gv = g.view_replay_state();
  const digest d = segment_state_digest(tv, gv, state_hash_);
  start_pieces_.clear();
  // Unsealed: the checkpoint's SHA-256 is taken only if the boundary is
  // read back (encode_segment_reply seals it); the store's checksum and
  // the state digest above bind the bytes meanwhile.
  encode_segment_start(tv, gv, start_pieces_, false);
  into.stored = store_->put(tv.step, d, start_pieces_.pieces());
  start_pieces_.clear();  // drops the views
  into.start.reset();
}

void segment_log::start(const trainer& t, const gossip_state& g) {
  auto seg = std::make_unique<segment>();
  take_start(t, g, *seg);
  boundaries_.assign(1, {seg->start_step(), seg->start_digest()});
  closed_.reset();
  spilled_.reset();  // what an earlier start recorded is dropped
  events_hash_.finish();  // and its records digest's parts
  frames_hash_.finish();
  open_ = std::move(seg);
  last_step_ = t.steps_done();
}

void segment_log::record(const segment_event& e, std::span<const std::byte> frame) {
  if (!open_) throw std::logic_error("segment_log: a record before start()");
  segment_records& r = open_->records;
  r.events.push_back(e);
  if (!frame.empty()) {
    r.events.back().offset = (spilled_ ? spilled_->frames : 0) + r.frames.size();
    // With a store the buffer is spilled at a chunk: room for a chunk and a
    // frame past it, not the doubling insert would make (twice the chunk).
    if (store_ && r.frames.size() + frame.size() > r.frames.capacity())
      r.frames.reserve(std::max(r.frames.size() + frame.size(), records_chunk_ + records_chunk_ / 4));
    r.frames.insert(r.frames.end(), frame.begin(), frame.end());
  }
  if (store_) spill_records(false);
}

void segment_log::received(uint32_t from, std::span<const std::byte> frame) {
  segment_event e;
  e.kind = segment_event::received;
  e.from = from;
  e.bytes = static_cast<uint32_t>(frame.size());
  record(e, frame);
}

void segment_log::sent() { record({segment_event::sent}); }

void segment_log::mixed() { record({segment_event::mixed}); }

void segment_log::published(uint64_t step) {
  segment_event e;
  e.kind = segment_event::published;
  e.step = step;
  record(e);
}

void segment_log::quarantined(uint32_t peer, uint8_t cause) {
  segment_event e;
  e.kind = segment_event::quarantined;
  e.from = peer;
  e.step = cause;
  record(e);
}

void segment_log::neighbours(std::span<const uint32_t> ids, std::span<const uint64_t> incarnations) {
  if (ids.size() != incarnations.size()) throw std::invalid_argument("segment_log: one incarnation per neighbour");
  segment_event e;
  e.kind = segment_event::neighbours;
  e.from = static_cast<uint32_t>(ids.size());
  e.bytes = static_cast<uint32_t>(ids.size() * (sizeof(uint32_t) + sizeof(uint64_t)));
  neighbour_bytes_.resize(e.bytes);
  if (!ids.empty()) {
    std::memcpy(neighbour_bytes_.data(), ids.data(), ids.size() * sizeof(uint32_t));
    std::memcpy(neighbour_bytes_.data() + ids.size() * sizeof(uint32_t), incarnations.data(),
                incarnations.size() * sizeof(uint64_t));
  }
  record(e, neighbour_bytes_);
}

void segment_log::stepped(const trainer& t, const gossip_state& g) {
  if (!open_) throw std::logic_error("segment_log: stepped() before start()");
  const uint64_t s = t.steps_done();
  const uint64_t expected = last_step_ + 1;
  if (s != expected)
    throw std::logic_error("segment_log: step " + std::to_string(s) + " where step " + std::to_string(expected) +
                           " was due (a state install or step change inside a segment is not recorded)");
  segment_event e;
  e.kind = segment_event::stepped;
  e.step = s;
  record(e);
  last_step_ = s;
  if (s % k_ != 0) {
    if (step_digests_) {
      t.save_checkpoint(scratch_trainer_, 0, 0);
      g.save_replay_state(scratch_gossip_);
      open_->step_digests.push_back(segment_state_digest(scratch_trainer_, scratch_gossip_, state_hash_));
    }
    return;
  }
  // A boundary: the open segment closes with this state as its end, and a
  // new one opens from it. The segment closed before is dropped first, so
  // that its storage, and its start boundary's, take the new ones: two
  // boundary states at any time.
  // (Unless a reader still holds the closed segment: then it keeps it.)
  std::unique_ptr<segment> next;
  if (closed_ && closed_.use_count() == 1) {
    next = std::make_unique<segment>(std::move(*closed_));
  } else {
    next = std::make_unique<segment>();
  }
  closed_.reset();
  std::shared_ptr<const segment_boundary> old = std::move(next->start);
  if (old && old.use_count() == 1) spare_ = std::const_pointer_cast<segment_boundary>(std::move(old));
  old.reset();
  next->stored.reset();  // its slots are free for this boundary (unless a reader holds them)
  next->stored_records.reset();
  take_start(t, g, *next);
  const digest d = next->start_digest();
  if (step_digests_) open_->step_digests.push_back(d);
  open_->end_step = s;
  open_->end = d;
  {
    // The records digest: the parts written in chunks were hashed as they
    // went (a segment written in chunks writes its rest as chunks too);
    // what is still in memory is hashed now.
    if (store_ && spilled_) spill_records(true);
    const segment_records& r = open_->records;
    if (!r.events.empty()) events_hash_.add(r.events.data(), r.events.size() * sizeof(segment_event));
    if (!r.frames.empty()) frames_hash_.add(r.frames.data(), r.frames.size());
    const uint64_t events = (spilled_ ? spilled_->events : 0) + r.events.size();
    const uint64_t frames = (spilled_ ? spilled_->frames : 0) + r.frames.size();
    open_->records_digest =
        segment_records_digest(events, events_hash_.finish(), frames, frames_hash_.finish(), records_hash_);
  }
  boundaries_.emplace_back(s, d);
  if (store_) {
    // The closed segment's records to the store; their storage, cleared,
    // takes the next segment's (no allocation in steady state).
    if (spilled_) {
      // Written in chunks while open (the rest too, above).
      open_->stored_records = std::move(spilled_);
    } else {
      const segment_records& r = open_->records;
      const uint64_t events = r.events.size(), frames = r.frames.size();
      const std::span<const std::byte> parts[4] = {
          std::as_bytes(std::span(&events, 1)), std::as_bytes(std::span(r.events)),
          std::as_bytes(std::span(&frames, 1)), std::span(r.frames)};
      auto in = std::make_shared<segment_records_in_store>();
      in->whole = store_->put(open_->start_step(), open_->records_digest, parts);
      open_->stored_records = std::move(in);
    }
    std::swap(next->records, open_->records);
    open_->records = {};
  }
  next->records.clear();
  next->step_digests.clear();
  next->end_step = 0;
  next->records_digest = {};
  next->end = {};
  closed_ = std::shared_ptr<segment>(std::move(open_));
  open_ = std::move(next);
}

}  // namespace murmur
