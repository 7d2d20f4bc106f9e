// zmq_bridge: the LAN implementation of transport_actor. It owns a
// zmq_transport in a detached actor (blocking socket work off the
// scheduler's threads) and moves frames both ways:
//   send(from, to, frame)  -> zmq_transport::send to peer `to`, then, for a
//                             gossip frame, sent(to) back to the gossip
//                             actor (the frame is queued)
//   a frame from the wire  -> deliver(from, frame) to the local gossip actor,
//                             where `from` is the peer whose CurveZMQ key
//                             signed the connection: peer i is the i-th key
//                             of zmq_transport_options::authorized (the
//                             allowlist's key lines, peer_identities.hpp),
//                             fixed at spawn. A frame cannot claim to come
//                             from someone else; its receiver refuses one
//                             whose own sender field differs from `from`.
// Every inbound frame's header and checksum are checked here first
// (decode_frame): a bad one is dropped, counted by reason and logged with
// the sender's key before any actor sees it.
// Verification frames (verify_messages.hpp) from known peers go to the
// verifier actor bound with bind_atom(verifier_actor), as deliver(from,
// frame); they are not reported back as sent(). Segment commitments and
// challenges go as urgent messages (ahead of queued replies, whose replays
// are long).
// Other message families go to whoever registered for them with
// route_atom(actor): (frame_atom, sender key, frame), so the membership
// actor can hear a joiner before it has a peer id. Those that arrive
// before route_atom are held (up to 4096) and handed over with it. Control frames leave
// with control_atom(to, frame), without a sent() report.
// add_peer_atom(id, endpoint, public key) connects to a peer (where frames
// to `id` go); it neither widens the allowlist (only
// zmq_transport_options::authorized does), so a peer list spread by others
// cannot let a stranger in, nor changes who an inbound key is. Gossip
// frames from a key that is no allowlisted peer are dropped and counted.
// Stop it with stop_atom (exit messages do not interrupt a blocking loop),
// or with flush_atom(linger_ms): it sends what it was asked to send before,
// closes its sockets giving queued frames up to linger_ms to leave, answers
// true and stops (a process's last frames, e.g. a pipeline stage's final
// gradients, then reach their peers before it exits).
#pragma once
#include <array>
#include <caf/fwd.hpp>
#include <map>
#include <string>

#include "actors/link_stats.hpp"
#include "actors/messages.hpp"
#include "protocols/peer_identities.hpp"
#include "protocols/zmq_transport.hpp"

namespace murmur {

using add_peer_atom = caf::atom_constant<caf::atom("addpeer")>;
using bind_atom = caf::atom_constant<caf::atom("bind")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using remove_peer_atom = caf::atom_constant<caf::atom("rmpeer")>;
using route_atom = caf::atom_constant<caf::atom("route")>;
using frame_atom = caf::atom_constant<caf::atom("frame")>;
using control_atom = caf::atom_constant<caf::atom("control")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;

// What the bridge saw: the transport's counters plus frames it could not
// attribute to a known peer (answer to stats_atom).
struct bridge_stats {
  zmq_transport_counters net;
  std::array<uint64_t, frame_error_count> frame_errors{};  // by frame_error, checked at the edge
  uint64_t unknown_sender_frames = 0;
  uint64_t unrouted_dropped = 0;  // for the router, before route_atom, beyond the 4096 held
  // By allowlisted peer: frames and bytes handed to the transport for it
  // (taken) and whole frames received from it (link_stats.hpp).
  std::map<uint32_t, link_bytes> links;
};

struct zmq_bridge_handle {
  caf::actor actor;          // accepts add_peer_atom, bind_atom, stop_atom
  transport_actor transport; // the same actor, typed for the gossip actor
  std::string endpoint;      // where it listens (port resolved)
};

// Creates the transport (throws what zmq_transport throws, and
// std::runtime_error when a key is twice in opt.authorized), then the actor.
// bind_atom(gossip_actor) tells it where inbound frames go.
zmq_bridge_handle spawn_zmq_bridge(caf::actor_system& sys, zmq_transport_options opt);

}  // namespace murmur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::bridge_stats)
