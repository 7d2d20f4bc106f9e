// membership: the member table of one peer, SWIM-like (Das, Gupta, Motivala
// 2002) with incarnation numbers; plain C++, no actors, sockets or clocks
// (time comes in as now_s, seconds on any monotonic clock). Deterministic.
//
// Who may say what. The caller (membership_actor) has checked that the
// connection key of every input owns the index the input claims
// (peer_identities.hpp): a join's record, an update's sender, a heartbeat's
// or leave's sender. So j's join and the record about j in j's own update
// are j's OWN word; records about others in an update are RELAYS (third
// parties, possibly hostile). The rules keep one authorized peer from
// evicting another:
//   - Only j's own word changes what we hold about j once j has spoken:
//     its incarnation, endpoint, key, and left. A record of j's with a
//     higher incarnation is a new life of j (restart or refutation) and
//     replaces ours; at equal incarnation worse news wins (left > dead >
//     suspect > alive), the endpoint stays.
//   - Relays only discover: an alive relayed record adds an index we do not
//     know, or replaces a relayed entry (one j never confirmed) by a higher
//     incarnation. Relayed suspect/dead/left are ignored, as are relays
//     about a j that has spoken. j's own word replaces a relayed entry
//     whatever its incarnation, so an inflated relay cannot lock j out.
//   - So j becomes suspect/dead for us only by OUR silence timeouts, and
//     left only by j's own leave (or own record). Rumours of other peers'
//     suspicions are not acted on: a slower failure spread, but no peer can
//     talk others into dropping a live one.
// Inputs (records failing valid_peer_info are ignored; at most max_peers
// entries including self, later additions are ignored):
//   on_join       j's own record (must be alive); counts as hearing from j.
//   on_update     merges the sender's own record and the relays as above,
//                 then counts as hearing from sender at sender_incarnation.
//   on_heartbeat  (also for heartbeat_ack) hearing from j at incarnation inc:
//                 refreshes last-heard and clears suspect -> alive, but only
//                 when inc is the incarnation we hold and j is alive/suspect.
//                 Dead and left are never revived by it; an unknown index or
//                 another incarnation is ignored (it carries no endpoint: a
//                 new incarnation must arrive in a join or update).
//   on_leave      j -> left, only at the incarnation we hold (same reason).
//   tick          alive -> suspect once silent > suspect_s; suspect -> dead
//                 dead_s after the suspicion began (at last-heard +
//                 suspect_s). Never touches self.
// A record superseding ours also resets last-heard: it is a new life of j
// (or its first own word), which gets a full suspect_s before suspicion.
// Self-refutation: when someone holds us suspect/dead/left (their timeouts)
// or with another endpoint at our incarnation and relays it, we take
// incarnation + 1, still alive, so our next snapshot (our own word)
// overrides theirs. A relayed record about us at a HIGHER incarnation is
// ignored (nobody accepts such a relay, and obeying it would let a third
// party inflate our incarnation), and relay-caused refutations happen at
// most once per min_refute_interval_s: incarnations are wall-clock ms at
// start (murmur peer), so a life's incarnation stays below the start time
// of a later restart, which therefore always reclaims its index. Our own
// key speaking about us (a join or update naming our index, i.e. another
// process holding our key) is refuted at any incarnation, without limit.
// Records about self are never stored. After leave() we refute nothing.
//
// Return values: inputs return true when alive() or any incarnation changed
// (e.g. a peer arrived, died, left, restarted, or we refuted). A flip
// between alive and suspect changes members() but not alive(), so it only
// bumps version(); compare version() to know whether to spread a snapshot.
//
// Merging is commutative and idempotent for a stream of updates without
// ticks, provided one (index, incarnation) never names two endpoints.
// Not done here: dead/left records are kept (not garbage-collected), so a
// table that fills with max_peers indices stays full.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "protocols/membership_messages.hpp"

namespace murmur {

struct membership_timeouts {
  double suspect_s = 2.0;  // silence before suspect
  double dead_s = 5.0;     // further time as suspect before dead
};

// At most one refutation caused by relays per this many seconds (see above).
inline constexpr double min_refute_interval_s = 1.0;

class membership {
 public:
  // Throws std::invalid_argument when self fails valid_peer_info or a
  // timeout is negative or NaN. self.status is taken as alive.
  membership(peer_info self, membership_timeouts t, double now_s);

  const peer_info& self() const { return table_.at(self_index_).info; }
  const membership_timeouts& timeouts() const { return timeouts_; }

  bool on_join(const peer_info& p, double now_s);
  bool on_update(const membership_update& u, double now_s);
  bool on_heartbeat(uint32_t sender, uint64_t incarnation, double now_s);
  bool on_leave(uint32_t sender, uint64_t incarnation, double now_s);
  bool tick(double now_s);

  // Everyone known, self included, sorted by index, with status.
  std::vector<peer_info> members() const;
  // Indices whose status is alive OR suspect (a suspect may just be slow, so
  // it stays routable until declared dead), self included unless we left.
  std::vector<uint32_t> alive() const;
  // Our full table as an update from us (fits one message: <= max_peers).
  membership_update snapshot() const;
  // Increases whenever members() changes; equal versions, equal members().
  uint64_t version() const { return version_; }
  std::optional<peer_info> find(uint32_t index) const;
  // When j was last heard from (directly, or via a record superseding ours);
  // nullopt for self and unknown indices.
  std::optional<double> last_heard(uint32_t index) const;
  // Our own status -> left, for the final leave message.
  void leave();

 private:
  struct entry {
    peer_info info;
    double last_heard_s = 0;
    double suspect_since_s = 0;  // meaningful while info.status == suspect
    bool own = false;            // info came from j itself, not from a relay
  };
  // What one input did: members() changed, alive() or an incarnation changed.
  struct effect {
    bool members = false;
    bool routing = false;
    effect& operator|=(effect o) {
      members |= o.members;
      routing |= o.routing;
      return *this;
    }
  };

  effect merge_own(const peer_info& rec, double now_s);
  effect merge_relay(const peer_info& rec, double now_s);
  effect replace(entry& e, const peer_info& rec, bool own, double now_s);
  effect refute(const peer_info& rec, bool own, double now_s);
  effect heard(uint32_t index, uint64_t incarnation, double now_s);
  bool finish(effect e);

  uint32_t self_index_;
  membership_timeouts timeouts_;
  std::map<uint32_t, entry> table_;  // self included
  uint64_t version_ = 0;
  std::optional<double> last_relay_refute_s_;
};

}  // namespace murmur
