#include <catch2/catch.hpp>
#include <algorithm>
#include <cstring>
#include <set>
#include <string>

#include "reframe.hpp"
#include "protocols/membership_messages.hpp"
#include "tensor/rng.hpp"

using namespace murmur;
using murmur::testing::payload_of;
using murmur::testing::reframe;

namespace {

constexpr size_t max_frame = 1 << 20;
const std::string key_a = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";  // ZeroMQ's test vector
const std::string z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

peer_info sample_peer(uint32_t index = 3) {
  peer_info p;
  p.index = index;
  p.endpoint = "tcp://10.0.0." + std::to_string(index % 250 + 1) + ":5555";
  p.public_key = key_a;
  p.incarnation = 7 + index;
  p.status = peer_status::alive;
  return p;
}

membership_update sample_update(uint32_t n = 4) {
  membership_update m;
  m.sender = 1;
  m.sender_incarnation = 99;
  for (uint32_t i = 0; i < n; ++i) {
    auto p = sample_peer(i);
    p.status = static_cast<peer_status>(i % 4);
    if (i % 3 == 1) p.public_key.clear();
    m.peers.push_back(p);
  }
  return m;
}


std::vector<std::byte> append(std::vector<std::byte> v, std::initializer_list<uint8_t> extra) {
  for (auto b : extra) v.push_back(static_cast<std::byte>(b));
  return v;
}

void check_invariants(const peer_info& p) {
  REQUIRE(static_cast<uint8_t>(p.status) <= 3);
  REQUIRE(p.endpoint.size() <= max_endpoint_bytes);
  REQUIRE(valid_endpoint(p.endpoint));
  REQUIRE(valid_public_key(p.public_key));
  REQUIRE((p.public_key.empty() || p.public_key.size() == public_key_chars));
}

}  // namespace

TEST_CASE("endpoints must look like tcp://HOST:PORT", "[protocols][membership]") {
  for (const char* ok : {"tcp://10.0.0.1:5555", "tcp://[::1]:5555", "tcp://[fe80::1:2]:1", "tcp://host-a.lan:65535",
                         "tcp://[::ffff:10.0.0.1]:80", "tcp://a:9", "tcp://localhost:6000"})
    CHECK(valid_endpoint(ok));
  for (const char* bad :
       {"", "tcp://", "tcp://:5555", "tcp://host", "tcp://host:", "tcp://host:0", "tcp://host:65536",
        "tcp://host:05555", "tcp://host:12a", "tcp://host:123456", "udp://host:5555", "ipc://x:1", "TCP://host:1",
        "tcp://ho st:1", "tcp://*:5555", "tcp://::1:5555", "tcp://[]:5555", "tcp://[::1:5555", "tcp://::1]:5555",
        "tcp://[::1]x:5555", "tcp://[g::1]:5555", "tcp://host;other:1", "tcp://host:+1", "tcp://host:-1",
        "tcp://host_a:1"})
    CHECK_FALSE(valid_endpoint(bad));
  std::string longest = "tcp://" + std::string(max_endpoint_bytes - 6 - 5, 'h') + ":5555";
  CHECK(longest.size() == max_endpoint_bytes);
  CHECK(valid_endpoint(longest));
  CHECK_FALSE(valid_endpoint("tcp://h" + longest.substr(6)));
  CHECK_FALSE(valid_endpoint(std::string("tcp://a\0b:1", 11)));
}

TEST_CASE("public keys are 40 Z85 characters or empty", "[protocols][membership]") {
  CHECK(z85.size() == 85);
  CHECK(valid_public_key(""));
  CHECK(valid_public_key(key_a));
  CHECK(valid_public_key(z85.substr(0, 40)));
  CHECK(valid_public_key(z85.substr(45, 40)));
  CHECK_FALSE(valid_public_key(key_a.substr(1)));
  CHECK_FALSE(valid_public_key(key_a + "a"));
  for (char c : {' ', '"', '\'', ',', ';', '\\', '_', '`', '|', '~', '\0', '\x80'}) {
    auto k = key_a;
    k[17] = c;
    CHECK_FALSE(valid_public_key(k));
  }
}

TEST_CASE("membership messages round-trip through frames", "[protocols][membership]") {
  std::vector<std::byte> frame;
  SECTION("join, with and without a key, IPv6") {
    for (auto endpoint : {"tcp://[::1]:5555", "tcp://node-7.lan:1"}) {
      for (bool key : {true, false}) {
        membership_join m{sample_peer(9)};
        m.self.endpoint = endpoint;
        if (!key) m.self.public_key.clear();
        m.self.incarnation = UINT64_MAX;
        m.self.index = UINT32_MAX;
        encode_membership_join(m, frame);
        CHECK(frame.size() == frame_header_bytes + 1 + 16 + m.self.endpoint.size() + m.self.public_key.size());
        membership_join out;
        out.self.endpoint = "left over";
        REQUIRE(decode_membership_join(frame, max_frame, out) == frame_error::none);
        CHECK(out == m);
        CHECK(peek_type(frame) == message_type::membership_join);
      }
    }
  }
  SECTION("update: empty, small, and max-size with the longest fields") {
    membership_update empty;
    empty.sender = 5;
    membership_update full;
    full.sender = 2;
    full.sender_incarnation = 3;
    for (uint32_t i = 0; i < max_peers; ++i) {
      peer_info p = sample_peer(i);
      p.endpoint = "tcp://" + std::to_string(i) + std::string(max_endpoint_bytes - 12 - std::to_string(i).size(), 'x') +
                   ":65535";
      REQUIRE(p.endpoint.size() == max_endpoint_bytes);
      p.status = static_cast<peer_status>(i % 4);
      full.peers.push_back(p);
    }
    const auto small = sample_update(7);
    const membership_update* msgs[] = {&empty, &small, &full};
    for (const auto* msg : msgs) {
      encode_membership_update(*msg, frame);
      membership_update out = sample_update(2);  // decoding reuses, never mixes in, old contents
      REQUIRE(decode_membership_update(frame, max_membership_frame_bytes, out) == frame_error::none);
      CHECK(out == *msg);
      CHECK(peek_type(frame) == message_type::membership_update);
    }
    encode_membership_update(full, frame);
    CHECK(frame.size() == max_membership_frame_bytes);
    membership_update out;
    CHECK(decode_membership_update(frame, max_membership_frame_bytes - 1, out) == frame_error::too_large);
  }
  SECTION("heartbeat, heartbeat_ack, leave") {
    heartbeat h{4, 5, UINT64_MAX};
    encode_heartbeat(h, frame);
    CHECK(frame.size() == frame_header_bytes + 1 + 4 + 8 + 8);
    heartbeat h2;
    REQUIRE(decode_heartbeat(frame, max_frame, h2) == frame_error::none);
    CHECK(h2 == h);
    CHECK(peek_type(frame) == message_type::heartbeat);

    heartbeat_ack a{6, 7, 8};
    encode_heartbeat_ack(a, frame);
    heartbeat_ack a2;
    REQUIRE(decode_heartbeat_ack(frame, max_frame, a2) == frame_error::none);
    CHECK(a2 == a);
    CHECK(peek_type(frame) == message_type::heartbeat_ack);

    leave l{UINT32_MAX, 11};
    encode_leave(l, frame);
    CHECK(frame.size() == frame_header_bytes + 1 + 4 + 8);
    leave l2;
    REQUIRE(decode_leave(frame, max_frame, l2) == frame_error::none);
    CHECK(l2 == l);
    CHECK(peek_type(frame) == message_type::leave);
  }
}

TEST_CASE("a frame of another membership type is unknown_type to each decoder", "[protocols][membership]") {
  std::vector<std::vector<std::byte>> frames(5);
  encode_membership_join({sample_peer()}, frames[0]);
  encode_membership_update(sample_update(), frames[1]);
  encode_heartbeat({1, 2, 3}, frames[2]);
  encode_heartbeat_ack({1, 2, 3}, frames[3]);
  encode_leave({1, 2}, frames[4]);
  for (size_t i = 0; i < frames.size(); ++i) {
    INFO("frame " << i);
    membership_join j;
    membership_update u;
    heartbeat h;
    heartbeat_ack a;
    leave l;
    const frame_error e[5] = {decode_membership_join(frames[i], max_frame, j),
                              decode_membership_update(frames[i], max_frame, u),
                              decode_heartbeat(frames[i], max_frame, h), decode_heartbeat_ack(frames[i], max_frame, a),
                              decode_leave(frames[i], max_frame, l)};
    for (size_t k = 0; k < 5; ++k) CHECK(e[k] == (k == i ? frame_error::none : frame_error::unknown_type));
  }
}

TEST_CASE("frame-level damage gives the frame codec's reason", "[protocols][membership]") {
  std::vector<std::byte> good;
  encode_membership_update(sample_update(), good);
  membership_update out;
  auto f = good;
  f[0] = std::byte{0};
  CHECK(decode_membership_update(f, max_frame, out) == frame_error::bad_magic);
  CHECK_FALSE(peek_type(f).has_value());
  f = good;
  f[4] = std::byte{2};
  CHECK(decode_membership_update(f, max_frame, out) == frame_error::bad_version);
  CHECK_FALSE(peek_type(f).has_value());
  f = good;
  f[6] = std::byte{99};
  CHECK(decode_membership_update(f, max_frame, out) == frame_error::unknown_type);
  CHECK_FALSE(peek_type(f).has_value());
  f = good;
  f.back() ^= std::byte{1};
  CHECK(decode_membership_update(f, max_frame, out) == frame_error::bad_checksum);
  CHECK(peek_type(f) == message_type::membership_update);  // peek does not check the checksum
  f = good;
  f.pop_back();
  CHECK(decode_membership_update(f, max_frame, out) == frame_error::length_mismatch);
  CHECK(decode_membership_update(good, good.size() - 1, out) == frame_error::too_large);
  CHECK(decode_membership_update(std::span(good).first(10), max_frame, out) == frame_error::too_short);
  CHECK_FALSE(peek_type(std::span(good).first(15)).has_value());
  heartbeat h;
  CHECK(decode_heartbeat({}, max_frame, h) == frame_error::too_short);
}

TEST_CASE("invalid membership fields are rejected as undecodable", "[protocols][membership]") {
  std::vector<std::byte> frame;
  membership_join j;
  membership_update u;
  auto join_error = [&](const peer_info& p) {
    encode_membership_join({p}, frame);
    return decode_membership_join(frame, max_frame, j);
  };
  auto update_error = [&](const membership_update& m) {
    encode_membership_update(m, frame);
    return decode_membership_update(frame, max_frame, u);
  };

  SECTION("bad fields in a peer record, in a join and in an update") {
    std::vector<peer_info> bad;
    for (std::string e : {"", "tcp://host", "tcp://host:0", "udp://h:1", "tcp://[::1:5"}) {
      bad.push_back(sample_peer());
      bad.back().endpoint = e;
    }
    bad.push_back(sample_peer());
    bad.back().endpoint = "tcp://" + std::string(max_endpoint_bytes, 'a') + ":1";  // over the limit
    bad.push_back(sample_peer());
    bad.back().endpoint = "tcp://" + std::string(70000, 'a') + ":1";  // over the u16 length field: cut, rejected
    for (std::string k : {key_a.substr(0, 39), key_a + "x", std::string(40, ' '), std::string(300, 'a')}) {
      bad.push_back(sample_peer());
      bad.back().public_key = k;
    }
    bad.push_back(sample_peer());
    bad.back().status = static_cast<peer_status>(4);
    for (const auto& p : bad) {
      INFO("endpoint " << p.endpoint.substr(0, 40) << " key " << p.public_key.substr(0, 50));
      CHECK_FALSE(valid_peer_info(p));
      CHECK(join_error(p) == frame_error::undecodable);
      auto m = sample_update(3);
      m.peers.insert(m.peers.begin() + 1, p);
      m.peers[1].index = 77;
      CHECK(update_error(m) == frame_error::undecodable);
    }
  }

  SECTION("a join must announce an alive peer") {
    for (auto s : {peer_status::suspect, peer_status::dead, peer_status::left}) {
      auto p = sample_peer();
      p.status = s;
      CHECK(valid_peer_info(p));
      CHECK(join_error(p) == frame_error::undecodable);
    }
  }

  SECTION("too many or duplicate peers") {
    auto m = sample_update(static_cast<uint32_t>(max_peers) + 1);
    CHECK(update_error(m) == frame_error::undecodable);
    m.peers.pop_back();
    CHECK(update_error(m) == frame_error::none);
    m = sample_update(5);
    m.peers[4].index = m.peers[1].index;
    CHECK(update_error(m) == frame_error::undecodable);
  }

  SECTION("truncated, trailing bytes, wrong endianness tag") {
    std::vector<std::vector<std::byte>> goods(5);
    encode_membership_join({sample_peer()}, goods[0]);
    encode_membership_update(sample_update(), goods[1]);
    encode_heartbeat({1, 2, 3}, goods[2]);
    encode_heartbeat_ack({1, 2, 3}, goods[3]);
    encode_leave({1, 2}, goods[4]);
    const message_type types[5] = {message_type::membership_join, message_type::membership_update,
                                   message_type::heartbeat, message_type::heartbeat_ack, message_type::leave};
    auto decode = [&](size_t i, const std::vector<std::byte>& f) {
      heartbeat h;
      heartbeat_ack a;
      leave l;
      switch (i) {
        case 0: return decode_membership_join(f, max_frame, j);
        case 1: return decode_membership_update(f, max_frame, u);
        case 2: return decode_heartbeat(f, max_frame, h);
        case 3: return decode_heartbeat_ack(f, max_frame, a);
        default: return decode_leave(f, max_frame, l);
      }
    };
    for (size_t i = 0; i < 5; ++i) {
      INFO("message " << i);
      const auto p = payload_of(goods[i]);
      REQUIRE(decode(i, reframe(types[i], p)) == frame_error::none);
      CHECK(decode(i, reframe(types[i], append(p, {0}))) == frame_error::undecodable);
      CHECK(decode(i, reframe(types[i], {})) == frame_error::undecodable);
      for (size_t n = 0; n < p.size(); ++n)
        CHECK(decode(i, reframe(types[i], {p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n)})) ==
              frame_error::undecodable);
      for (uint8_t tag : {0, 2, 255}) {
        auto q = p;
        q[0] = std::byte{tag};
        CHECK(decode(i, reframe(types[i], q)) == frame_error::undecodable);
      }
    }
  }

  SECTION("counts and lengths that lie allocate nothing and are rejected") {
    encode_membership_update(sample_update(2), frame);
    auto p = payload_of(frame);
    const size_t count_at = 1 + 4 + 8;
    for (uint32_t lie : {3u, 1000u, 1024u, 1025u, 0xFFFFFFFFu}) {
      auto q = p;
      std::memcpy(q.data() + count_at, &lie, 4);
      CHECK(decode_membership_update(reframe(message_type::membership_update, q), max_frame, u) ==
            frame_error::undecodable);
    }
    // Endpoint and key lengths of the first record (after index, incarnation, status).
    const size_t ep_len_at = count_at + 4 + 4 + 8 + 1, key_len_at = ep_len_at + 2;
    for (uint16_t lie : {0, 1, 255, 256, 257, 0xFFFF}) {
      auto q = p;
      std::memcpy(q.data() + ep_len_at, &lie, 2);
      CHECK(decode_membership_update(reframe(message_type::membership_update, q), max_frame, u) ==
            frame_error::undecodable);
    }
    for (uint8_t lie : {0, 1, 39, 41, 255}) {
      auto q = p;
      q[key_len_at] = std::byte{lie};
      CHECK(decode_membership_update(reframe(message_type::membership_update, q), max_frame, u) ==
            frame_error::undecodable);
    }
  }
}

TEST_CASE("random corruption of membership frames never crashes or accepts a bad field", "[protocols][membership]") {
  Rng rng(23);
  std::vector<std::vector<std::byte>> goods(5);
  auto m = sample_update(6);
  m.peers[2].endpoint = "tcp://[::1]:5555";
  encode_membership_join({sample_peer()}, goods[0]);
  encode_membership_update(m, goods[1]);
  encode_heartbeat({1, 2, 3}, goods[2]);
  encode_heartbeat_ack({1, 2, 3}, goods[3]);
  encode_leave({1, 2}, goods[4]);
  const message_type types[5] = {message_type::membership_join, message_type::membership_update,
                                 message_type::heartbeat, message_type::heartbeat_ack, message_type::leave};
  int accepted[5] = {}, rejected[5] = {};
  membership_join j;
  membership_update u;
  heartbeat h;
  heartbeat_ack a;
  leave l;
  for (int trial = 0; trial < 20000; ++trial) {
    const size_t i = static_cast<size_t>(trial % 5);
    auto p = payload_of(goods[i]);
    const int flips = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < flips; ++k) p[rng.below(p.size())] = static_cast<std::byte>(rng.below(256));
    if (rng.below(4) == 0) p.resize(rng.below(p.size() + 8));
    // Sometimes under the wrong type: each decoder must refuse it before reading.
    const bool retyped = rng.below(16) == 0;
    const auto f = reframe(retyped ? types[(i + 1) % 5] : types[i], p);
    frame_error e{};
    switch (i) {
      case 0:
        e = decode_membership_join(f, max_frame, j);
        if (e == frame_error::none) {
          check_invariants(j.self);
          REQUIRE(j.self.status == peer_status::alive);
        }
        break;
      case 1:
        e = decode_membership_update(f, max_frame, u);
        if (e == frame_error::none) {
          REQUIRE(u.peers.size() <= max_peers);
          std::set<uint32_t> seen;
          for (const auto& q : u.peers) {
            check_invariants(q);
            REQUIRE(seen.insert(q.index).second);
          }
        }
        break;
      case 2: e = decode_heartbeat(f, max_frame, h); break;
      case 3: e = decode_heartbeat_ack(f, max_frame, a); break;
      default: e = decode_leave(f, max_frame, l); break;
    }
    if (retyped) REQUIRE(e == frame_error::unknown_type);
    else REQUIRE((e == frame_error::none || e == frame_error::undecodable));
    (e == frame_error::none ? accepted : rejected)[i]++;
  }
  for (int i = 0; i < 5; ++i) {
    INFO("message " << i);
    CHECK(accepted[i] > 0);
    CHECK(rejected[i] > 0);
  }
}

TEST_CASE("peek_type dispatches every known message type", "[protocols][membership]") {
  std::vector<std::byte> f;
  for (uint16_t t = 1; t <= static_cast<uint16_t>(message_type::segment_unavailable); ++t) {
    encode_frame(static_cast<message_type>(t), {}, f);
    REQUIRE(peek_type(f).has_value());
    CHECK(static_cast<uint16_t>(*peek_type(f)) == t);
  }
  for (uint16_t t : {0, 29, 0xFFFF}) {
    encode_frame(message_type::heartbeat, {}, f);
    f[6] = static_cast<std::byte>(t & 0xff);
    f[7] = static_cast<std::byte>(t >> 8);
    CHECK_FALSE(peek_type(f).has_value());
  }
}
