#include "actors/membership_actor.hpp"

#include "actors/state_fetch.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <set>

#include "actors/topology.hpp"
#include "actors/zmq_bridge.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/state_transfer_messages.hpp"

namespace murmur {

const char* to_string(identity_claim k) {
  switch (k) {
    case identity_claim::join: return "join";
    case identity_claim::update: return "update";
    case identity_claim::record: return "record";
    case identity_claim::heartbeat: return "heartbeat";
    case identity_claim::leave: return "leave";
    case identity_claim::state_request: return "state_request";
    case identity_claim::state_chunk: return "state_chunk";
    case identity_claim::count_: break;
  }
  return "?";
}

uint64_t membership_stats::identity_refused_total() const {
  uint64_t n = 0;
  for (auto k : identity_refused) n += k;
  return n;
}

namespace {

// Contacts (--join addresses) get ids above every real peer index until
// they tell us who they are.
constexpr uint32_t contact_id_base = 0x80000000u;

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct fetch_job {
  caf::response_promise reply;
  std::unique_ptr<state_fetch> plan;
  uint64_t generation = 0;  // deadlines of earlier attempts are ignored
  double attempt_s = 0;
  uint32_t installing = 0;  // slices handed to the shard actor, not yet confirmed
  uint32_t installed = 0;
  bool active = false;
  reputation standing;  // the verifier's, when the fetch began: donors in its order
};

struct membership_state {
  membership_settings s;
  peer_names names;  // labels from the allowlist
  std::unique_ptr<membership> table;
  caf::actor bridge;
  gossip_actor gossip;
  verifier_actor verifier;
  shard_actor shard;
  std::map<uint32_t, peer_info> connected;     // what the bridge is connected to
  std::vector<uint32_t> neighbours, live;
  std::vector<uint64_t> neighbour_inc;
  std::vector<uint32_t> contacts_pending;      // contact ids not yet answered
  std::set<uint32_t> heard_directly;           // members that heartbeat us: they know us
  std::set<uint32_t> quarantined;              // by this peer: routed around, still connected
  uint64_t seq = 0, ticks = 0, version_spread = 0;
  heartbeat_clock beats;  // when our heartbeats went out: round trips (stats.rtt)
  membership_stats stats;
  fetch_job fetch;
  std::vector<std::byte> buf;
  static inline const char* name = "membership";
};

using self_ptr = caf::stateful_actor<membership_state>*;

// "peer 1 (alice), peer 2" for a log line.
template <class Ids>
std::string name_list(const membership_state& st, const Ids& ids) {
  std::string r;
  for (uint32_t i : ids) {
    if (!r.empty()) r += ", ";
    r += st.names(i);
  }
  return r;
}

void send_frame(self_ptr self, uint32_t to, std::vector<std::byte>& buf) {
  self->send(self->state.bridge, control_atom::value, to,
             wire_frame{std::make_shared<const std::vector<std::byte>>(buf)});
}

// The record names the allowlist key of its index (key line i is peer i).
bool is_allowed(const membership_state& st, const peer_info& p) { return st.s.identities.owns(p.public_key, p.index); }

// Connects the bridge to every live, allowed member, drops the others, and
// tells the gossip actor its neighbours when they changed.
void apply_routing(self_ptr self) {
  auto& st = self->state;
  std::vector<uint32_t> live;
  for (uint32_t i : st.table->alive()) {
    auto p = st.table->find(i);
    if (p && (i == st.s.self.index || is_allowed(st, *p))) live.push_back(i);
  }
  for (auto it = st.connected.begin(); it != st.connected.end();) {
    auto p = st.table->find(it->first);
    bool keep = p && std::count(live.begin(), live.end(), it->first) && p->incarnation == it->second.incarnation &&
                p->endpoint == it->second.endpoint;
    if (!keep) {
      self->send(st.bridge, remove_peer_atom::value, it->first);
      it = st.connected.erase(it);
    } else {
      ++it;
    }
  }
  for (uint32_t i : live) {
    if (i == st.s.self.index || st.connected.count(i)) continue;
    auto p = *st.table->find(i);
    self->send(st.bridge, add_peer_atom::value, i, p.endpoint, p.public_key);
    st.connected[i] = p;
  }
  // The overlay over live members in index order, without those we
  // quarantined: the peers that quarantined a ring neighbour link up around
  // it, as they would had it left (on a ring, only its neighbours' edges move).
  std::vector<uint32_t> members;
  for (uint32_t i : live)
    if (!st.quarantined.count(i)) members.push_back(i);
  auto self_pos = std::find(members.begin(), members.end(), st.s.self.index) - members.begin();
  std::vector<std::vector<uint32_t>> g;
  try {
    g = make_topology(st.s.topology, static_cast<uint32_t>(members.size()), st.s.degree, st.s.seed);
  } catch (const std::invalid_argument&) {
    g = make_topology("ring", static_cast<uint32_t>(members.size()), st.s.degree, st.s.seed);
  }
  std::vector<uint32_t> nb;
  std::vector<uint64_t> inc;
  if (static_cast<size_t>(self_pos) < members.size())
    for (uint32_t pos : g[static_cast<size_t>(self_pos)]) {
      nb.push_back(members[pos]);
      inc.push_back(st.table->find(members[pos])->incarnation);
    }
  if (live != st.live) {
    // One line per change of the live set, with Unix time in ms so that
    // runs on several machines can be lined up (failure-detection timelines).
    std::string list;
    for (uint32_t i : live) {
      if (!list.empty()) list += ',';
      list += std::to_string(i);
    }
    auto unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    std::cout << "membership: " << st.names(st.s.self.index) << " sees live peers [" << list << "] at unix_ms "
              << unix_ms << std::endl;
    st.live = live;
  }
  if (nb != st.neighbours || inc != st.neighbour_inc) {
    st.neighbours = nb;
    st.neighbour_inc = inc;
    self->send(st.gossip, nbrs_atom::value, nb, inc);
    if (st.verifier) self->send(st.verifier, nbrs_atom::value, nb, inc);
  }
}

void spread(self_ptr self) {
  auto& st = self->state;
  encode_membership_update(st.table->snapshot(), st.buf);
  for (auto& [i, p] : st.connected) send_frame(self, i, st.buf);
  for (uint32_t c : st.contacts_pending) send_frame(self, c, st.buf);
  st.version_spread = st.table->version();
}

void send_join(self_ptr self) {
  auto& st = self->state;
  encode_membership_join(membership_join{st.table->self()}, st.buf);
  for (uint32_t c : st.contacts_pending) send_frame(self, c, st.buf);
}

void drop(self_ptr self, const std::string& key, const char* why) {
  if (++self->state.stats.dropped <= 10)
    std::cerr << self->state.names(self->state.s.self.index) << ": dropped a control frame from key " << key << " (" << why
              << ")\n";
}

// Counts a frame or record that claims peer `claimed` with `key`, which
// does not own it, and logs the first few and then every 1000th.
void refuse(self_ptr self, const std::string& key, uint32_t claimed, identity_claim kind) {
  auto& st = self->state;
  auto owner = st.s.identities.index_of(key);
  const auto n = ++st.stats.identity_refused[static_cast<size_t>(kind)];
  if (n <= 3 || n % 1000 == 0)
    std::cerr << st.names(st.s.self.index) << ": refused (" << to_string(kind) << ") a claim to be peer " << claimed
              << " with key " << key << ", which is "
              << (owner ? st.names(*owner) : std::string("no peer")) << " (" << n << " so far)\n";
}

// True when the connection key owns `claimed` (key line `claimed` of the
// allowlist); otherwise refuses.
bool speaks_for(self_ptr self, const std::string& key, uint32_t claimed, identity_claim kind) {
  if (self->state.s.identities.owns(key, claimed)) return true;
  refuse(self, key, claimed, kind);
  return false;
}

void finish_fetch(self_ptr self) {
  auto& f = self->state.fetch;
  if (!f.active) return;
  f.active = false;
  if (f.installed > 0) self->send(self->state.gossip, resync_atom::value);
  f.reply.deliver(static_cast<int32_t>(f.installed));
}

// Donors are members that heartbeat us, so they know us and will answer,
// and that we have not quarantined.
std::vector<uint32_t> donors_now(self_ptr self) {
  auto& st = self->state;
  std::vector<uint32_t> donors;
  for (uint32_t i : st.table->alive())
    if (i != st.s.self.index && st.connected.count(i) && st.heard_directly.count(i) && !st.quarantined.count(i))
      donors.push_back(i);
  return donors;
}

// Sends the requests of one attempt and arms its deadline.
void ask_donors(self_ptr self, const state_fetch::asks& asks) {
  auto& st = self->state;
  for (const auto& [donor, r] : asks) {
    encode_state_request(r, st.buf);
    send_frame(self, donor, st.buf);
  }
  self->delayed_send(self, ms(st.fetch.attempt_s), fetch_atom::value, st.fetch.generation);
}

// The first attempt of an active fetch: up to `donors` of the donors now,
// highest standing first (ties: index order), asked for their ranges.
void start_fetch(self_ptr self, uint32_t dim, double timeout_s) {
  auto& st = self->state;
  auto& f = st.fetch;
  auto donors = f.standing.by_standing(donors_now(self));
  if (donors.empty()) {  // all left while we asked our verifier
    f.active = false;
    f.reply.deliver(int32_t{-1});
    return;
  }
  if (donors.size() > st.s.donors) donors.resize(st.s.donors);
  // Three attempts share the timeout: the later ones ask the donors
  // that delivered, or have come since, for what the others did not.
  f.attempt_s = timeout_s / 3;
  f.plan = std::make_unique<state_fetch>(st.s.self.index, dim, donors, st.seq * 1000 + 1, st.s.max_state_value,
                                         /*retries*/ 2);
  const auto asks = f.plan->start();
  std::string asked;
  for (uint32_t d : donors) {  // with the standing that put it there, where we have evidence
    if (!asked.empty()) asked += ", ";
    asked += st.names(d);
    if (f.standing.all().count(d)) asked += " (standing " + std::to_string(f.standing.standing(d)).substr(0, 4) + ")";
  }
  std::cerr << st.names(st.s.self.index) << ": state transfer: asking " << asked << " for " << asks.size()
            << " ranges\n";
  ask_donors(self, asks);
  if (f.plan->complete()) finish_fetch(self);
}

void on_frame(self_ptr self, const std::string& key, const wire_frame& w) {
  auto& st = self->state;
  if (!w.bytes) return;
  auto frame = std::span<const std::byte>(*w.bytes);
  auto type = peek_type(frame);
  if (!type) return drop(self, key, "unknown type");
  const double now = now_s();
  bool changed = false;
  switch (*type) {
    case message_type::membership_join: {
      membership_join j;
      if (decode_membership_join(frame, st.s.max_frame_bytes, j) != frame_error::none) return drop(self, key, "undecodable join");
      if (!speaks_for(self, key, j.self.index, identity_claim::join)) return;
      if (j.self.public_key != key) return refuse(self, j.self.public_key, j.self.index, identity_claim::record);
      changed = st.table->on_join(j.self, now);
      apply_routing(self);
      spread(self);  // the joiner learns everyone, everyone learns the joiner
      break;
    }
    case message_type::membership_update: {
      membership_update u;
      if (decode_membership_update(frame, st.s.max_frame_bytes, u) != frame_error::none) return drop(self, key, "undecodable update");
      if (!speaks_for(self, key, u.sender, identity_claim::update)) return;
      // A record whose key is not its index's allowlist key is nobody's.
      std::erase_if(u.peers, [&](const peer_info& p) {
        if (is_allowed(st, p)) return false;
        refuse(self, p.public_key, p.index, identity_claim::record);
        return true;
      });
      changed = st.table->on_update(u, now);
      st.table->on_heartbeat(u.sender, u.sender_incarnation, now);
      // The contact told us who it is: stop addressing it by its contact id.
      for (auto it = st.contacts_pending.begin(); it != st.contacts_pending.end();) {
        self->send(st.bridge, remove_peer_atom::value, *it);
        it = st.contacts_pending.erase(it);
      }
      break;
    }
    case message_type::heartbeat:
    case message_type::heartbeat_ack: {
      heartbeat h;
      frame_error e = *type == message_type::heartbeat
                          ? decode_heartbeat(frame, st.s.max_frame_bytes, h)
                          : [&] {
                              heartbeat_ack a;
                              auto r = decode_heartbeat_ack(frame, st.s.max_frame_bytes, a);
                              h = heartbeat{a.sender, a.incarnation, a.seq};
                              return r;
                            }();
      if (e != frame_error::none) return drop(self, key, "undecodable heartbeat");
      if (!speaks_for(self, key, h.sender, identity_claim::heartbeat)) return;
      // A heartbeat from a member we have not learned of yet is early, not bad:
      // the peer list that names it is on its way.
      if (!st.table->find(h.sender)) return;
      changed = st.table->on_heartbeat(h.sender, h.incarnation, now);
      st.heard_directly.insert(h.sender);
      if (*type == message_type::heartbeat_ack) st.beats.acked(h.sender, h.seq, now, st.stats.rtt);
      if (*type == message_type::heartbeat && st.connected.count(h.sender)) {
        encode_heartbeat_ack(heartbeat_ack{st.s.self.index, st.table->self().incarnation, h.seq}, st.buf);
        send_frame(self, h.sender, st.buf);
      }
      break;
    }
    case message_type::leave: {
      leave l;
      if (decode_leave(frame, st.s.max_frame_bytes, l) != frame_error::none) return drop(self, key, "undecodable leave");
      if (!speaks_for(self, key, l.sender, identity_claim::leave)) return;
      changed = st.table->on_leave(l.sender, l.incarnation, now);
      break;
    }
    case message_type::state_request: {
      state_request r;
      if (decode_state_request(frame, st.s.max_frame_bytes, r) != frame_error::none) return drop(self, key, "undecodable state request");
      if (!speaks_for(self, key, r.requester, identity_claim::state_request)) return;
      if (!st.table->find(r.requester) || !st.connected.count(r.requester)) return;  // early, see heartbeats
      self->request(st.shard, std::chrono::seconds(30), state_atom::value, r.offset, r.length)
          .then([self, r](const state_slice& s) {
            state_chunk c{self->state.s.self.index, r.request_id, s.step, s.dim, s.offset, s.values};
            encode_state_chunk(c, self->state.buf);
            send_frame(self, r.requester, self->state.buf);
          });
      return;
    }
    case message_type::state_chunk: {
      state_chunk c;
      if (decode_state_chunk(frame, st.s.max_frame_bytes, c) != frame_error::none) return drop(self, key, "undecodable state chunk");
      auto& f = st.fetch;
      if (!speaks_for(self, key, c.sender, identity_claim::state_chunk)) return;
      if (!f.active || !f.plan) return drop(self, key, "unexpected state chunk");
      switch (f.plan->on_chunk(c.sender, std::move(c))) {
        case state_fetch::verdict::unexpected: return drop(self, key, "unexpected state chunk");
        case state_fetch::verdict::refused:
          ++st.stats.state_refused;
          return drop(self, key, "state chunk of the wrong range or beyond the value bound");
        case state_fetch::verdict::taken: return;
        case state_fetch::verdict::complete: break;
      }
      // All or nothing: half of someone else's model and half of ours is no model.
      for (auto& sl : f.plan->take_slices()) {
        ++f.installing;
        const auto n = static_cast<uint32_t>(sl.values.size());
        self->request(st.shard, std::chrono::seconds(30), install_atom::value, std::move(sl)).then([self, n](bool ok) {
          auto& f = self->state.fetch;
          --f.installing;
          if (ok) f.installed += n;
          if (f.active && f.installing == 0) finish_fetch(self);
        });
      }
      return;
    }
    default:
      return drop(self, key, "not a control message");
  }
  if (changed) apply_routing(self);
}

caf::behavior membership_behavior(self_ptr self, membership_settings s, caf::actor bridge, gossip_actor gossip,
                                  shard_actor shard, verifier_actor verifier) {
  auto& st = self->state;
  st.s = std::move(s);
  {
    std::vector<std::string> labels;
    for (const auto& line : st.s.identities.lines()) labels.push_back(line.label);
    st.names = peer_names(std::move(labels));
  }
  st.bridge = std::move(bridge);
  st.gossip = std::move(gossip);
  st.shard = std::move(shard);
  st.verifier = std::move(verifier);
  if (!st.s.identities.owns(st.s.self.public_key, st.s.self.index))
    throw std::invalid_argument("membership: our key is not key line " + std::to_string(st.s.self.index) +
                                " of the allowlist (peer i is the i-th key line)");
  st.table = std::make_unique<membership>(st.s.self, st.s.timeouts, now_s());
  // Contacts: their keys come from our allowlist, matched by endpoint.
  uint32_t cid = contact_id_base;
  const auto& lines = st.s.identities.lines();
  for (auto& ep : st.s.join) {
    auto it = std::find_if(lines.begin(), lines.end(), [&](const authorized_peer& a) { return a.endpoint == ep; });
    if (it == lines.end())
      throw std::invalid_argument("--join " + ep + ": no key for it in the authorized_peers file (add a line 'KEY " +
                                  ep + "')");
    if (it->public_key == st.s.self.public_key) continue;  // ourselves
    self->send(st.bridge, add_peer_atom::value, cid, ep, it->public_key);
    st.contacts_pending.push_back(cid++);
  }
  send_join(self);
  self->send(self, tick_atom::value);
  self->send(st.gossip, watch_atom::value, caf::actor_cast<caf::actor>(self));
  return {
      [self](quarantine_atom, uint32_t peer, uint8_t) {
        if (peer != self->state.s.self.index && self->state.quarantined.insert(peer).second) apply_routing(self);
      },
      [self](tick_atom) {
        auto& st = self->state;
        const double now = now_s();
        bool changed = st.table->tick(now);
        ++st.ticks;
        encode_heartbeat(heartbeat{st.s.self.index, st.table->self().incarnation, ++st.seq}, st.buf);
        st.beats.sent(st.seq, now);
        for (auto& [i, p] : st.connected) send_frame(self, i, st.buf);
        if (!st.contacts_pending.empty() && st.ticks % 4 == 0) send_join(self);
        if (changed) apply_routing(self);
        if (st.table->version() != st.version_spread || st.ticks % 8 == 0) spread(self);
        self->delayed_send(self, ms(st.s.heartbeat_s), tick_atom::value);
      },
      [self](frame_atom, const std::string& key, const wire_frame& w) { on_frame(self, key, w); },
      [self](fetch_atom, uint32_t dim, double timeout_s) -> caf::result<int32_t> {
        auto& st = self->state;
        if (donors_now(self).empty() || st.fetch.active) return int32_t{-1};
        auto& f = st.fetch;
        const uint64_t generation = f.generation + 1;
        f = fetch_job{};
        f.generation = generation;
        f.active = true;
        f.reply = self->make_response_promise();
        if (!st.verifier) {
          start_fetch(self, dim, timeout_s);
          return f.reply;
        }
        // Donors in the order of our verifier's standings (docs/trust.md,
        // "Reputation"); a verifier that does not answer leaves index order.
        auto go = [self, dim, timeout_s, generation](reputation r) {
          auto& f = self->state.fetch;
          if (!f.active || f.generation != generation || f.plan) return;
          f.standing = std::move(r);
          start_fetch(self, dim, timeout_s);
        };
        self->request(st.verifier, std::chrono::seconds(2), stats_atom::value)
            .then([go](const verifier_stats& vs) { go(reputation_of(vs)); }, [go](caf::error&) { go(reputation{}); });
        return f.reply;
      },
      [self](fetch_atom, uint64_t generation) {  // deadline of one attempt
        auto& f = self->state.fetch;
        if (!f.active || !f.plan || generation != f.generation || f.installing > 0 || f.plan->complete()) return;
        const auto missing = f.plan->missing_from();
        auto again = f.plan->on_deadline(f.standing.by_standing(donors_now(self)));
        std::cerr << self->state.names(self->state.s.self.index) << ": state transfer: no answer in time from "
                  << name_list(self->state, missing)
                  << (f.plan->failed() ? "; no donor left, training on from our own parameters\n"
                                       : "; asking other donors\n");
        if (f.plan->failed()) return finish_fetch(self);  // installs nothing
        ++f.generation;
        ask_donors(self, std::move(again));
      },
      [self](leave_atom) -> bool {
        auto& st = self->state;
        st.table->leave();
        encode_leave(leave{st.s.self.index, st.table->self().incarnation}, st.buf);
        for (auto& [i, p] : st.connected) send_frame(self, i, st.buf);
        return true;
      },
      [self](members_atom) -> std::vector<uint32_t> { return self->state.table->alive(); },
      [self](stats_atom) -> membership_stats { return self->state.stats; },
  };
}

}  // namespace

caf::actor spawn_membership(caf::actor_system& sys, membership_settings s, caf::actor bridge, gossip_actor gossip,
                            shard_actor shard, verifier_actor verifier) {
  return sys.spawn(membership_behavior, std::move(s), std::move(bridge), std::move(gossip), std::move(shard),
                   std::move(verifier));
}

}  // namespace murmur
