// membership: the member table of one peer, SWIM-like (Das, Gupta, Motivala
// 2002) with incarnation numbers; plain C++, no actors, sockets or clocks
// (time comes in as now_s, seconds on any monotonic clock). Deterministic.
//
// Precedence. A record about peer j supersedes ours when its incarnation is
// higher; at equal incarnation the worse news wins: left > dead > suspect >
// alive. So nothing but a higher incarnation (a restart, or j refuting a
// rumour) overrides left or dead. Endpoint and key change only together with
// a higher incarnation. Merging records this way is commutative, associative
// and idempotent, so tables that see the same records in any order agree,
// provided one (index, incarnation) never names two endpoints.
//
// Inputs (records failing valid_peer_info are ignored; at most max_peers
// entries including self, later additions are ignored):
//   on_join       j's own record (must be alive); counts as hearing from j.
//   on_update     merges every record, then counts as hearing from sender at
//                 sender_incarnation. Unknown indices are added whatever their
//                 status (dead/left ones are remembered so that a stale alive
//                 rumour of that incarnation cannot bring them back).
//   on_heartbeat  (also for heartbeat_ack) hearing from j at incarnation inc:
//                 refreshes last-heard and clears suspect -> alive, but only
//                 when inc is the incarnation we hold and j is alive/suspect.
//                 Dead and left are never revived by it; an unknown index or
//                 another incarnation is ignored (it carries no endpoint: a
//                 new incarnation must arrive in a join or update).
//   on_leave      j -> left, only at the incarnation we hold (same reason).
//   tick          alive -> suspect once silent > suspect_s; suspect -> dead
//                 dead_s after the suspicion began (at last-heard + suspect_s
//                 for our own, on arrival for a rumour). Never touches self.
// A record superseding ours (higher incarnation) also resets last-heard:
// it is a new life of j, which gets a full suspect_s before suspicion.
// Self-refutation: a record about us that differs from ours at our
// incarnation or higher (suspect, dead, left, or another endpoint) makes us
// take incarnation rec+1, still alive, so our next snapshot overrides it.
// (A join naming our index is such a record; heartbeat/leave naming it are
// ignored.) Records about self are never stored. After leave() we refute
// nothing.
//
// Return values: inputs return true when alive() or any incarnation changed
// (e.g. a peer arrived, died, left, restarted, or we refuted). A flip
// between alive and suspect changes members() but not alive(), so it only
// bumps version(); compare version() to know whether to spread a snapshot.
//
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

  effect merge(const peer_info& rec, double now_s);
  effect refute(const peer_info& rec);
  effect heard(uint32_t index, uint64_t incarnation, double now_s);
  bool finish(effect e);

  uint32_t self_index_;
  membership_timeouts timeouts_;
  std::map<uint32_t, entry> table_;  // self included
  uint64_t version_ = 0;
};

}  // namespace murmur
