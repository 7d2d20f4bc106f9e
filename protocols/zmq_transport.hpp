// zmq_transport: frames between peer processes over ZeroMQ with CurveZMQ on
// every connection. One ROUTER socket listens (CURVE server); one DEALER per
// remote peer connects to it (CURVE client). Who may connect is decided by a
// ZAP handler with an allowlist of public keys: a stranger's handshake is
// refused, so it gets nothing and nothing of it is read (counted).
// Incoming messages over max_frame_bytes are cut off by libzmq before they
// are allocated (ZMQ_MAXMSGSIZE).
// Traffic classes (traffic_class.hpp): we open one DEALER connection per
// class to each peer, and each frame leaves on its class's connection, so a
// heartbeat never waits in a TCP stream behind a state transfer or a 5 MB
// segment reply: the kernel interleaves the connections' packets, and the
// ROUTER reads whichever frame is complete first.
// A frame over part_bytes leaves as a multi-part ZeroMQ message of slices of
// it (referred to, not copied): CurveZMQ encrypts each part apart, with
// copies of that part only, instead of two copies of a whole 5 MB frame at
// once. ZeroMQ delivers a multi-part message whole or not at all, so the
// receiver still gets whole frames: it joins the parts (at most
// max_frame_bytes in all, else dropped and counted as malformed), freeing
// each as it is copied.
// Not thread-safe: one thread owns a transport and calls everything on it
// (the peer process runs it in its I/O thread).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/curve_keys.hpp"
#include "protocols/traffic_class.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace murmur {

struct zmq_transport_options {
  std::string listen = "tcp://127.0.0.1:*";  // '*' port = any free port
  curve_keys keys;                           // ours
  std::vector<std::string> authorized;      // public keys allowed to connect
  size_t max_frame_bytes = 64u << 20;
  int send_hwm = 64;                        // frames queued per peer and class before sends are dropped
  int handshake_ms = 5000;
  int heartbeat_ms = 1000;                  // ZMTP heartbeats detect dead connections
};

struct zmq_transport_counters {
  uint64_t frames_sent = 0, bytes_sent = 0, send_dropped = 0;
  uint64_t frames_received = 0, bytes_received = 0;
  uint64_t handshakes_refused = 0;  // ZAP said no
  uint64_t malformed_messages = 0;  // not [identity][frame]
};

class zmq_transport {
 public:
  explicit zmq_transport(zmq_transport_options opt);
  ~zmq_transport();
  zmq_transport(const zmq_transport&) = delete;
  zmq_transport& operator=(const zmq_transport&) = delete;

  // The resolved listening endpoint, e.g. tcp://127.0.0.1:41234.
  const std::string& endpoint() const { return endpoint_; }
  void authorize(const std::string& public_key);

  // Opens (or replaces) the outgoing connection to a peer.
  void connect(uint32_t peer, const std::string& endpoint, const std::string& server_public_key);
  void disconnect(uint32_t peer);
  // Queues one frame for the peer on its class's connection without
  // blocking; false (and counted) if the peer is unknown or that queue is
  // full. A frame too short to name its type goes as bulk.
  bool send(uint32_t peer, std::span<const std::byte> frame);
  // The same for a shared frame: from 64 KiB on, ZeroMQ sends from the
  // frame's own bytes (kept alive until it is done with them) instead of a
  // copy, so a big frame is not held twice while it waits for the wire;
  // over part_bytes, in parts (above).
  bool send(uint32_t peer, std::shared_ptr<const std::vector<std::byte>> frame);
  static constexpr size_t part_bytes = 256 * 1024;

  // Waits up to timeout_ms for traffic, answers handshakes, and calls
  // on_frame(sender public key, frame) for every frame that arrived, the
  // frame's bytes handed over (the handler may keep them: a received frame
  // is copied out of ZeroMQ once, here). A signal that interrupts the wait
  // ends it as a time-out would.
  using frame_handler = std::function<void(const std::string& sender_key, std::vector<std::byte>&& frame)>;
  void poll(int timeout_ms, const frame_handler& on_frame);

  // Closes every socket, giving frames still queued to connected peers up to
  // linger_ms to leave (sockets otherwise never linger), then ends the
  // ZeroMQ context: blocks at most about linger_ms. Nothing may be called
  // on the transport afterwards except counters().
  void close(int linger_ms);

  const zmq_transport_counters& counters() const { return counters_; }
  size_t max_frame_bytes() const { return opt_.max_frame_bytes; }

 private:
  void answer_zap();
  zmq_transport_options opt_;
  std::unique_ptr<zmq::context_t> ctx_;
  std::unique_ptr<zmq::socket_t> zap_, router_;
  zmq::socket_t* dealer(uint32_t peer, std::span<const std::byte> frame);
  using class_dealers = std::array<std::unique_ptr<zmq::socket_t>, traffic_class_count>;
  std::map<uint32_t, class_dealers> dealers_;
  std::set<std::string> authorized_;
  std::string endpoint_;
  zmq_transport_counters counters_;
};

}  // namespace murmur
