#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "reframe.hpp"
#include "protocols/state_transfer_messages.hpp"
#include "tensor/rng.hpp"

using namespace murmur;
using murmur::testing::payload_of;
using murmur::testing::reframe;

namespace {

constexpr size_t max_frame = max_state_chunk_frame_bytes;

state_chunk sample_chunk(uint32_t n = 5) {
  state_chunk c;
  c.sender = 2;
  c.request_id = 77;
  c.step = 12345;
  c.dim = 1000;
  c.offset = 100;
  for (uint32_t i = 0; i < n; ++i) c.values.push_back(0.25f * static_cast<float>(i) - 1.f);
  return c;
}


template <class T>
void put_at(std::vector<std::byte>& p, size_t at, T v) {
  std::memcpy(p.data() + at, &v, sizeof v);
}

// Offsets in the chunk payload (after the 1-byte endianness tag).
constexpr size_t dim_at = 1 + 4 + 8 + 8, offset_at = dim_at + 4, count_at = offset_at + 4;

}  // namespace

TEST_CASE("state requests and chunks round-trip through frames", "[protocols][state]") {
  std::vector<std::byte> frame;
  SECTION("request") {
    for (state_request r : {state_request{1, 2, 0, 1}, state_request{UINT32_MAX, UINT64_MAX, 7, max_state_chunk_floats},
                            state_request{3, 4, UINT32_MAX, 1}}) {
      encode_state_request(r, frame);
      CHECK(frame.size() == frame_header_bytes + 1 + 4 + 8 + 4 + 4);
      state_request out;
      REQUIRE(decode_state_request(frame, max_frame, out) == frame_error::none);
      CHECK(out == r);
    }
  }
  SECTION("chunks: empty, small, full-size") {
    state_chunk empty = sample_chunk(0);
    state_chunk full = sample_chunk(0);
    full.dim = max_state_chunk_floats + 10;
    full.offset = 10;
    Rng rng(3);
    for (uint32_t i = 0; i < max_state_chunk_floats; ++i) full.values.push_back(static_cast<float>(rng.normal()));
    full.values[5] = std::numeric_limits<float>::max();
    full.values[6] = -std::numeric_limits<float>::denorm_min();
    full.values[7] = -0.f;
    const state_chunk small = sample_chunk(5);
    const state_chunk* chunks[] = {&empty, &small, &full};
    for (const state_chunk* c : chunks) {
      encode_state_chunk(*c, frame);
      CHECK(frame.size() == frame_header_bytes + 1 + 4 + 8 + 8 + 4 + 4 + 4 + 4 * c->values.size());
      state_chunk out = sample_chunk(9);  // decoding reuses, never mixes in, old contents
      REQUIRE(decode_state_chunk(frame, max_frame, out) == frame_error::none);
      CHECK(out == *c);
      if (!c->values.empty())  // bit for bit (-0.f too)
        CHECK(std::memcmp(out.values.data(), c->values.data(), 4 * c->values.size()) == 0);
    }
    encode_state_chunk(full, frame);
    CHECK(frame.size() == max_state_chunk_frame_bytes);
    state_chunk out;
    CHECK(decode_state_chunk(frame, max_state_chunk_frame_bytes - 1, out) == frame_error::too_large);
  }
  SECTION("a chunk ending exactly at dim") {
    auto c = sample_chunk(5);
    c.dim = 105;
    encode_state_chunk(c, frame);
    state_chunk out;
    REQUIRE(decode_state_chunk(frame, max_frame, out) == frame_error::none);
    CHECK(out == c);
  }
}

TEST_CASE("state frames of the other type or damaged frames are refused", "[protocols][state]") {
  std::vector<std::byte> req, chunk;
  encode_state_request({1, 2, 3, 4}, req);
  encode_state_chunk(sample_chunk(), chunk);
  state_request r;
  state_chunk c;
  CHECK(decode_state_request(chunk, max_frame, r) == frame_error::unknown_type);
  CHECK(decode_state_chunk(req, max_frame, c) == frame_error::unknown_type);
  std::vector<std::byte> other;
  encode_frame(message_type::gossip_update, payload_of(chunk), other);
  CHECK(decode_state_chunk(other, max_frame, c) == frame_error::unknown_type);
  auto f = chunk;
  f.back() ^= std::byte{0x40};
  CHECK(decode_state_chunk(f, max_frame, c) == frame_error::bad_checksum);
  f = chunk;
  f.push_back(std::byte{0});
  CHECK(decode_state_chunk(f, max_frame, c) == frame_error::length_mismatch);
  CHECK(decode_state_chunk(chunk, chunk.size() - 1, c) == frame_error::too_large);
  CHECK(decode_state_request(std::span(req).first(15), max_frame, r) == frame_error::too_short);
}

TEST_CASE("invalid state fields are rejected as undecodable", "[protocols][state]") {
  std::vector<std::byte> frame;
  state_request r;
  state_chunk c;
  SECTION("requests: empty, too long, past 2^32, wrong size or tag") {
    for (state_request bad : {state_request{1, 2, 0, 0}, state_request{1, 2, 0, max_state_chunk_floats + 1},
                              state_request{1, 2, UINT32_MAX, 2}, state_request{1, 2, UINT32_MAX - 5, 100}}) {
      encode_state_request(bad, frame);
      CHECK(decode_state_request(frame, max_frame, r) == frame_error::undecodable);
    }
    encode_state_request({1, 2, 3, 4}, frame);
    auto p = payload_of(frame);
    for (size_t n = 0; n < p.size(); ++n)
      CHECK(decode_state_request(reframe(message_type::state_request, {p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n)}),
                                 max_frame, r) == frame_error::undecodable);
    auto q = p;
    q.push_back(std::byte{0});
    CHECK(decode_state_request(reframe(message_type::state_request, q), max_frame, r) == frame_error::undecodable);
    q = p;
    q[0] = std::byte{0};
    CHECK(decode_state_request(reframe(message_type::state_request, q), max_frame, r) == frame_error::undecodable);
  }
  SECTION("chunks: past dim, over the size limit, non-finite values") {
    auto bad = sample_chunk(5);
    bad.dim = 104;
    encode_state_chunk(bad, frame);
    CHECK(decode_state_chunk(frame, max_frame, c) == frame_error::undecodable);
    bad = sample_chunk(0);
    bad.offset = bad.dim + 1;
    encode_state_chunk(bad, frame);
    CHECK(decode_state_chunk(frame, max_frame, c) == frame_error::undecodable);
    bad = sample_chunk(3);
    bad.offset = UINT32_MAX - 1;
    bad.dim = UINT32_MAX;
    encode_state_chunk(bad, frame);
    CHECK(decode_state_chunk(frame, max_frame, c) == frame_error::undecodable);  // offset + count wraps in 32 bits
    bad = sample_chunk(0);
    bad.dim = max_state_chunk_floats + 1;
    bad.offset = 0;
    bad.values.assign(max_state_chunk_floats + 1, 1.f);
    encode_state_chunk(bad, frame);
    CHECK(decode_state_chunk(frame, max_frame + 4, c) == frame_error::undecodable);
    for (float v : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
      bad = sample_chunk(5);
      bad.values[4] = v;
      encode_state_chunk(bad, frame);
      CHECK(decode_state_chunk(frame, max_frame, c) == frame_error::undecodable);
    }
  }
  SECTION("chunks: counts that lie, truncation, trailing bytes, tag") {
    encode_state_chunk(sample_chunk(5), frame);
    const auto p = payload_of(frame);
    for (uint32_t lie : {0u, 4u, 6u, 1000u, max_state_chunk_floats, 0x40000000u, 0xFFFFFFFFu}) {
      auto q = p;
      put_at(q, count_at, lie);
      CHECK(decode_state_chunk(reframe(message_type::state_chunk, q), max_frame, c) == frame_error::undecodable);
    }
    for (size_t n = 0; n < p.size(); ++n)
      CHECK(decode_state_chunk(reframe(message_type::state_chunk, {p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n)}),
                               max_frame, c) == frame_error::undecodable);
    auto q = p;
    q.push_back(std::byte{0});
    CHECK(decode_state_chunk(reframe(message_type::state_chunk, q), max_frame, c) == frame_error::undecodable);
    for (uint8_t tag : {0, 2, 255}) {
      q = p;
      q[0] = std::byte{tag};
      CHECK(decode_state_chunk(reframe(message_type::state_chunk, q), max_frame, c) == frame_error::undecodable);
    }
    q = p;
    put_at(q, dim_at, uint32_t{104});
    CHECK(decode_state_chunk(reframe(message_type::state_chunk, q), max_frame, c) == frame_error::undecodable);
    q = p;
    put_at(q, offset_at, uint32_t{996});
    CHECK(decode_state_chunk(reframe(message_type::state_chunk, q), max_frame, c) == frame_error::undecodable);
    put_at(q, offset_at, uint32_t{995});
    CHECK(decode_state_chunk(reframe(message_type::state_chunk, q), max_frame, c) == frame_error::none);
  }
}

TEST_CASE("random corruption of state frames never crashes or accepts a bad field", "[protocols][state]") {
  std::vector<std::byte> req, chunk;
  encode_state_request({4, 5, 60, 70}, req);
  encode_state_chunk(sample_chunk(8), chunk);
  const auto preq = payload_of(req), pchunk = payload_of(chunk);
  Rng rng(29);
  int accepted[2] = {}, rejected[2] = {};
  state_request r;
  state_chunk c;
  for (int trial = 0; trial < 20000; ++trial) {
    const bool is_chunk = trial % 2 == 1;
    auto p = is_chunk ? pchunk : preq;
    const int flips = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < flips; ++k) p[rng.below(p.size())] = static_cast<std::byte>(rng.below(256));
    if (rng.below(4) == 0) p.resize(rng.below(p.size() + 8));
    frame_error e{};
    if (is_chunk) {
      e = decode_state_chunk(reframe(message_type::state_chunk, p), max_frame, c);
      if (e == frame_error::none) {
        REQUIRE(c.values.size() <= max_state_chunk_floats);
        REQUIRE(uint64_t{c.offset} + c.values.size() <= c.dim);
        REQUIRE(4 * c.values.size() + 1 + 4 + 8 + 8 + 4 + 4 + 4 == p.size());
        for (float v : c.values) REQUIRE(std::isfinite(v));
      }
    } else {
      e = decode_state_request(reframe(message_type::state_request, p), max_frame, r);
      if (e == frame_error::none) {
        REQUIRE(r.length >= 1);
        REQUIRE(r.length <= max_state_chunk_floats);
        REQUIRE(uint64_t{r.offset} + r.length <= (uint64_t{1} << 32));
      }
    }
    REQUIRE((e == frame_error::none || e == frame_error::undecodable));
    (e == frame_error::none ? accepted : rejected)[is_chunk]++;
  }
  for (int i = 0; i < 2; ++i) {
    INFO("message " << i);
    CHECK(accepted[i] > 0);
    CHECK(rejected[i] > 0);
  }
}

TEST_CASE("split_state_requests covers 0..dim once in balanced round-robin ranges", "[protocols][state]") {
  struct plan_case {
    uint32_t dim, donors, max_chunk;
  };
  std::vector<plan_case> cases = {{1, 1, 1},       {1, 4, 100},       {3, 4, 100},          {10, 3, 4},
                                  {100, 1, 100},   {101, 1, 100},     {1000, 3, 7},         {1000, 7, 1000},
                                  {1000, 1000, 1}, {1000, 1001, 5},   {5000, 4, 0},         {3'000'000, 5, 0},
                                  {3'000'000, 5, 4'000'000},          {UINT32_MAX, 3, 0},   {999'999, 8, 65536},
                                  {262'145, 1, 0}, {17, 1, 1},        {2'000'003, 2, 1000}, {7, 2, 3}};
  Rng rng(41);
  for (int i = 0; i < 200; ++i)
    cases.push_back({static_cast<uint32_t>(1 + rng.below(200000)), static_cast<uint32_t>(1 + rng.below(12)),
                     static_cast<uint32_t>(rng.below(50000))});
  for (const auto& pc : cases) {
    INFO("dim " << pc.dim << " donors " << pc.donors << " max_chunk " << pc.max_chunk);
    const auto plan = split_state_requests(9, 1000, pc.dim, pc.donors, pc.max_chunk);
    const uint64_t chunk = pc.max_chunk == 0 ? max_state_chunk_floats : std::min(pc.max_chunk, max_state_chunk_floats);
    const uint64_t donors = std::max<uint32_t>(pc.donors, 1);
    REQUIRE(!plan.empty());
    // Exact cover, contiguous, increasing: no gap, no overlap.
    uint64_t next = 0;
    std::vector<uint64_t> load(std::min<uint64_t>(donors, plan.size()));
    uint64_t shortest = UINT64_MAX, longest = 0;
    for (size_t i = 0; i < plan.size(); ++i) {
      const auto& r = plan[i];
      REQUIRE(r.requester == 9);
      REQUIRE(r.request_id == 1000 + i);
      REQUIRE(r.offset == next);
      REQUIRE(r.length >= 1);
      REQUIRE(r.length <= chunk);
      next += r.length;
      load[i % donors] += r.length;
      shortest = std::min<uint64_t>(shortest, r.length);
      longest = std::max<uint64_t>(longest, r.length);
    }
    REQUIRE(next == pc.dim);
    CHECK(longest - shortest <= 1);
    // Fewest ranges that fit: one fewer round of donors would need a longer range.
    const uint64_t min_ranges = (uint64_t{pc.dim} + chunk - 1) / chunk;
    CHECK(plan.size() == std::min<uint64_t>((min_ranges + donors - 1) / donors * donors, pc.dim));
    // Every donor gets work when there is enough, and loads are within one coordinate.
    CHECK(load.size() == std::min<uint64_t>(donors, pc.dim));
    const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
    CHECK(*hi - *lo <= 1);
    CHECK(*hi - *lo <= chunk);
    // Every planned request is one a donor accepts.
    if (plan.size() < 100) {
      std::vector<std::byte> frame;
      state_request out;
      for (const auto& r : plan) {
        encode_state_request(r, frame);
        REQUIRE(decode_state_request(frame, max_frame, out) == frame_error::none);
        REQUIRE(out == r);
      }
    }
  }
  CHECK(split_state_requests(1, 2, 0, 3, 10).empty());
  const auto one = split_state_requests(1, 2, 10, 0, 100);  // donors 0 means 1
  REQUIRE(one.size() == 1);
  CHECK(one[0].length == 10);
}
