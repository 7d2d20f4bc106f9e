#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>

#include "actors/membership.hpp"
#include "membership_records.hpp"

using namespace murmur;

namespace {

using test::ep;
using test::peer;
using test::update_of;

peer_status status_of(const membership& m, uint32_t i) {
  auto p = m.find(i);
  REQUIRE(p);
  return p->status;
}

uint64_t incarnation_of(const membership& m, uint32_t i) {
  auto p = m.find(i);
  REQUIRE(p);
  return p->incarnation;
}

// Through the wire codec, as a snapshot would really travel.
membership_update via_wire(const membership_update& u) {
  std::vector<std::byte> frame;
  encode_membership_update(u, frame);
  REQUIRE(frame.size() <= max_membership_frame_bytes);
  membership_update out;
  REQUIRE(decode_membership_update(frame, max_membership_frame_bytes, out) == frame_error::none);
  return out;
}

bool all_agree(const std::vector<membership>& t) {
  for (const auto& m : t)
    if (m.members() != t.front().members()) return false;
  return true;
}

}  // namespace

TEST_CASE("membership: a fresh table holds only self", "[membership]") {
  membership m(peer(7, 3), {}, 0.0);
  CHECK(m.self() == peer(7, 3));
  CHECK(m.members() == std::vector<peer_info>{peer(7, 3)});
  CHECK(m.alive() == std::vector<uint32_t>{7});
  CHECK(m.version() == 0);
  CHECK(m.snapshot() == update_of(7, 3, {peer(7, 3)}));
  CHECK_FALSE(m.find(1));
  CHECK_FALSE(m.last_heard(7));
  CHECK_FALSE(m.tick(1e9));  // never marks self
  CHECK(status_of(m, 7) == peer_status::alive);

  // Self is taken as alive whatever it says.
  CHECK(membership(peer(1, 0, peer_status::dead), {}, 0.0).self().status == peer_status::alive);
  CHECK_THROWS_AS(membership(peer_info{1, "udp://x:1", "", 0, peer_status::alive}, {}, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(membership(peer(1), {-1.0, 5.0}, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(membership(peer(1), {2.0, std::nan("")}, 0.0), std::invalid_argument);
}

TEST_CASE("membership: joins spread by snapshot exchange until 4 tables agree", "[membership]") {
  std::vector<membership> t;
  for (uint32_t i = 0; i < 4; ++i) t.emplace_back(peer(i), membership_timeouts{}, 0.0);
  // 1, 2, 3 each know only peer 0 and join it.
  for (uint32_t i = 1; i < 4; ++i) {
    CHECK(t[0].on_join(t[i].self(), 0.0));
    CHECK(t[i].on_update(t[0].snapshot(), 0.0));  // 0 answers with its table
  }
  CHECK(t[0].alive() == std::vector<uint32_t>{0, 1, 2, 3});
  CHECK_FALSE(all_agree(t));  // 1 has not heard of 2 and 3 yet

  std::mt19937 rng(42);
  int rounds = 0;
  double now = 0;
  while (!all_agree(t)) {
    REQUIRE(++rounds < 50);
    now += 0.1;
    for (uint32_t i = 0; i < 4; ++i) {
      uint32_t j = (i + 1 + rng() % 3) % 4;  // one random other peer
      t[j].on_update(via_wire(t[i].snapshot()), now);
    }
  }
  for (const auto& m : t) {
    CHECK(m.alive() == std::vector<uint32_t>{0, 1, 2, 3});
    CHECK(m.members() == std::vector<peer_info>{peer(0), peer(1), peer(2), peer(3)});
  }
}

TEST_CASE("membership: silence makes a peer suspect then dead at the right times", "[membership]") {
  membership m(peer(0), {2.0, 5.0}, 0.0);
  REQUIRE(m.on_join(peer(1), 0.0));
  REQUIRE(m.on_join(peer(2), 0.0));

  CHECK_FALSE(m.tick(2.0));  // exactly suspect_s: not yet
  CHECK(status_of(m, 1) == peer_status::alive);
  const auto v = m.version();
  CHECK_FALSE(m.tick(2.01));  // suspect is still routable: alive() unchanged
  CHECK(m.version() == v + 1);
  CHECK(status_of(m, 1) == peer_status::suspect);
  CHECK(m.alive() == std::vector<uint32_t>{0, 1, 2});

  // The dead deadline is last_heard + suspect_s + dead_s, independent of
  // when the tick that noticed the suspicion ran.
  CHECK_FALSE(m.tick(7.0));
  CHECK(status_of(m, 1) == peer_status::suspect);
  CHECK(m.tick(7.01));
  CHECK(status_of(m, 1) == peer_status::dead);
  CHECK(status_of(m, 2) == peer_status::dead);
  CHECK(m.alive() == std::vector<uint32_t>{0});
  CHECK(status_of(m, 0) == peer_status::alive);

  // One late tick goes straight from alive to dead.
  membership late(peer(0), {2.0, 5.0}, 0.0);
  late.on_join(peer(1), 0.0);
  CHECK(late.tick(100.0));
  CHECK(status_of(late, 1) == peer_status::dead);

  // A suspicion heard as a rumour is not ours: only our own silence clock
  // counts (a hostile peer must not talk us into dropping a live one).
  membership r(peer(0), {2.0, 5.0}, 0.0);
  r.on_join(peer(1), 0.0);
  const auto rv = r.version();
  CHECK_FALSE(r.on_update(update_of(2, 0, {peer(1, 0, peer_status::suspect)}), 1.0));
  CHECK(status_of(r, 1) == peer_status::alive);
  CHECK(r.version() == rv);
  CHECK_FALSE(r.tick(2.0));
  CHECK(status_of(r, 1) == peer_status::alive);
  r.tick(7.01);
  CHECK(status_of(r, 1) == peer_status::dead);
}

TEST_CASE("membership: a heartbeat clears suspicion and restarts the silence clock", "[membership]") {
  membership m(peer(0), {2.0, 5.0}, 0.0);
  m.on_join(peer(1, 4), 0.0);
  m.tick(2.5);
  REQUIRE(status_of(m, 1) == peer_status::suspect);

  // Wrong incarnations and unknown senders change nothing.
  auto v = m.version();
  CHECK_FALSE(m.on_heartbeat(1, 3, 3.0));
  CHECK_FALSE(m.on_heartbeat(1, 5, 3.0));
  CHECK_FALSE(m.on_heartbeat(9, 0, 3.0));
  CHECK_FALSE(m.on_heartbeat(0, 0, 3.0));  // self
  CHECK(m.version() == v);
  CHECK(status_of(m, 1) == peer_status::suspect);

  CHECK_FALSE(m.on_heartbeat(1, 4, 3.0));  // alive() unchanged, members() changed
  CHECK(m.version() == v + 1);
  CHECK(status_of(m, 1) == peer_status::alive);
  CHECK(m.last_heard(1) == 3.0);

  // Heartbeats on an alive peer only refresh the clock: no version bump.
  v = m.version();
  m.on_heartbeat(1, 4, 4.0);
  CHECK(m.version() == v);
  CHECK_FALSE(m.tick(6.0));
  CHECK(status_of(m, 1) == peer_status::alive);
  m.tick(6.01);
  CHECK(status_of(m, 1) == peer_status::suspect);

  // An update from the suspect counts as hearing from it, as does a join.
  m.on_update(update_of(1, 4, {peer(1, 4)}), 6.5);
  CHECK(status_of(m, 1) == peer_status::alive);
  m.tick(9.0);
  REQUIRE(status_of(m, 1) == peer_status::suspect);
  m.on_join(peer(1, 4), 9.5);
  CHECK(status_of(m, 1) == peer_status::alive);
  CHECK(m.last_heard(1) == 9.5);
}

TEST_CASE("membership: dead is final for its incarnation, a restart revives", "[membership]") {
  membership m(peer(0), {2.0, 5.0}, 0.0);
  m.on_join(peer(1, 2), 0.0);
  REQUIRE(m.tick(10.0));
  REQUIRE(status_of(m, 1) == peer_status::dead);
  const auto v = m.version();

  CHECK_FALSE(m.on_heartbeat(1, 2, 11.0));
  CHECK_FALSE(m.on_heartbeat(1, 1, 11.0));
  CHECK_FALSE(m.on_heartbeat(1, 3, 11.0));  // a new life must first bring its record
  CHECK_FALSE(m.on_join(peer(1, 2), 11.0));
  CHECK_FALSE(m.on_join(peer(1, 1), 11.0));
  CHECK_FALSE(m.on_update(update_of(1, 2, {peer(1, 2)}), 11.0));
  CHECK_FALSE(m.on_update(update_of(3, 0, {peer(1, 2, peer_status::suspect)}), 11.0));
  CHECK(m.version() == v);
  CHECK(status_of(m, 1) == peer_status::dead);
  CHECK(m.alive() == std::vector<uint32_t>{0});

  // Restarted with a higher incarnation, on a new port: replaced entirely.
  CHECK(m.on_join(peer(1, 3), 12.0));
  CHECK(m.find(1) == peer(1, 3));
  CHECK(m.find(1)->endpoint != ep(1, 2));
  CHECK(m.last_heard(1) == 12.0);
  CHECK(m.alive() == std::vector<uint32_t>{0, 1});
  CHECK_FALSE(m.tick(14.0));
  CHECK(status_of(m, 1) == peer_status::alive);

  // A higher-incarnation record relayed by someone else is not enough: only
  // the peer's own word (its update) brings its new life.
  membership g(peer(0), {2.0, 5.0}, 0.0);
  g.on_join(peer(1, 2), 0.0);
  g.tick(10.0);
  CHECK_FALSE(g.on_update(update_of(3, 0, {peer(1, 3)}), 11.0));
  CHECK(status_of(g, 1) == peer_status::dead);
  CHECK(g.on_update(update_of(1, 3, {peer(1, 3), peer(3, 0)}), 11.0));
  CHECK(g.find(1) == peer(1, 3));
  // A new life gets a full suspect_s from when we learnt of it.
  CHECK(g.last_heard(1) == 11.0);
  g.tick(13.0);
  CHECK(status_of(g, 1) == peer_status::alive);
  g.tick(13.01);
  CHECK(status_of(g, 1) == peer_status::suspect);
}

TEST_CASE("membership: the endpoint and key of a known index change only with its incarnation", "[membership]") {
  membership m(peer(0), {}, 0.0);
  m.on_join(peer(1, 5), 0.0);
  const auto v = m.version();
  peer_info moved = peer(1, 5);
  moved.endpoint = "tcp://elsewhere:6000";
  CHECK_FALSE(m.on_join(moved, 1.0));
  peer_info keyed = peer(1, 5);
  keyed.public_key = std::string(public_key_chars, 'k');
  CHECK_FALSE(m.on_update(update_of(1, 5, {keyed}), 1.0));
  moved.incarnation = 4;
  CHECK_FALSE(m.on_join(moved, 1.0));  // lower incarnation: ignored
  CHECK(m.find(1) == peer(1, 5));
  CHECK(m.version() == v);

  // Worse news at the same incarnation (its own) moves the status, not the endpoint.
  moved.incarnation = 5;
  moved.status = peer_status::left;
  CHECK(m.on_update(update_of(1, 5, {moved}), 1.0));
  CHECK(m.find(1) == peer(1, 5, peer_status::left));

  // Relayed by another peer, not even a higher incarnation moves them.
  keyed.incarnation = 6;
  CHECK_FALSE(m.on_update(update_of(2, 0, {keyed}), 2.0));
  CHECK(m.find(1) == peer(1, 5, peer_status::left));
  CHECK(m.on_update(update_of(1, 6, {keyed}), 2.0));
  CHECK(m.find(1) == keyed);
}

TEST_CASE("membership: self-refutation raises our incarnation above the rumour", "[membership]") {
  membership me(peer(1), {}, 0.0);
  membership other(peer(0), {2.0, 5.0}, 0.0);
  other.on_join(me.self(), 0.0);
  other.tick(3.0);
  REQUIRE(status_of(other, 1) == peer_status::suspect);

  // `other` spreads its suspicion; we hear it and refute.
  const auto v = me.version();
  CHECK(me.on_update(other.snapshot(), 3.0));
  CHECK(me.self() == peer_info{1, ep(1), "", 1, peer_status::alive});
  CHECK(me.version() == v + 1);
  CHECK(status_of(me, 1) == peer_status::alive);
  CHECK(me.snapshot().sender_incarnation == 1);

  // Our snapshot overrides the rumour (higher incarnation wins).
  CHECK(other.on_update(me.snapshot(), 3.5));
  CHECK(other.find(1) == peer_info{1, ep(1), "", 1, peer_status::alive});
  CHECK(other.last_heard(1) == 3.5);

  // Old rumours and our own record echoed back change nothing.
  CHECK_FALSE(me.on_update(update_of(0, 0, {peer(1, 0, peer_status::dead)}), 4.0));
  CHECK_FALSE(me.on_update(update_of(0, 0, {me.self()}), 4.0));
  CHECK(me.self().incarnation == 1);

  // Relayed above our incarnation: nobody accepts such a relay, and
  // following it would let a third party inflate our incarnation.
  CHECK_FALSE(me.on_update(update_of(0, 0, {peer(1, 7, peer_status::dead)}), 5.0));
  CHECK(me.self().incarnation == 1);
  // Relay-caused refutations: at most one per min_refute_interval_s.
  CHECK_FALSE(me.on_update(update_of(0, 0, {peer(1, 1, peer_status::dead)}), 3.5));
  CHECK(me.self().incarnation == 1);
  CHECK(me.on_update(update_of(0, 0, {peer(1, 1, peer_status::dead)}), 4.0));
  CHECK(me.self().incarnation == 2);
  // Our own key naming our index (a previous life, or another process with
  // our key), alive but higher: go above, at once.
  CHECK(me.on_join(peer(1, 9), 4.0));
  CHECK(me.self().incarnation == 10);
  // Another endpoint claiming our index at our incarnation: reassert ours.
  peer_info impostor{1, "tcp://impostor:1", "", 10, peer_status::alive};
  CHECK(me.on_join(impostor, 4.0));
  CHECK(me.self() == peer_info{1, ep(1), "", 11, peer_status::alive});
  // Heartbeats and leaves naming us are ignored.
  CHECK_FALSE(me.on_heartbeat(1, 11, 5.0));
  CHECK_FALSE(me.on_leave(1, 11, 5.0));
  CHECK(me.self().status == peer_status::alive);

  // At the top of the incarnation range there is nothing above to take.
  CHECK_FALSE(me.on_join(peer(1, UINT64_MAX), 6.0));
  CHECK(me.self().incarnation == 11);
}

TEST_CASE("membership: leaving, ours and theirs", "[membership]") {
  membership m(peer(0), {2.0, 5.0}, 0.0);
  m.on_join(peer(1, 3), 0.0);
  m.on_join(peer(2, 3), 0.0);

  CHECK_FALSE(m.on_leave(1, 2, 1.0));  // a previous life
  CHECK_FALSE(m.on_leave(1, 4, 1.0));  // a life we have no record of
  CHECK_FALSE(m.on_leave(9, 0, 1.0));  // unknown
  CHECK(status_of(m, 1) == peer_status::alive);
  CHECK(m.on_leave(1, 3, 1.0));
  CHECK(status_of(m, 1) == peer_status::left);
  CHECK(m.alive() == std::vector<uint32_t>{0, 2});
  CHECK_FALSE(m.on_leave(1, 3, 1.0));  // idempotent

  // Nothing at the same incarnation overrides left, not even dead.
  const auto v = m.version();
  CHECK_FALSE(m.on_heartbeat(1, 3, 2.0));
  CHECK_FALSE(m.on_join(peer(1, 3), 2.0));
  CHECK_FALSE(m.on_update(update_of(2, 3, {peer(1, 3), peer(1, 3, peer_status::dead)}), 2.0));
  CHECK(m.version() == v);
  CHECK(m.tick(100.0));  // kills peer 2; peer 1 stays left
  CHECK(status_of(m, 1) == peer_status::left);
  CHECK(status_of(m, 2) == peer_status::dead);
  // A dead peer can still be recorded as having left.
  CHECK_FALSE(m.on_leave(2, 3, 101.0));  // dead -> left: alive() unchanged
  CHECK(status_of(m, 2) == peer_status::left);
  // A restart may rejoin.
  CHECK(m.on_join(peer(1, 4), 102.0));
  CHECK(status_of(m, 1) == peer_status::alive);

  // Our own leave: the final snapshot announces it and we stop refuting.
  membership me(peer(5), {}, 0.0);
  membership other(peer(0), {}, 0.0);
  other.on_join(me.self(), 0.0);
  me.on_join(other.self(), 0.0);
  const auto mv = me.version();
  me.leave();
  CHECK(me.version() == mv + 1);
  me.leave();
  CHECK(me.version() == mv + 1);
  CHECK(me.self().status == peer_status::left);
  CHECK(me.alive() == std::vector<uint32_t>{0});
  CHECK(me.snapshot().peers.at(1) == peer(5, 0, peer_status::left));
  CHECK(other.on_update(me.snapshot(), 1.0));
  CHECK(status_of(other, 5) == peer_status::left);
  CHECK_FALSE(me.on_update(update_of(0, 0, {peer(5, 0, peer_status::dead)}), 1.0));
  CHECK(me.self() == peer(5, 0, peer_status::left));
}

TEST_CASE("membership: worse news wins at equal incarnation, in any order", "[membership]") {
  const std::vector<peer_status> all = {peer_status::alive, peer_status::suspect, peer_status::dead,
                                        peer_status::left};
  // Among a peer's own records.
  for (auto a : all)
    for (auto b : all) {
      membership m(peer(0), {}, 0.0);
      m.on_update(update_of(1, 2, {peer(1, 2, a)}), 0.0);
      m.on_update(update_of(1, 2, {peer(1, 2, b)}), 0.0);
      // enum order is alive < suspect < dead < left; the update itself is
      // hearing from peer 1, which clears a suspicion.
      const auto worst = std::max(a, b);
      CHECK(status_of(m, 1) == (worst == peer_status::suspect ? peer_status::alive : worst));
    }
  // Incarnation dominates status both ways.
  membership m(peer(0), {}, 0.0);
  m.on_update(update_of(1, 2, {peer(1, 2, peer_status::left)}), 0.0);
  CHECK(m.on_update(update_of(1, 3, {peer(1, 3, peer_status::alive)}), 0.0));
  CHECK(m.find(1) == peer(1, 3));
  CHECK_FALSE(m.on_update(update_of(1, 2, {peer(1, 2, peer_status::left)}), 0.0));
  CHECK(m.find(1) == peer(1, 3));

  // Relayed dead/left records about unknown peers are not stored (only
  // alive relays discover); a stale alive relay then adds the index, and
  // our own silence clock drops it again.
  CHECK_FALSE(m.on_update(update_of(9, 0, {peer(4, 1, peer_status::dead), peer(5, 1, peer_status::left)}), 0.0));
  CHECK(m.members().size() == 2);
  CHECK(m.on_update(update_of(9, 0, {peer(4, 1), peer(5, 1)}), 0.0));
  CHECK(m.alive() == std::vector<uint32_t>{0, 1, 4, 5});
}

TEST_CASE("membership: version bumps exactly on changes of members()", "[membership]") {
  membership m(peer(0), {2.0, 5.0}, 0.0);
  uint64_t v = m.version();
  auto changed = [&] {
    const bool c = m.version() != v;
    CHECK(m.version() >= v);
    v = m.version();
    return c;
  };
  auto before = m.members();
  m.on_join(peer(1), 0.0);
  CHECK(changed());
  m.on_join(peer(1), 0.5);  // same record: refresh only
  CHECK_FALSE(changed());
  m.on_update(update_of(1, 0, {peer(0), peer(1)}), 0.5);
  CHECK_FALSE(changed());
  m.on_heartbeat(1, 0, 1.0);
  CHECK_FALSE(changed());
  m.tick(2.0);
  CHECK_FALSE(changed());
  m.tick(3.5);
  CHECK(changed());  // suspect
  m.tick(3.6);
  CHECK_FALSE(changed());
  m.on_heartbeat(1, 0, 4.0);
  CHECK(changed());  // alive again
  m.on_update(update_of(2, 0, {peer(2, 0, peer_status::dead)}), 4.0);
  CHECK(changed());
  m.on_leave(1, 0, 4.0);
  CHECK(changed());
  m.on_update(update_of(2, 0, {peer_info{3, "bad", "", 0, peer_status::alive}}), 4.0);
  CHECK_FALSE(changed());
  m.leave();
  CHECK(changed());

  // Equal versions mean equal members().
  membership a(peer(0), {}, 0.0);
  const auto m0 = a.members();
  const auto v0 = a.version();
  a.on_heartbeat(3, 0, 1.0);
  a.tick(1.0);
  CHECK((a.version() == v0 && a.members() == m0));
}

TEST_CASE("membership: invalid records are ignored", "[membership]") {
  membership m(peer(0), {}, 0.0);
  peer_info bad_ep{1, "tcp://host:0", "", 0, peer_status::alive};
  peer_info bad_key{2, ep(2), "short", 0, peer_status::alive};
  peer_info bad_status{3, ep(3), "", 0, static_cast<peer_status>(7)};
  peer_info good_key{4, ep(4), std::string(public_key_chars, 'Z'), 0, peer_status::alive};
  CHECK_FALSE(m.on_join(bad_ep, 0.0));
  CHECK_FALSE(m.on_join(peer(5, 0, peer_status::suspect), 0.0));  // a join must be alive
  CHECK(m.on_update(update_of(9, 0, {bad_ep, bad_key, bad_status, good_key}), 0.0));
  CHECK(m.alive() == std::vector<uint32_t>{0, 4});
  // An invalid join is not hearing from that peer either.
  CHECK(m.on_join(peer(6), 9.0));
  m.tick(11.5);
  REQUIRE(status_of(m, 6) == peer_status::suspect);
  peer_info bad6 = peer(6);
  bad6.public_key = "x";
  CHECK_FALSE(m.on_join(bad6, 11.5));
  CHECK(status_of(m, 6) == peer_status::suspect);
  // Nor does an invalid record about self trigger a refutation.
  CHECK_FALSE(m.on_update(update_of(9, 0, {peer_info{0, "nope", "", 5, peer_status::dead}}), 0.0));
  CHECK(m.self().incarnation == 0);
}

TEST_CASE("membership: the table holds at most max_peers entries", "[membership]") {
  membership m(peer(0), {}, 0.0);
  std::vector<peer_info> many;
  for (uint32_t i = 1; i < max_peers + 10; ++i) many.push_back(peer(i));
  CHECK(m.on_update(update_of(1, 0, many), 0.0));
  CHECK(m.members().size() == max_peers);
  CHECK(m.alive().size() == max_peers);
  CHECK_FALSE(m.find(max_peers));  // the first max_peers - 1 others were taken
  CHECK(m.find(max_peers - 1));
  CHECK_FALSE(m.on_join(peer(5000), 0.0));
  CHECK_FALSE(m.find(5000));
  // Known ones are still updated.
  CHECK(m.on_join(peer(3, 1), 0.0));
  CHECK(incarnation_of(m, 3) == 1);
  // A full table still fits one update frame.
  CHECK(via_wire(m.snapshot()) == m.snapshot());
}

TEST_CASE("membership: the same updates in any order give the same table", "[membership]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    // Relays: rumours about peers 1..12 (one endpoint per (index,
    // incarnation)), cut into updates from senders 100..103, each also
    // carrying its own (never contradicted) record, as a snapshot would.
    std::vector<peer_info> pool;
    for (int k = 0; k < 60; ++k)
      pool.push_back(peer(1 + rng() % 12, rng() % 4, static_cast<peer_status>(rng() % 4)));
    std::vector<membership_update> updates;
    for (size_t at = 0; at < pool.size();) {
      const size_t n = std::min(pool.size() - at, size_t{1 + rng() % 8});
      const uint32_t sender = 100 + rng() % 4;
      membership_update u{sender, 0, {peer(sender)}};
      for (size_t k = 0; k < n; ++k) {
        // Indices are distinct within one update (as decoders enforce).
        const auto& r = pool[at + k];
        auto same = std::find_if(u.peers.begin(), u.peers.end(), [&](const peer_info& p) { return p.index == r.index; });
        if (same == u.peers.end()) u.peers.push_back(r);
        else updates.push_back(update_of(sender, 0, {peer(sender), r}));
      }
      updates.push_back(std::move(u));
      at += n;
    }
    // Own words: peers 1..6 speak for themselves (alive, or left), some
    // lives older than the rumours about them.
    std::vector<peer_info> own;
    for (int k = 0; k < 15; ++k) {
      const auto r = peer(1 + rng() % 6, rng() % 4, rng() % 3 ? peer_status::alive : peer_status::left);
      own.push_back(r);
      updates.push_back(update_of(r.index, r.incarnation, {r}));
    }
    // What the rules say the outcome must be: a peer's own word (highest
    // incarnation, worse news at equal) if it spoke, else the highest alive
    // relay; relayed suspect/dead/left are never stored.
    std::map<uint32_t, peer_info> expect;
    auto better = [](const peer_info& r, const peer_info& e) {
      return r.incarnation > e.incarnation || (r.incarnation == e.incarnation && r.status > e.status);
    };
    for (const auto& r : own) {
      auto [it, fresh] = expect.emplace(r.index, r);
      if (!fresh && better(r, it->second)) it->second = r;
    }
    for (const auto& r : pool) {
      if (r.status != peer_status::alive || std::any_of(own.begin(), own.end(), [&](auto& o) { return o.index == r.index; }))
        continue;
      auto [it, fresh] = expect.emplace(r.index, r);
      if (!fresh && r.incarnation > it->second.incarnation) it->second = r;
    }
    std::vector<peer_info> want{peer(0)};
    for (auto& [i, p] : expect) want.push_back(p);
    for (uint32_t s = 100; s < 104; ++s)
      for (const auto& u : updates)
        if (u.sender == s) {
          want.push_back(peer(s));
          break;
        }

    for (int order = 0; order < 10; ++order) {
      std::shuffle(updates.begin(), updates.end(), rng);
      membership m(peer(0), {}, 0.0);
      double now = 0;
      for (auto u : updates) {
        std::shuffle(u.peers.begin(), u.peers.end(), rng);
        m.on_update(u, now += 0.01);
      }
      REQUIRE(m.members() == want);
    }
  }
}

TEST_CASE("membership: gossip swarm detects a crash and heals a false suspicion", "[membership]") {
  constexpr uint32_t n = 4;
  std::vector<membership> t;
  for (uint32_t i = 0; i < n; ++i) t.emplace_back(peer(i), membership_timeouts{2.0, 5.0}, 0.0);
  for (uint32_t i = 1; i < n; ++i) t[0].on_join(t[i].self(), 0.0);

  std::vector<bool> up(n, true);
  bool partition = false;  // drops everything between 0 and 2, both ways
  auto link = [&](uint32_t a, uint32_t b) {
    return up[a] && up[b] && !(partition && ((a == 0 && b == 2) || (a == 2 && b == 0)));
  };
  std::mt19937 rng(3);
  double now = 0;
  auto step = [&] {
    now += 0.5;
    for (uint32_t i = 0; i < n; ++i)
      for (uint32_t j = 0; j < n; ++j)
        if (i != j && link(i, j)) t[j].on_heartbeat(i, t[i].self().incarnation, now);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t j = (i + 1 + rng() % (n - 1)) % n;
      if (link(i, j)) t[j].on_update(via_wire(t[i].snapshot()), now);
    }
    for (uint32_t i = 0; i < n; ++i)
      if (up[i]) t[i].tick(now);
  };

  while (now < 5.0) step();
  for (uint32_t i = 0; i < n; ++i) REQUIRE(t[i].alive() == std::vector<uint32_t>{0, 1, 2, 3});
  REQUIRE(all_agree(t));

  // 0 and 2 cannot talk directly for long enough to declare each other
  // dead; 1 and 3, hearing both, do not take up that rumour. Once the link
  // is back, 0's table reaches 2 (and 2's reaches 0), each refutes with a
  // higher incarnation, which the other takes from its own word.
  partition = true;
  while (now < 14.0) step();
  CHECK(status_of(t[0], 2) == peer_status::dead);
  CHECK(status_of(t[2], 0) == peer_status::dead);
  for (uint32_t i : {1u, 3u}) CHECK(t[i].alive() == std::vector<uint32_t>{0, 1, 2, 3});
  partition = false;
  while (now < 25.0) step();
  CHECK(t[0].self().incarnation >= 1);
  CHECK(t[2].self().incarnation >= 1);
  CHECK(all_agree(t));
  for (uint32_t i = 0; i < n; ++i) CHECK(t[i].alive() == std::vector<uint32_t>{0, 1, 2, 3});
  for (uint32_t i = 0; i < n; ++i) CHECK(status_of(t[i], 2) == peer_status::alive);

  // Peer 3 crashes: the others all declare it dead within suspect_s + dead_s
  // (plus a step), and agree.
  up[3] = false;
  const double crash = now;
  while (now < crash + 7.0) step();
  for (uint32_t i = 0; i < 3; ++i) CHECK(status_of(t[i], 3) != peer_status::dead);
  while (now < crash + 7.5) step();
  for (uint32_t i = 0; i < 3; ++i) CHECK(status_of(t[i], 3) == peer_status::dead);
  const std::vector<membership> survivors(t.begin(), t.begin() + 3);
  CHECK(all_agree(survivors));
  for (uint32_t i = 0; i < 3; ++i) CHECK(t[i].alive() == std::vector<uint32_t>{0, 1, 2});
}
