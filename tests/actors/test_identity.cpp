// One authorized peer must not be able to pass itself off as another, or
// talk the others into evicting a live one (issue 10): the membership
// table's rules for relayed records (membership.hpp), and the membership
// actor's refusal of frames claiming an index their key does not own
// (membership_actor.hpp), against every incarnation trick we could think of.
#include <catch2/catch.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/membership.hpp"
#include "membership_records.hpp"
#include "actors/membership_actor.hpp"
#include "actors/zmq_bridge.hpp"
#include "protocols/state_transfer_messages.hpp"

// The fake bridge hands the last spread table back to the test.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::membership_update)

using namespace murmur;

namespace {

using test::ep;
using test::peer;
using test::update_of;

// Everything a hostile peer `a` can relay about `v` when we hold v at inc.
std::vector<peer_info> lies_about(uint32_t v, uint64_t inc) {
  std::vector<peer_info> lies;
  for (uint64_t i : {inc, inc + 1, inc + 1000, UINT64_MAX - 1, UINT64_MAX})
    for (auto s : {peer_status::alive, peer_status::suspect, peer_status::dead, peer_status::left}) {
      if (i == inc && s == peer_status::alive) continue;  // the truth
      lies.push_back(peer(v, i, s));
      peer_info moved = peer(v, i, s);
      moved.endpoint = "tcp://attacker:6666";
      lies.push_back(moved);
    }
  return lies;
}

}  // namespace

TEST_CASE("identity: relayed records cannot evict, inflate or move a peer that has spoken", "[membership][identity]") {
  const uint64_t inc = 1700000000000;  // incarnations are wall-clock ms
  membership m(peer(0, inc), {2.0, 5.0}, 0.0);
  REQUIRE(m.on_join(peer(1, inc), 0.0));  // the victim, its own word
  REQUIRE(m.on_join(peer(2, inc), 0.0));  // the attacker, authorized as peer 2
  const auto v = m.version();
  double now = 0;
  for (const auto& lie : lies_about(1, inc)) {
    now += 0.01;
    CHECK_FALSE(m.on_update(update_of(2, inc, {peer(2, inc), lie}), now));
    m.on_heartbeat(1, inc, now);  // the victim keeps talking
  }
  CHECK(m.version() == v);
  CHECK(m.find(1) == peer(1, inc));
  // Nor all the lies in one update, nor over a long time.
  for (int k = 0; k < 400; ++k) {
    now += 0.25;
    m.on_update(update_of(2, inc, lies_about(1, inc)), now);
    m.on_heartbeat(1, inc, now);
    m.on_heartbeat(2, inc, now);
    m.tick(now);
  }
  CHECK(m.find(1) == peer(1, inc));
  CHECK(m.alive() == std::vector<uint32_t>{0, 1, 2});

  // Its own word still works: a restart (higher incarnation, new port) and a leave.
  CHECK(m.on_join(peer(1, inc + 5000), now));
  CHECK(m.find(1) == peer(1, inc + 5000));
  CHECK(m.on_leave(1, inc + 5000, now));
  CHECK(m.find(1)->status == peer_status::left);
  // ... and no relay brings it back.
  CHECK_FALSE(m.on_update(update_of(2, inc, {peer(1, inc + 6000)}), now));
  CHECK(m.find(1)->status == peer_status::left);
}

TEST_CASE("identity: a relay only discovers, and the peer's own word overrides it at any incarnation",
          "[membership][identity]") {
  const uint64_t inc = 1700000000000;
  membership m(peer(0, inc), {2.0, 5.0}, 0.0);
  // Relayed dead/left/suspect about an unknown index: not even stored.
  CHECK_FALSE(m.on_update(update_of(2, inc, {peer(3, inc, peer_status::dead), peer(4, inc, peer_status::left),
                                             peer(5, inc, peer_status::suspect)}),
                          0.0));
  CHECK_FALSE(m.find(3));
  CHECK_FALSE(m.find(4));
  CHECK_FALSE(m.find(5));
  // The attacker announces the victim first, inflated and elsewhere.
  peer_info inflated{1, "tcp://attacker:6666", "", UINT64_MAX, peer_status::alive};
  CHECK(m.on_update(update_of(2, inc, {peer(2, inc), inflated}), 0.0));
  CHECK(m.find(1) == inflated);
  // A higher relay replaces a relay (rumour against rumour) ...
  CHECK_FALSE(m.on_update(update_of(2, inc, {peer(1, inc)}), 0.1));
  CHECK(m.find(1) == inflated);
  // ... but the victim's own word replaces any relay, whatever its incarnation.
  CHECK(m.on_update(update_of(1, inc, {peer(1, inc), peer(0, inc)}), 0.5));
  CHECK(m.find(1) == peer(1, inc));
  CHECK(m.last_heard(1) == 0.5);
  // From then on it is the victim's alone: heartbeats at its incarnation keep it alive.
  double now = 0.5;
  for (int k = 0; k < 100; ++k) {
    now += 0.25;
    m.on_update(update_of(2, inc, {peer(2, inc), inflated, peer(1, inc, peer_status::dead)}), now);
    m.on_heartbeat(1, inc, now);
    m.tick(now);
  }
  CHECK(m.find(1) == peer(1, inc));
  // A join works the same way against a relayed entry.
  CHECK(m.on_update(update_of(2, inc, {peer(7, UINT64_MAX)}), now));
  CHECK(m.on_join(peer(7, inc), now));
  CHECK(m.find(7) == peer(7, inc));
}

TEST_CASE("identity: relays cannot inflate our incarnation, so a restart reclaims the index",
          "[membership][identity]") {
  const uint64_t start = 1700000000000;  // ms
  membership victim(peer(1, start), {2.0, 5.0}, 0.0);
  membership other(peer(0, start), {2.0, 5.0}, 0.0);
  other.on_join(victim.self(), 0.0);
  // 100 s of an attacker relaying "you are dead/left/suspect/moved" at every
  // incarnation, 100 frames a second.
  double now = 0;
  for (int k = 0; k < 10000; ++k) {
    now += 0.01;
    const uint64_t cur = victim.self().incarnation;
    victim.on_update(update_of(2, start, lies_about(1, cur)), now);
    victim.on_update(update_of(2, start, {peer(1, cur + 1, peer_status::dead)}), now);
    if (k % 25 == 0) {
      other.on_update(victim.snapshot(), now);  // its own word reaches peer 0
      other.on_heartbeat(1, victim.self().incarnation, now);
    }
  }
  other.on_update(victim.snapshot(), now);
  other.tick(now);
  // At most one relay-caused refutation per min_refute_interval_s.
  CHECK(victim.self().incarnation > start);
  CHECK(victim.self().incarnation <= start + 1 + static_cast<uint64_t>(now / min_refute_interval_s));
  CHECK(victim.self().status == peer_status::alive);
  CHECK(other.find(1)->incarnation == victim.self().incarnation);
  CHECK(other.find(1)->status == peer_status::alive);
  // A restart 1 s later comes with the wall clock's incarnation, above every
  // refutation of the previous life, and peer 0 takes it.
  const uint64_t restart = start + static_cast<uint64_t>(now * 1000) + 1000;
  CHECK(other.on_join(peer(1, restart), now + 1));
  CHECK(other.find(1) == peer(1, restart));

  // A refutation from a genuine rumour (someone's own timeout) still happens
  // at once, and a relayed record above our incarnation is ignored.
  membership me(peer(5, start), {}, 0.0);
  CHECK_FALSE(me.on_update(update_of(0, start, {peer(5, start + 7, peer_status::dead)}), 0.0));
  CHECK(me.self().incarnation == start);
  CHECK(me.on_update(update_of(0, start, {peer(5, start, peer_status::dead)}), 0.0));
  CHECK(me.self().incarnation == start + 1);
  // Our own key speaking of us (another process with it) is refuted at any incarnation.
  CHECK(me.on_join(peer(5, start + 9), 0.0));
  CHECK(me.self().incarnation == start + 10);
}

// --- The membership actor: frames claiming an index their key does not own.

namespace {

using events_atom = caf::atom_constant<caf::atom("events")>;

// Stands in for zmq_bridge: records connects and disconnects, keeps the
// frames the membership actor sends.
struct fake_bridge_state {
  std::vector<std::string> events;
  std::vector<std::pair<uint32_t, wire_frame>> frames;
  static inline const char* name = "fake_bridge";
};

caf::behavior fake_bridge(caf::stateful_actor<fake_bridge_state>* self) {
  return {
      [self](add_peer_atom, uint32_t id, const std::string& endpoint, const std::string& key) {
        self->state.events.push_back("add " + std::to_string(id) + " " + endpoint + " " + key);
      },
      [self](remove_peer_atom, uint32_t id) { self->state.events.push_back("remove " + std::to_string(id)); },
      [self](control_atom, uint32_t to, const wire_frame& w) { self->state.frames.emplace_back(to, w); },
      [self](events_atom) { return self->state.events; },
      // The last membership_update sent: the actor's table as it spreads it.
      [self](caf::get_atom) {
        for (auto it = self->state.frames.rbegin(); it != self->state.frames.rend(); ++it) {
          membership_update u;
          if (decode_membership_update(*it->second.bytes, max_membership_frame_bytes, u) == frame_error::none) return u;
        }
        return membership_update{};
      },
  };
}

wire_frame wire(const std::vector<std::byte>& b) { return wire_frame{std::make_shared<const std::vector<std::byte>>(b)}; }

}  // namespace

TEST_CASE("identity: the membership actor refuses frames claiming another peer and counts them",
          "[membership][identity][actors]") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  const auto k0 = generate_curve_keys().public_key, k1 = generate_curve_keys().public_key,
             k2 = generate_curve_keys().public_key;
  const uint64_t inc = 1700000000000;
  auto bridge = sys.spawn(fake_bridge);
  membership_settings s;
  s.self = peer_info{0, ep(0), k0, inc, peer_status::alive};
  s.identities = peer_identities::from_keys({k0, k1, k2});
  auto members = spawn_membership(sys, s, bridge, {}, {}, {});
  const peer_info victim{1, ep(1), k1, inc, peer_status::alive};
  const peer_info attacker{2, ep(2), k2, inc, peer_status::alive};

  std::vector<std::byte> b;
  auto send = [&](const std::string& key) { self->send(members, frame_atom::value, key, wire(b)); };
  encode_membership_join(membership_join{victim}, b);
  const auto victims_join = b;
  send(k1);
  encode_membership_join(membership_join{attacker}, b);
  send(k2);

  // The attacker (key k2 = peer 2) tries everything on peer 1.
  b = victims_join;
  send(k2);  // replayed join of the victim                               join 1
  peer_info forged = victim;
  forged.incarnation = UINT64_MAX;
  forged.endpoint = "tcp://attacker:6666";
  encode_membership_join(membership_join{forged}, b);
  send(k2);  // join for index 1, max incarnation, its own endpoint       join 2
  forged.public_key = k2;
  encode_membership_join(membership_join{forged}, b);
  send(k2);  // ... with its own key in the record                        join 3
  peer_info own_index_other_key = attacker;
  own_index_other_key.public_key = k1;
  encode_membership_join(membership_join{own_index_other_key}, b);
  send(k2);  // its own index, the victim's key                           record 1
  encode_membership_update(update_of(1, UINT64_MAX, {forged}), b);
  send(k2);  // update whose sender is the victim                         update 1
  // Relays about the victim (checked by the table: ignored, not refused) ...
  auto lies = lies_about(1, inc);
  for (auto& l : lies) l.public_key = k1;
  for (const auto& lie : lies) {
    encode_membership_update(update_of(2, inc, {attacker, lie}), b);
    send(k2);
  }
  // ... and a relayed record binding the victim's index to the attacker's key.
  peer_info rebound = victim;
  rebound.public_key = k2;
  rebound.incarnation = inc + 1;
  encode_membership_update(update_of(2, inc, {attacker, rebound}), b);
  send(k2);  //                                                           record 2
  encode_heartbeat(heartbeat{1, UINT64_MAX, 1}, b);
  send(k2);  //                                                           heartbeat 1
  encode_heartbeat_ack(heartbeat_ack{1, inc, 1}, b);
  send(k2);  //                                                           heartbeat 2
  encode_leave(leave{1, inc}, b);
  send(k2);  //                                                           leave 1
  encode_state_request(state_request{1, 7, 0, 10}, b);
  send(k2);  //                                                           state_request 1
  encode_state_chunk(state_chunk{1, 7, 3, 10, 0, std::vector<float>(10, 1.f)}, b);
  send(k2);  //                                                           state_chunk 1

  std::vector<uint32_t> alive;
  self->request(members, std::chrono::seconds(5), members_atom::value)
      .receive([&](std::vector<uint32_t>& x) { alive = x; }, [](caf::error& e) { FAIL(to_string(e)); });
  CHECK(alive == std::vector<uint32_t>{0, 1, 2});
  membership_stats st;
  self->request(members, std::chrono::seconds(5), stats_atom::value)
      .receive([&](membership_stats& x) { st = x; }, [](caf::error& e) { FAIL(to_string(e)); });
  auto refused = [&](identity_claim k) { return st.identity_refused[static_cast<size_t>(k)]; };
  CHECK(refused(identity_claim::join) == 3);
  CHECK(refused(identity_claim::record) == 2);
  CHECK(refused(identity_claim::update) == 1);
  CHECK(refused(identity_claim::heartbeat) == 2);
  CHECK(refused(identity_claim::leave) == 1);
  CHECK(refused(identity_claim::state_request) == 1);
  CHECK(refused(identity_claim::state_chunk) == 1);
  CHECK(st.identity_refused_total() == 11);

  // The table as the actor spreads it: the victim unchanged.
  membership_update table;
  self->request(bridge, std::chrono::seconds(5), caf::get_atom::value)
      .receive([&](membership_update& u) { table = u; }, [](caf::error& e) { FAIL(to_string(e)); });
  REQUIRE(table.peers.size() == 3);
  CHECK(table.peers[1] == victim);
  CHECK(table.peers[2] == attacker);
  // The bridge was connected to the victim once, at its own endpoint and key, and never dropped it.
  std::vector<std::string> events;
  self->request(bridge, std::chrono::seconds(5), events_atom::value)
      .receive([&](std::vector<std::string>& e) { events = e; }, [](caf::error& e) { FAIL(to_string(e)); });
  CHECK(std::count(events.begin(), events.end(), "add 1 " + ep(1) + " " + k1) == 1);
  CHECK(std::count(events.begin(), events.end(), "remove 1") == 0);
  for (auto& e : events) CHECK(e.find("attacker") == std::string::npos);

  // The victim's own restart is still taken.
  peer_info restarted{1, ep(1, 7), k1, inc + 60000, peer_status::alive};
  encode_membership_join(membership_join{restarted}, b);
  send(k1);
  self->request(members, std::chrono::seconds(5), members_atom::value)
      .receive([&](std::vector<uint32_t>& x) { alive = x; }, [](caf::error& e) { FAIL(to_string(e)); });
  CHECK(alive == std::vector<uint32_t>{0, 1, 2});
  self->request(bridge, std::chrono::seconds(5), caf::get_atom::value)
      .receive([&](membership_update& u) { table = u; }, [](caf::error& e) { FAIL(to_string(e)); });
  REQUIRE(table.peers.size() == 3);
  CHECK(table.peers[1] == restarted);

  caf::anon_send_exit(members, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(bridge, caf::exit_reason::user_shutdown);
}
