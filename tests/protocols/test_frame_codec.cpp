#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "protocols/gossip_messages.hpp"
#include "tensor/rng.hpp"

using namespace murmur;

namespace {

std::vector<std::byte> bytes_of(const char* s) {
  std::vector<std::byte> v(std::strlen(s));
  std::memcpy(v.data(), s, v.size());
  return v;
}

gossip_update sample_sparse() {
  gossip_update m;
  m.sender = 3;
  m.round = 7;
  m.step = 42;
  m.dim = 1000;
  m.kind = update_kind::sparse_set;
  m.indices = {0, 1, 5, 127, 128, 999};
  m.values = {0.5f, -1.f, 3.25f, 1e-7f, -2e5f, 0.f};
  return m;
}

// Rewrites the payload of a valid frame and fixes its header, so only the
// payload decoder sees the damage.
std::vector<std::byte> reframe(std::vector<std::byte> payload) {
  std::vector<std::byte> f;
  encode_frame(message_type::gossip_update, payload, f);
  return f;
}

}  // namespace

TEST_CASE("crc32c matches the standard check value, hardware and table agree", "[protocols]") {
  auto v = bytes_of("123456789");
  CHECK(crc32c(v.data(), v.size()) == 0xE3069283u);
  CHECK(crc32c_portable(v.data(), v.size()) == 0xE3069283u);
  Rng rng(5);
  for (size_t n : {0, 1, 7, 8, 9, 63, 64, 1000, 4099}) {
    std::vector<unsigned char> buf(n);
    for (auto& b : buf) b = static_cast<unsigned char>(rng.below(256));
    CHECK(crc32c(buf.data(), n) == crc32c_portable(buf.data(), n));
  }
}

TEST_CASE("gossip updates round-trip through frames", "[protocols]") {
  gossip_update out;
  std::vector<std::byte> frame;
  SECTION("sparse set") {
    auto m = sample_sparse();
    encode_gossip(m, frame);
    REQUIRE(decode_gossip(frame, 1 << 20, out) == frame_error::none);
    CHECK(out == m);
  }
  SECTION("sparse add") {
    auto m = sample_sparse();
    m.kind = update_kind::sparse_add;
    encode_gossip(m, frame);
    REQUIRE(decode_gossip(frame, 1 << 20, out) == frame_error::none);
    CHECK(out == m);
  }
  SECTION("dense") {
    gossip_update m;
    m.sender = 1;
    m.round = 1;
    m.dim = 5;
    m.kind = update_kind::dense_set;
    m.values = {1, 2, 3, 4, 5};
    encode_gossip(m, frame);
    REQUIRE(decode_gossip(frame, 1 << 20, out) == frame_error::none);
    CHECK(out == m);
    CHECK(frame.size() == frame_header_bytes + 1 + 4 + 8 + 8 + 4 + 1 + 4 + 4 + 20);  // 1: Cereal endianness tag
  }
  SECTION("empty sparse update") {
    gossip_update m;
    m.dim = 10;
    encode_gossip(m, frame);
    REQUIRE(decode_gossip(frame, 1 << 20, out) == frame_error::none);
    CHECK(out == m);
  }
}

TEST_CASE("sparse indices cost about a byte each when close together", "[protocols]") {
  gossip_update m;
  m.dim = 100000;
  for (uint32_t i = 0; i < 1000; ++i) {
    m.indices.push_back(i * 50);
    m.values.push_back(1.f);
  }
  std::vector<std::byte> frame;
  encode_gossip(m, frame);
  CHECK(frame.size() < frame_header_bytes + 64 + 1000 * (4 + 1));
}

TEST_CASE("malformed frames are dropped with the right reason", "[protocols]") {
  std::vector<std::byte> good;
  encode_gossip(sample_sparse(), good);
  gossip_update out;
  auto reason = [&](std::vector<std::byte> f, size_t max = 1 << 20) { return decode_gossip(f, max, out); };

  CHECK(reason({}) == frame_error::too_short);
  CHECK(reason(std::vector<std::byte>(good.begin(), good.begin() + 10)) == frame_error::too_short);
  auto f = good;
  f[0] = std::byte{0};
  CHECK(reason(f) == frame_error::bad_magic);
  f = good;
  f[4] = std::byte{2};
  CHECK(reason(f) == frame_error::bad_version);
  f = good;
  f[6] = std::byte{99};
  CHECK(reason(f) == frame_error::unknown_type);
  CHECK(reason(good, good.size() - 1) == frame_error::too_large);
  f = good;
  f.pop_back();
  CHECK(reason(f) == frame_error::length_mismatch);
  f = good;
  f.back() ^= std::byte{1};
  CHECK(reason(f) == frame_error::bad_checksum);
}

TEST_CASE("payloads that lie are rejected before anything is allocated", "[protocols]") {
  gossip_update out;
  std::vector<std::byte> good;
  encode_gossip(sample_sparse(), good);
  std::vector<std::byte> payload(good.begin() + frame_header_bytes, good.end());
  // Field offsets in the portable binary payload (after its 1-byte endianness tag).
  const size_t dim_at = 1 + 4 + 8 + 8, kind_at = dim_at + 4, count_at = kind_at + 1;
  auto with = [&](size_t at, uint32_t v) {
    auto p = payload;
    std::memcpy(p.data() + at, &v, 4);
    return reframe(p);
  };
  CHECK(decode_gossip(reframe({}), 1 << 20, out) == frame_error::undecodable);
  CHECK(decode_gossip(with(count_at, 0xFFFFFFFFu), 1 << 20, out) == frame_error::undecodable);
  CHECK(decode_gossip(with(count_at, 7), 1 << 20, out) == frame_error::undecodable);
  CHECK(decode_gossip(with(dim_at, 999), 1 << 20, out) == frame_error::undecodable);  // index 999 >= dim
  auto p = payload;
  p[kind_at] = std::byte{9};
  CHECK(decode_gossip(reframe(p), 1 << 20, out) == frame_error::undecodable);
  p = payload;
  p.resize(p.size() - 3);
  CHECK(decode_gossip(reframe(p), 1 << 20, out) == frame_error::undecodable);

  SECTION("non-finite values") {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      auto m = sample_sparse();
      m.values[2] = bad;
      std::vector<std::byte> f;
      encode_gossip(m, f);
      CHECK(decode_gossip(f, 1 << 20, out) == frame_error::undecodable);
    }
  }
}

TEST_CASE("random corruption never crashes the decoder", "[protocols]") {
  std::vector<std::byte> good;
  encode_gossip(sample_sparse(), good);
  std::vector<std::byte> payload(good.begin() + frame_header_bytes, good.end());
  Rng rng(11);
  gossip_update out;
  int accepted = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    auto p = payload;
    int flips = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < flips; ++k) p[rng.below(p.size())] = static_cast<std::byte>(rng.below(256));
    if (rng.below(4) == 0) p.resize(rng.below(p.size() + 8));
    auto f = reframe(p);
    if (decode_gossip(f, 1 << 20, out) == frame_error::none) {
      ++accepted;
      for (size_t i = 1; i < out.indices.size(); ++i) REQUIRE(out.indices[i] > out.indices[i - 1]);
      for (auto idx : out.indices) REQUIRE(idx < out.dim);
      for (float v : out.values) REQUIRE(std::isfinite(v));
    }
  }
  // Most corruptions hit a value and stay decodable; the others must be rejected.
  CHECK(accepted > 0);
  CHECK(accepted < 20000);
}

TEST_CASE("grid updates carry small integers and decode to exact grid values", "[protocols]") {
  gossip_update m;
  m.sender = 2;
  m.round = 3;
  m.dim = 100;
  m.kind = update_kind::grid_set;
  m.scale = 0.01f;
  m.indices = {1, 2, 50, 99};
  m.grid = {0, -1, 63, -100000};
  for (int32_t g : m.grid) m.values.push_back(static_cast<float>(g) * m.scale);
  std::vector<std::byte> frame;
  encode_gossip(m, frame);
  gossip_update out;
  REQUIRE(decode_gossip(frame, 1 << 20, out) == frame_error::none);
  CHECK(out == m);
  // 4 indices (1 byte each) + values 1+1+1+3 bytes, not 16 bytes of floats.
  CHECK(frame.size() == frame_header_bytes + 1 + 4 + 8 + 8 + 4 + 1 + 4 + 4 + 4 + 4 + 4 + 6);
  // A grid frame whose scale is not a positive finite number is refused.
  auto bad = m;
  bad.scale = -1.f;
  encode_gossip(bad, frame);
  CHECK(decode_gossip(frame, 1 << 20, out) == frame_error::undecodable);
}
