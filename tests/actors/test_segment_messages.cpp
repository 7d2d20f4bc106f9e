// The segment verification frames (actors/segment_messages.hpp): round
// trips, and truncated or mislabelled frames refused without throwing.
#include <catch2/catch.hpp>

#include "actors/segment_messages.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/verify_messages.hpp"

using namespace murmur;

TEST_CASE("segment frames round-trip and are verify messages; damaged ones are undecodable", "[segment]") {
  segment_commit_msg c{3, 16, 32, {}, {}, {}};
  c.start[0] = 1, c.end[5] = 2, c.records[31] = 3;
  c.fingerprint = {0x0123456789abcdefULL, 2, UINT64_MAX};
  c.records_bytes = 4096, c.incarnation = 1765000000123ULL;  // a LAN incarnation: wall-clock ms at start
  std::vector<std::byte> f;
  encode_segment_commit(c, f);
  CHECK(is_verify_message(*peek_type(f)));
  segment_commit_msg c2;
  REQUIRE(decode_segment_commit(f, 1 << 20, c2) == frame_error::none);
  CHECK((c2.prover == 3 && c2.start_step == 16 && c2.end_step == 32 && c2.start == c.start && c2.end == c.end &&
         c2.records == c.records && c2.fingerprint == c.fingerprint && c2.records_bytes == 4096 &&
         c2.incarnation == c.incarnation));
  CHECK(to_string(c2.fingerprint) == "build 0123456789abcdef kernel 0000000000000002 config ffffffffffffffff");
  segment_request_msg rq2;
  CHECK(decode_segment_request(f, 1 << 20, rq2) != frame_error::none);  // another type

  encode_segment_request({1, 3, 16, 99}, f);
  REQUIRE(decode_segment_request(f, 1 << 20, rq2) == frame_error::none);
  CHECK((rq2.verifier == 1 && rq2.prover == 3 && rq2.start_step == 16 && rq2.nonce == 99));

  segment s;
  auto b = std::make_shared<segment_boundary>();
  b->trainer.step = 16;
  b->trainer.model_spec = "mlp";
  b->trainer.params = {1.f, 2.f, 3.f};
  b->trainer.extra = {4, 5};
  b->gossip.neighbours = {1, 2};
  b->gossip.nbr_hat = {{0.5f}, {0.25f}};
  b->gossip.rounds = 7;
  s.start = b;
  s.records.events.push_back({.kind = segment_event::received, .from = 1, .bytes = 2, .offset = 0, .step = 0});
  s.records.frames = {std::byte{9}, std::byte{8}};
  s.records.events.push_back({.kind = segment_event::stepped, .from = 0, .bytes = 0, .offset = 0, .step = 17});
  // A neighbour list: one peer, id 4 (u32), incarnation 6 (u64).
  s.records.events.push_back({.kind = segment_event::neighbours, .from = 1, .bytes = 12, .offset = 2, .step = 0});
  for (int i = 0; i < 12; ++i) s.records.frames.push_back(std::byte{static_cast<unsigned char>(i == 0 ? 4 : i == 4 ? 6 : 0)});
  s.step_digests.resize(1);
  encode_segment_reply(3, 99, s, f);
  segment_reply_msg r;
  REQUIRE(decode_segment_reply(f, 1 << 20, r) == frame_error::none);
  CHECK((r.prover == 3 && r.start_step == 16 && r.nonce == 99));
  CHECK(r.start.trainer == b->trainer);
  CHECK(r.start.gossip.nbr_hat == b->gossip.nbr_hat);
  CHECK(r.start.gossip.rounds == 7);
  CHECK(r.records.frames == s.records.frames);
  REQUIRE(r.records.events.size() == 3);
  CHECK(r.records.events[1].step == 17);
  CHECK(r.records.events[2].kind == segment_event::neighbours);
  blake3_builder h;
  const digest want = segment_records_digest(s.records, h);
  CHECK(segment_records_digest(r.records, h) == want);
  CHECK(r.step_digests.size() == 1);
  // The digest binds a neighbour list's bytes (an incarnation here).
  segment_records other = s.records;
  other.frames[2 + 4] = std::byte{7};
  CHECK(segment_records_digest(other, h) != want);
  {  // A neighbour list past the records' bytes is refused.
    segment bad = s;
    bad.records.events[2].bytes = 100;
    std::vector<std::byte> g;
    encode_segment_reply(3, 99, bad, g);
    CHECK(decode_segment_reply(g, 1 << 20, r) == frame_error::undecodable);
  }
  // Every truncation fails cleanly (the frame's length and CRC catch most;
  // a payload cut inside an array fails the reader).
  for (size_t n : {size_t{0}, size_t{10}, f.size() / 2, f.size() - 1}) {
    std::vector<std::byte> cut(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK(decode_segment_reply(cut, 1 << 20, r) != frame_error::none);
  }
}
