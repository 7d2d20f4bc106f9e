// The records digest (actors/segment_log.hpp, segment_records_digest): BLAKE3
// over the counts and the BLAKE3s of the two arrays encode_segment_records
// writes;
// it changes with any event field, any frame byte and the event order.
// Inconsistent offsets and lengths are named (segment_records_inconsistency)
// and a verifier refuses records committed to with them.
#include <catch2/catch.hpp>

#include <cstring>
#include <utility>

#include "actors/segment_check.hpp"
#include "actors/segment_log.hpp"
#include "actors/segment_messages.hpp"

using namespace murmur;

namespace {

// As a segment_log writes them: a frame, a step, a neighbour list (ids 4, 5;
// incarnations 6, 7), a mix, a publish, a send, a quarantine, an empty frame.
segment_records sample_records() {
  segment_records r;
  auto carry = [&r](segment_event e, std::initializer_list<unsigned> bytes) {
    e.bytes = static_cast<uint32_t>(bytes.size());
    e.offset = bytes.size() > 0 ? r.frames.size() : 0;
    for (unsigned b : bytes) r.frames.push_back(std::byte{static_cast<unsigned char>(b)});
    r.events.push_back(e);
  };
  carry({.kind = segment_event::received, .from = 2}, {1, 2, 3, 4, 5});
  r.events.push_back({.kind = segment_event::stepped, .step = 17});
  carry({.kind = segment_event::neighbours, .from = 2},
        {4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0});
  r.events.push_back({.kind = segment_event::mixed});
  r.events.push_back({.kind = segment_event::published, .step = 17});
  r.events.push_back({.kind = segment_event::sent});
  r.events.push_back({.kind = segment_event::quarantined, .from = 3, .step = 2});
  carry({.kind = segment_event::received, .from = 1}, {});
  carry({.kind = segment_event::received, .from = 3}, {9, 8});
  return r;
}

}  // namespace

TEST_CASE("the records digest is BLAKE3 over the records' counts and arrays and binds every field, byte and the order",
          "[segment][records]") {
  const segment_records r = sample_records();
  REQUIRE(segment_records_inconsistency(r).empty());
  blake3_builder h;
  const digest want = segment_records_digest(r, h);
  CHECK(segment_records_digest(r, h) == want);  // the builder starts afresh after each digest
  // The construction stated in the header: BLAKE3(count, E, frame bytes, F).
  {
    const digest e = blake3(r.events.data(), r.events.size() * sizeof(segment_event));
    const digest f = blake3(r.frames.data(), r.frames.size());
    std::vector<std::byte> outer;
    auto put = [&outer](const void* p, size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      outer.insert(outer.end(), b, b + n);
    };
    const uint64_t events = r.events.size(), frames = r.frames.size();
    put(&events, 8), put(e.data(), 32), put(&frames, 8), put(f.data(), 32);
    CHECK(blake3(outer.data(), outer.size()) == want);
  }

  // Every byte of every event (kind, padding, from, bytes, offset, step).
  static_assert(sizeof(segment_event) == 32);
  for (size_t i = 0; i < r.events.size(); ++i)
    for (size_t b = 0; b < sizeof(segment_event); ++b) {
      segment_records other = r;
      reinterpret_cast<unsigned char*>(&other.events[i])[b] ^= 1;
      INFO("event " << i << " byte " << b);
      CHECK(segment_records_digest(other, h) != want);
    }
  // Every frame byte.
  for (size_t b = 0; b < r.frames.size(); ++b) {
    segment_records other = r;
    other.frames[b] ^= std::byte{0x80};
    INFO("frame byte " << b);
    CHECK(segment_records_digest(other, h) != want);
  }
  // The order of any two adjacent events, and of two carrying bytes with
  // their frames swapped too (still consistent): the order is bound.
  for (size_t i = 0; i + 1 < r.events.size(); ++i) {
    segment_records other = r;
    std::swap(other.events[i], other.events[i + 1]);
    if (other.events == r.events) continue;
    INFO("events " << i << " and " << i + 1 << " swapped");
    CHECK(segment_records_digest(other, h) != want);
  }
  {
    segment_records a;
    a.events = {{.kind = segment_event::received, .from = 1, .bytes = 1, .offset = 0},
                {.kind = segment_event::received, .from = 1, .bytes = 1, .offset = 1}};
    a.frames = {std::byte{1}, std::byte{2}};
    segment_records b = a;
    std::swap(b.frames[0], b.frames[1]);
    REQUIRE(segment_records_inconsistency(b).empty());
    CHECK(segment_records_digest(a, h) != segment_records_digest(b, h));
  }
  // An event more or less, a frame byte more (the lengths are bound).
  {
    segment_records other = r;
    other.events.push_back({.kind = segment_event::sent});
    CHECK(segment_records_digest(other, h) != want);
    other = r;
    other.events.pop_back();
    CHECK(segment_records_digest(other, h) != want);
    other = r;
    other.frames.push_back(std::byte{0});
    CHECK(segment_records_digest(other, h) != want);
  }
  CHECK(segment_records_digest(segment_records{}, h) != want);
}

TEST_CASE("inconsistent record offsets and lengths are named, and a verifier refuses them though committed to",
          "[segment][records]") {
  const segment_records r = sample_records();
  REQUIRE(segment_records_inconsistency(r).empty());
  CHECK(segment_records_inconsistency(segment_records{}).empty());
  auto refused = [](const segment_records& bad, const std::string& names) {
    const std::string why = segment_records_inconsistency(bad);
    INFO(why);
    CHECK(why.find(names) != std::string::npos);
  };
  segment_records bad = r;
  bad.events[2].offset += 1;  // a gap before the neighbour list
  refused(bad, "event 2 (neighbours) starts at byte 6 where 5");
  bad = r;
  bad.events[2].offset = 0;  // overlapping the first frame
  refused(bad, "event 2 (neighbours) starts at byte 0 where 5");
  bad = r;
  bad.events[7].offset = 3;  // an empty frame says an offset
  refused(bad, "event 7 (received) starts at byte 3 where 0");
  bad = r;
  bad.events[8].bytes = 3;  // past the frames
  refused(bad, "event 8 (received) has 3 bytes at 29, past the records' 31 frame bytes");
  bad = r;
  bad.events[0].bytes = 4;  // one byte left between two frames
  refused(bad, "event 2 (neighbours) starts at byte 5 where 4");
  bad = r;
  bad.frames.push_back(std::byte{0});  // a trailing byte no event carries
  refused(bad, "the events carry 31 of the records' 32 frame bytes");
  bad = r;
  bad.events[3].bytes = 4;  // a mix carries no bytes
  refused(bad, "event 3 (mixed) carries no bytes but says 4 at offset 0");
  bad = r;
  bad.events[5].offset = 1;
  refused(bad, "event 5 (sent) carries no bytes but says 0 at offset 1");
  bad = r;
  bad.events[1].unused2_ = 1;
  refused(bad, "event 1 (stepped) has nonzero padding");
  bad = r;
  bad.events[4].kind = static_cast<segment_event::kind_t>(9);
  refused(bad, "event 4 (kind 9) is of no known kind");

  // Committed to by the prover (the digest matches): a failed check naming
  // the event, before any replay (the checker has no replay factory: it
  // would throw had it got that far).
  segment_check job;
  job.reply.start_step = 0;
  tree_digest th;
  job.commit.start = segment_state_digest(job.reply.start.trainer, job.reply.start.gossip, th);
  job.commit.start_step = 0;
  job.commit.end_step = 1;
  blake3_builder h;
  job.reply.records = r;
  job.reply.records.events[2].offset += 1;
  job.commit.records = segment_records_digest(job.reply.records, h);
  segment_checker checker(nullptr, 1);
  for (bool relayed : {false, true}) {
    job.relayed = relayed;
    const segment_verdict v = checker.run(job);
    CHECK(v.kind == segment_verdict::failed);
    CHECK(v.why == "it committed to inconsistent records: event 2 (neighbours) starts at byte 6 where 5 (the bytes "
                   "of the events before it)");
  }
  // Not what it committed to: unbound (a mismatch when relayed), as before.
  job.commit.records = segment_records_digest(r, h);
  job.relayed = true;
  CHECK(checker.run(job).kind == segment_verdict::mismatch);
  job.relayed = false;
  CHECK(checker.run(job).kind == segment_verdict::failed);
  CHECK(checker.run(job).why == "the records it sent are not the ones it committed to");
}
