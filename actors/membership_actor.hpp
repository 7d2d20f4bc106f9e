// membership_actor: the control plane of a LAN peer process.
//  - Membership: joins through contact addresses, spreads its peer list,
//    sends heartbeats every heartbeat period, and lets the membership table
//    (membership.hpp) suspect and drop the silent.
//  - Identity: peer i is the i-th key line of the allowlist
//    (peer_identities.hpp). Every control frame claims an index (a join's
//    record, the sender of an update/heartbeat/ack/leave/state chunk, the
//    requester of a state request); one whose connection key does not own
//    that index is refused and counted by kind (membership_stats), logged
//    the first few times. Records inside an update whose key is not the
//    allowlist key of their index are dropped and counted the same way.
//  - Routing: connects the bridge to every live member whose key is in OUR
//    allowlist, and tells the gossip actor its neighbours: the topology laid
//    over the live members in index order (ring if the topology does not
//    fit the current count), leaving out the members this peer quarantined
//    (the gossip actor tells it of each), so that the overlay closes around
//    them as if they had left.
//  - State transfer: on fetch_atom(dim, timeout) it asks up to `donors` live
//    members, highest standing with our verifier first (actors/reputation.hpp;
//    equal standings in index order), for ranges of their parameters (state_fetch.hpp: a silent or
//    wrong donor's ranges go to other donors at each third of the timeout), installs
//    what arrives through the shard actor, all or nothing, and answers with
//    how many coordinates it installed (0 if not everything arrived in time:
//    the peer then trains on from its own; -1 if no member that knows us is
//    there to ask yet).
//    It answers other peers' requests from its shard actor.
// Nobody waits on a dead peer: every wait here has a deadline.
#pragma once
#include <array>
#include <caf/fwd.hpp>
#include <map>
#include <string>
#include <vector>

#include "actors/link_stats.hpp"
#include "actors/membership.hpp"
#include "actors/messages.hpp"
#include "actors/verifier_actor.hpp"
#include "protocols/peer_identities.hpp"

namespace murmur {

using tick_atom = caf::atom_constant<caf::atom("tick")>;
using fetch_atom = caf::atom_constant<caf::atom("fetch")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using members_atom = caf::atom_constant<caf::atom("members")>;

// Frames refused because they claim an identity their key does not own.
enum class identity_claim : uint8_t { join, update, record, heartbeat, leave, state_request, state_chunk, count_ };
const char* to_string(identity_claim k);

struct membership_stats {
  uint64_t dropped = 0;  // undecodable, unexpected or foreign control frames
  std::array<uint64_t, static_cast<size_t>(identity_claim::count_)> identity_refused{};
  uint64_t state_refused = 0;  // state chunks of a wrong range, or values beyond max_state_value
  std::map<uint32_t, link_rtt> rtt;  // heartbeat round trips, by peer (link_stats.hpp)
  uint64_t identity_refused_total() const;
};

struct membership_settings {
  peer_info self;              // index, endpoint others reach us at, our public key
  peer_identities identities;  // our allowlist: key line i is peer i (endpoints where known)
  std::vector<std::string> join;         // contact endpoints (--join)
  membership_timeouts timeouts;
  double heartbeat_s = 0.25;
  std::string topology = "ring";
  uint32_t degree = 4;
  uint64_t seed = 1;
  uint32_t donors = 2;
  size_t max_frame_bytes = 64u << 20;
  float max_state_value = 0;  // state chunks with a larger magnitude are refused; 0: no bound
};

// bridge: the zmq_bridge actor. Replies: fetch -> int32_t installed coordinates (-1: no donor yet);
// leave -> bool after the leave frames are queued; members -> std::vector<uint32_t> live indices;
// stats -> membership_stats. Throws std::invalid_argument when self's key is not the identities'
// line self.index, or a --join address has no line.
// The verifier, when given, hears of neighbour changes as the gossip actor does.
caf::actor spawn_membership(caf::actor_system& sys, membership_settings s, caf::actor bridge,
                            gossip_actor gossip, shard_actor shard, verifier_actor verifier = {});

}  // namespace murmur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::membership_stats)
