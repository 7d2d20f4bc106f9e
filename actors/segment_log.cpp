#include "actors/segment_log.hpp"

#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

#include "actors/segment_messages.hpp"
#include "actors/trainer.hpp"

namespace murmur {

digest segment_state_digest(const checkpoint& c, const gossip_state::replay_state& g, tree_digest& h) {
  h.add_u64(c.step);
  h.add_u64(c.extra.size() > 0 ? c.extra[0] : 0);  // the schedule's length
  h.add_u64(c.extra.size() > 1 ? c.extra[1] : 0);  // batches drawn: the position in the batch order
  h.add_u64(c.opt_steps);
  h.add_vector(c.params);
  h.add_vector(c.opt_state);
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

static_assert(std::endian::native == std::endian::little,
              "the records digest hashes events as they lie in memory (little-endian)");

digest segment_records_digest(const segment_records& r, blake3_builder& h) {
  // Four updates of the two contiguous arrays: BLAKE3 hashes whole runs of
  // 1 KiB chunks at once (SIMD), unlike one small update per record.
  const uint64_t events = r.events.size(), frames = r.frames.size();
  h.add(&events, sizeof events);
  if (!r.events.empty()) h.add(r.events.data(), r.events.size() * sizeof(segment_event));
  h.add(&frames, sizeof frames);
  if (!r.frames.empty()) h.add(r.frames.data(), r.frames.size());
  return h.finish();
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

segment_log::segment_log(uint64_t steps_per_segment, bool step_digests, std::shared_ptr<boundary_store> store)
    : k_(steps_per_segment), step_digests_(step_digests), store_(std::move(store)) {
  if (k_ == 0) throw std::invalid_argument("segment_log: a segment needs at least one step");
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
  // A copy of the state to hash and encode, freed before the next step:
  // between boundaries no boundary state is in memory.
  std::vector<std::byte> encoded;
  uint64_t step = 0;
  digest d{};
  {
    segment_boundary b;
    t.save_checkpoint(b.trainer, 0, 0);
    g.save_replay_state(b.gossip);
    d = segment_state_digest(b.trainer, b.gossip, state_hash_);
    step = b.step();
    encode_segment_start(b, encoded);
  }
  const std::span<const std::byte> part(encoded);
  into.stored = store_->put(step, d, {&part, 1});
  into.start.reset();
}

void segment_log::start(const trainer& t, const gossip_state& g) {
  auto seg = std::make_unique<segment>();
  take_start(t, g, *seg);
  boundaries_.assign(1, {seg->start_step(), seg->start_digest()});
  closed_.reset();
  open_ = std::move(seg);
  last_step_ = t.steps_done();
}

void segment_log::record(const segment_event& e, std::span<const std::byte> frame) {
  if (!open_) throw std::logic_error("segment_log: a record before start()");
  segment_records& r = open_->records;
  r.events.push_back(e);
  if (!frame.empty()) {
    r.events.back().offset = r.frames.size();
    r.frames.insert(r.frames.end(), frame.begin(), frame.end());
  }
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
  open_->records_digest = segment_records_digest(open_->records, records_hash_);
  boundaries_.emplace_back(s, d);
  if (store_) {
    // The closed segment's records to the store; their storage, cleared,
    // takes the next segment's (no allocation in steady state).
    const segment_records& r = open_->records;
    const uint64_t events = r.events.size(), frames = r.frames.size();
    const std::span<const std::byte> parts[4] = {
        std::as_bytes(std::span(&events, 1)), std::as_bytes(std::span(r.events)),
        std::as_bytes(std::span(&frames, 1)), std::span(r.frames)};
    open_->stored_records = store_->put(open_->start_step(), open_->records_digest, parts);
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
