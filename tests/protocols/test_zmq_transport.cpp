#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <zmq.hpp>

#include "protocols/gossip_messages.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/zmq_transport.hpp"

using namespace murmur;
namespace fs = std::filesystem;

namespace {

std::vector<std::byte> frame_of(uint32_t sender, uint64_t round) {
  gossip_update m;
  m.sender = sender;
  m.round = round;
  m.dim = 4;
  m.indices = {1};
  m.values = {0.5f};
  std::vector<std::byte> f;
  encode_gossip(m, f);
  return f;
}

struct received {
  std::string sender;
  std::vector<std::byte> frame;
};

// Polls `t` until `want` frames arrived or `ms` passed.
std::vector<received> pump(zmq_transport& t, size_t want, int ms) {
  std::vector<received> got;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (got.size() < want && std::chrono::steady_clock::now() < until)
    t.poll(20, [&](const std::string& s, std::span<const std::byte> f) { got.push_back({s, {f.begin(), f.end()}}); });
  return got;
}

// Sends `f` from a to peer 1 until b has received something (the first
// frames may wait out the CurveZMQ handshake); what b received.
std::vector<received> send_until_received(zmq_transport& a, zmq_transport& b, const std::vector<std::byte>& f) {
  std::vector<received> got;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    a.send(1, f);
    a.poll(0, [](auto&, auto) {});
    got = pump(b, 1, 50);
  }
  return got;
}

zmq_transport_options opts(const curve_keys& k, std::vector<std::string> allow = {}) {
  zmq_transport_options o;
  o.keys = k;
  o.authorized = std::move(allow);
  o.max_frame_bytes = 4096;
  o.handshake_ms = 1000;
  return o;
}

}  // namespace

TEST_CASE("key files round-trip and bad key files are named", "[zmq]") {
  auto dir = fs::path(MURMUR_BINARY_DIR) / "test-runs" / "keys";
  fs::remove_all(dir);
  auto k = generate_curve_keys();
  CHECK(is_z85_key(k.public_key));
  write_curve_keys(dir.string(), k);
  auto back = read_curve_keys(dir.string());
  CHECK(back.public_key == k.public_key);
  CHECK(back.secret_key == k.secret_key);
  CHECK((fs::status(dir / "peer.key").permissions() & fs::perms::others_read) == fs::perms::none);
  // A public key that does not belong to the secret key is refused.
  std::ofstream(dir / "peer.pub") << generate_curve_keys().public_key << "\n";
  CHECK_THROWS_WITH(read_curve_keys(dir.string()), Catch::Contains("does not belong"));

  auto list = dir / "authorized_peers";
  std::ofstream(list) << "# peers of the lab\n\n" << k.public_key << "  alice\n";
  CHECK(read_authorized_peers(list.string()) == std::vector<std::string>{k.public_key});
  std::ofstream(list) << k.public_key << "\nnot-a-key\n";
  CHECK_THROWS_WITH(read_authorized_peers(list.string()), Catch::Contains("authorized_peers:2") && Catch::Contains("not-a-key"));
}

TEST_CASE("an authorized peer's frames arrive, tagged with its public key", "[zmq]") {
  auto ka = generate_curve_keys(), kb = generate_curve_keys();
  zmq_transport b(opts(kb, {ka.public_key}));
  zmq_transport a(opts(ka));
  a.connect(1, b.endpoint(), kb.public_key);
  auto f = frame_of(0, 1);
  auto got = send_until_received(a, b, f);
  REQUIRE(!got.empty());
  CHECK(got[0].sender == ka.public_key);
  CHECK(got[0].frame == f);
  CHECK(b.counters().handshakes_refused == 0);
}

TEST_CASE("a stranger's key gets nothing through and is counted", "[zmq]") {
  auto kb = generate_curve_keys(), kx = generate_curve_keys();
  zmq_transport b(opts(kb, {generate_curve_keys().public_key}));
  zmq_transport x(opts(kx));
  x.connect(1, b.endpoint(), kb.public_key);
  auto f = frame_of(7, 1);
  for (int i = 0; i < 20; ++i) {
    x.send(1, f);
    CHECK(pump(b, 1, 25).empty());
  }
  CHECK(b.counters().frames_received == 0);
  CHECK(b.counters().handshakes_refused >= 1);
}

TEST_CASE("plain TCP and null-security ZeroMQ clients get nothing through", "[zmq]") {
  auto kb = generate_curve_keys();
  zmq_transport b(opts(kb));
  zmq::context_t ctx;
  zmq::socket_t plain(ctx, zmq::socket_type::dealer);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(b.endpoint());
  auto f = frame_of(1, 1);
  for (int i = 0; i < 10; ++i) {
    plain.send(zmq::const_buffer(f.data(), f.size()), zmq::send_flags::dontwait);
    CHECK(pump(b, 1, 30).empty());
  }
  CHECK(b.counters().frames_received == 0);
}

TEST_CASE("frames over the size limit are cut off and the sender can still talk afterwards", "[zmq]") {
  auto ka = generate_curve_keys(), kb = generate_curve_keys();
  zmq_transport b(opts(kb, {ka.public_key}));
  zmq_transport a(opts(ka));
  a.connect(1, b.endpoint(), kb.public_key);
  auto small = frame_of(0, 1);
  auto got = send_until_received(a, b, small);
  REQUIRE(got.size() == 1);
  std::vector<std::byte> huge(8192, std::byte{1});
  a.send(1, huge);
  CHECK(pump(b, 1, 300).empty());
  // The connection was dropped by the receiver; the dealer reconnects by itself.
  got.clear();
  for (int i = 0; i < 200 && got.empty(); ++i) {
    a.send(1, small);
    got = pump(b, 1, 50);
  }
  REQUIRE(!got.empty());
  for (auto& r : got) CHECK(r.frame.size() == small.size());
}

TEST_CASE("a frame over part_bytes leaves in parts and arrives whole, byte for byte", "[zmq]") {
  auto ka = generate_curve_keys(), kb = generate_curve_keys();
  auto ob = opts(kb, {ka.public_key});
  ob.max_frame_bytes = 8u << 20;
  zmq_transport b(ob);
  zmq_transport a(opts(ka));
  a.connect(1, b.endpoint(), kb.public_key);
  REQUIRE(!send_until_received(a, b, frame_of(0, 1)).empty());  // connected
  std::vector<std::byte> payload(2 * zmq_transport::part_bytes + 12345);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>((i * 7919) >> 3);
  auto big = std::make_shared<std::vector<std::byte>>();
  encode_frame(message_type::state_chunk, payload, *big);
  REQUIRE(a.send(1, std::shared_ptr<const std::vector<std::byte>>(big)));
  std::vector<received> got;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    a.poll(0, [](auto&, auto) {});
    got = pump(b, 1, 50);
  }
  REQUIRE(got.size() == 1);
  CHECK(got[0].sender == ka.public_key);
  CHECK(got[0].frame == *big);
  CHECK(b.counters().malformed_messages == 0);
}

TEST_CASE("a frame's parts are joined, and parts over the size limit in all are dropped and counted", "[zmq]") {
  auto ka = generate_curve_keys(), kb = generate_curve_keys();
  zmq_transport b(opts(kb, {ka.public_key}));  // max_frame_bytes 4096
  // A CurveZMQ client of an allowlisted key that sends parts of its own
  // making: each under the limit (libzmq's cut-off is per part).
  zmq::context_t ctx;
  zmq::socket_t d(ctx, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.set(zmq::sockopt::curve_serverkey, kb.public_key);
  d.set(zmq::sockopt::curve_publickey, ka.public_key);
  d.set(zmq::sockopt::curve_secretkey, ka.secret_key);
  d.connect(b.endpoint());
  auto send_parts = [&d](const std::vector<size_t>& sizes, uint8_t fill) {
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<std::byte> p(sizes[i], std::byte{fill});
      p[0] = std::byte{static_cast<uint8_t>(i)};
      d.send(zmq::const_buffer(p.data(), p.size()), i + 1 < sizes.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  };
  send_parts({2000, 2000, 2000}, 1);  // 6000 bytes in all: over 4096
  send_parts({2000, 1000}, 2);        // 3000: joined
  std::vector<received> got;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.empty() && std::chrono::steady_clock::now() < until) {
    auto more = pump(b, 1, 50);
    got.insert(got.end(), more.begin(), more.end());
  }
  REQUIRE(got.size() == 1);
  CHECK(got[0].sender == ka.public_key);
  REQUIRE(got[0].frame.size() == 3000);
  CHECK(got[0].frame[0] == std::byte{0});
  CHECK(got[0].frame[1] == std::byte{2});
  CHECK(got[0].frame[2000] == std::byte{1});  // the second part's first byte, its index
  CHECK(got[0].frame[2999] == std::byte{2});
  CHECK(b.counters().malformed_messages == 1);
  CHECK(b.counters().frames_received == 1);
}

TEST_CASE("each traffic class has its own connection: a full bulk queue does not hold a heartbeat back", "[zmq][traffic]") {
  auto ka = generate_curve_keys(), kb = generate_curve_keys();
  zmq_transport b(opts(kb, {ka.public_key}));
  auto oa = opts(ka);
  oa.send_hwm = 8;
  zmq_transport a(oa);
  a.connect(1, b.endpoint(), kb.public_key);
  // A bulk frame (a state chunk's header; the transport does not decode).
  std::vector<std::byte> bulk;
  encode_frame(message_type::state_chunk, std::vector<std::byte>(4000, std::byte{7}), bulk);
  REQUIRE(!send_until_received(a, b, bulk).empty());  // connected
  // b stops reading: bulk frames fill b's queue, the sockets' buffers and
  // then a's queue, until a refuses them.
  int queued = 0;
  while (queued < 1'000'000 && a.send(1, bulk)) {
    ++queued;
    if (queued % 64 == 0) a.poll(0, [](auto&, auto) {});
  }
  INFO(queued << " bulk frames queued before the queue was full");
  REQUIRE(queued < 1'000'000);
  CHECK_FALSE(a.send(1, bulk));
  // A heartbeat still leaves on the control connection, and arrives.
  heartbeat hb;
  hb.sender = 0;
  hb.incarnation = 3;
  std::vector<std::byte> hf;
  encode_heartbeat(hb, hf);
  bool sent = false;
  for (int i = 0; i < 100 && !sent; ++i) {  // the control connection's handshake may still be under way
    sent = a.send(1, hf);
    a.poll(10, [](auto&, auto) {});
  }
  REQUIRE(sent);
  bool arrived = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!arrived && std::chrono::steady_clock::now() < until) {
    b.poll(20, [&](const std::string&, std::span<const std::byte> f) {
      if (std::vector<std::byte>(f.begin(), f.end()) == hf) arrived = true;
    });
    a.poll(0, [](auto&, auto) {});
  }
  CHECK(arrived);
}
