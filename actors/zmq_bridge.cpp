#include "actors/zmq_bridge.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/blocking_actor.hpp>
#include <caf/send.hpp>
#include <algorithm>
#include <iostream>

#include "actors/verifier_actor.hpp"
#include "protocols/frame_codec.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/verify_messages.hpp"

namespace murmur {

namespace {

void bridge_loop(caf::blocking_actor* self, std::shared_ptr<zmq_transport> net, peer_identities identities) {
  gossip_actor gossip;
  verifier_actor verifier;  // verification frames, when on
  caf::actor router;        // everything else that is not gossip
  bridge_stats stats;
  // Frames for the router that come before it is named: the transport
  // listens from its creation, and a peer that is already running (a
  // pipeline neighbour with its activations queued) may get them through
  // before route_atom is read; dropping one would stall it for good.
  std::vector<std::pair<std::string, wire_frame>> unrouted;
  constexpr size_t max_unrouted = 4096;
  const size_t max_frame = net->max_frame_bytes();
  bool running = true;
  auto on_frame = [&](const std::string& key, std::vector<std::byte>&& frame) {
    auto checked = decode_frame(frame, max_frame);
    if (checked.error != frame_error::none) {
      auto n = ++stats.frame_errors[static_cast<size_t>(checked.error)];
      if (n <= 3 || n % 1000 == 0)
        std::cerr << "zmq bridge: dropped a frame from key " << key << " (" << to_string(checked.error) << ", "
                  << frame.size() << " bytes; " << n << " so far)\n";
      return;
    }
    if (auto i = identities.index_of(key)) {
      auto& l = stats.links[*i];
      ++l.frames_received;
      l.bytes_received += frame.size();
    }
    // The transport's copy, taken over: a big frame is not held twice here.
    wire_frame w{std::make_shared<const std::vector<std::byte>>(std::move(frame))};
    const bool verify = is_verify_message(checked.type);
    if (checked.type != message_type::gossip_update && !verify) {
      if (router) caf::anon_send(router, frame_atom::value, key, std::move(w));
      else if (unrouted.size() < max_unrouted) unrouted.emplace_back(key, std::move(w));
      else ++stats.unrouted_dropped;
      return;
    }
    // Who sent it is the allowlist's say (key line i is peer i), never
    // something a peer told us.
    auto from = identities.index_of(key);
    if (!from || !gossip || (verify && !verifier)) {
      if (++stats.unknown_sender_frames <= 10) std::cerr << "zmq bridge: dropped a frame from unknown key " << key << "\n";
      return;
    }
    // Segment commitments and challenges are cheap to handle and must not
    // wait behind a replay the verifier is running (a challenge drawn or
    // answered late finds the segment dropped): urgent.
    if (verify && (checked.type == message_type::segment_commit || checked.type == message_type::segment_request))
      caf::anon_send<caf::message_priority::high>(verifier, deliver_atom::value, *from, std::move(w));
    else if (verify) caf::anon_send(verifier, deliver_atom::value, *from, std::move(w));
    else caf::anon_send(gossip, deliver_atom::value, *from, std::move(w));
  };
  auto count_sent = [&](uint32_t to, size_t bytes) {
    auto& l = stats.links[to];
    ++l.frames_sent;
    l.bytes_sent += bytes;
  };
  while (running) {
    net->poll(2, on_frame);
    // Drain the mailbox without blocking, then go back to the sockets.
    bool idle = false;
    while (running && !idle) {
      self->receive(
          [&](send_atom, uint32_t, uint32_t to, const wire_frame& w) {
            if (!w.bytes) return;
            if (net->send(to, w.bytes)) count_sent(to, w.bytes->size());  // big frames zero-copy
            // Only gossip rounds wait for their frames to be on their way
            // (a pipeline node's stage frames are not reported).
            auto type = peek_type(*w.bytes);
            if (gossip && type && *type == message_type::gossip_update) caf::anon_send(gossip, sent_atom::value, to);
          },
          [&](control_atom, uint32_t to, const wire_frame& w) {
            if (w.bytes && net->send(to, w.bytes)) count_sent(to, w.bytes->size());
          },
          [&](add_peer_atom, uint32_t id, const std::string& endpoint, const std::string& key) {
            net->connect(id, endpoint, key);
          },
          [&](remove_peer_atom, uint32_t id) { net->disconnect(id); },
          [&](bind_atom, gossip_actor g) { gossip = std::move(g); },
          [&](bind_atom, verifier_actor v) { verifier = std::move(v); },
          [&](route_atom, caf::actor a) {
            router = std::move(a);
            for (auto& [key, w] : unrouted) caf::anon_send(router, frame_atom::value, key, std::move(w));
            unrouted.clear();
          },
          [&](stats_atom) {
            stats.net = net->counters();
            return stats;
          },
          [&](stop_atom) { running = false; },
          [&](flush_atom, int32_t linger_ms) {
            running = false;
            net->close(std::max(0, linger_ms));
            return true;
          },
          caf::after(std::chrono::milliseconds(0)) >> [&] { idle = true; });
    }
  }
}

}  // namespace

zmq_bridge_handle spawn_zmq_bridge(caf::actor_system& sys, zmq_transport_options opt) {
  auto identities = peer_identities::from_keys(opt.authorized, "zmq_transport_options::authorized");
  auto net = std::make_shared<zmq_transport>(std::move(opt));
  zmq_bridge_handle h;
  h.endpoint = net->endpoint();
  h.actor = sys.spawn<caf::detached>(bridge_loop, net, std::move(identities));
  h.transport = caf::actor_cast<transport_actor>(h.actor);
  return h;
}

}  // namespace murmur
