// A quarantined peer is routed around (issue 10): the gossip actor tells its
// watchers of every quarantine, and the membership actor lays the topology
// over the live members without those it quarantined, so that on a ring the
// two peers beside it link up as if it had left. Before this, peers 0 and 2
// of a ring 0-1-2-3 that quarantined 3 each kept one neighbour, and the
// honest peers mixed over a path for the rest of the run.
#include <catch2/catch.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "actors/gossip_actor.hpp"
#include "actors/membership_actor.hpp"
#include "actors/zmq_bridge.hpp"
#include "membership_records.hpp"

using namespace murmur;

namespace {

// What a stand-in gossip actor was told, read by the test thread.
struct gossip_log {
  std::mutex mu;
  std::vector<std::vector<uint32_t>> nbrs;  // every neighbour list, in order
  std::vector<caf::actor> watchers;
  std::vector<uint32_t> last() {
    std::lock_guard<std::mutex> l(mu);
    return nbrs.empty() ? std::vector<uint32_t>{} : nbrs.back();
  }
};

// Records neighbour lists, and passes quarantine orders on to its watchers
// as the real gossip actor does.
gossip_actor::behavior_type forwarding_gossip(gossip_actor::pointer, std::shared_ptr<gossip_log> g) {
  return {
      [](mix_atom) { return true; },
      [](publish_atom, uint64_t) { return true; },
      [](mix_atom, uint64_t) { return true; },
      [](deliver_atom, uint32_t, const wire_frame&) {},
      [](sent_atom, uint32_t) {},
      [g](nbrs_atom, const std::vector<uint32_t>& ids, const std::vector<uint64_t>&) {
        std::lock_guard<std::mutex> l(g->mu);
        g->nbrs.push_back(ids);
      },
      [](resync_atom) {},
      [](segstart_atom) { return false; },
      [g](quarantine_atom, uint32_t peer, uint8_t cause) {
        std::lock_guard<std::mutex> l(g->mu);
        for (auto& w : g->watchers) caf::anon_send(w, quarantine_atom::value, peer, cause);
      },
      [g](watch_atom, caf::actor w) {
        std::lock_guard<std::mutex> l(g->mu);
        g->watchers.push_back(std::move(w));
      },
      [](stats_atom) { return gossip_counters{}; },
  };
}

// Stands in for zmq_bridge: records connects and disconnects.
struct bridge_log {
  std::mutex mu;
  std::vector<std::string> events;
  size_t count(const std::string& e) {
    std::lock_guard<std::mutex> l(mu);
    return static_cast<size_t>(std::count(events.begin(), events.end(), e));
  }
};

caf::behavior recording_bridge(caf::event_based_actor*, std::shared_ptr<bridge_log> b) {
  return {
      [b](add_peer_atom, uint32_t id, const std::string&, const std::string&) {
        std::lock_guard<std::mutex> l(b->mu);
        b->events.push_back("add " + std::to_string(id));
      },
      [b](remove_peer_atom, uint32_t id) {
        std::lock_guard<std::mutex> l(b->mu);
        b->events.push_back("remove " + std::to_string(id));
      },
      [](control_atom, uint32_t, const wire_frame&) {},
  };
}

template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

std::vector<uint32_t> sorted(std::vector<uint32_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("quarantine: the membership actor routes the ring around a peer it quarantined",
          "[membership][quarantine][actors]") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  std::vector<std::string> keys;
  for (int i = 0; i < 5; ++i) keys.push_back(generate_curve_keys().public_key);
  const uint64_t inc = 1700000000000;
  auto glog = std::make_shared<gossip_log>();
  auto blog = std::make_shared<bridge_log>();
  auto gossip = sys.spawn(forwarding_gossip, glog);
  auto bridge = sys.spawn(recording_bridge, blog);
  membership_settings s;
  s.self = peer_info{0, test::ep(0), keys[0], inc, peer_status::alive};
  s.identities = peer_identities::from_keys(keys);
  auto members = spawn_membership(sys, s, bridge, gossip, {}, {});

  std::vector<std::byte> b;
  for (uint32_t i = 1; i < 5; ++i) {
    encode_membership_join(membership_join{peer_info{i, test::ep(i), keys[i], inc, peer_status::alive}}, b);
    caf::anon_send(members, frame_atom::value, keys[i],
                   wire_frame{std::make_shared<const std::vector<std::byte>>(b)});
  }
  // Ring 0-1-2-3-4-0: peer 0's neighbours are 1 and 4.
  REQUIRE(eventually([&] { return sorted(glog->last()) == std::vector<uint32_t>{1, 4}; }));
  {
    std::lock_guard<std::mutex> l(glog->mu);
    REQUIRE(glog->watchers.size() == 1);  // the membership actor asked to hear of quarantines
  }

  // Peer 0's verifier quarantines peer 4: the ring closes over 0-1-2-3.
  caf::anon_send(gossip, quarantine_atom::value, uint32_t{4}, static_cast<uint8_t>(quarantine_cause::missed_answers));
  CHECK(eventually([&] { return sorted(glog->last()) == std::vector<uint32_t>{1, 3}; }));
  // It is still a live member we stay connected to (its frames are refused
  // and counted as quarantined, not as unknown).
  std::vector<uint32_t> alive;
  caf::scoped_actor self{sys};
  self->request(members, std::chrono::seconds(5), members_atom::value)
      .receive([&](std::vector<uint32_t>& x) { alive = x; }, [](caf::error& e) { FAIL(to_string(e)); });
  CHECK(alive == std::vector<uint32_t>{0, 1, 2, 3, 4});
  CHECK(blog->count("add 4") == 1);
  CHECK(blog->count("remove 4") == 0);

  // A repeated order, or one naming ourselves, changes nothing.
  const size_t lists = [&] {
    std::lock_guard<std::mutex> l(glog->mu);
    return glog->nbrs.size();
  }();
  caf::anon_send(gossip, quarantine_atom::value, uint32_t{4}, static_cast<uint8_t>(quarantine_cause::evidence));
  caf::anon_send(gossip, quarantine_atom::value, uint32_t{0}, static_cast<uint8_t>(quarantine_cause::evidence));
  self->request(members, std::chrono::seconds(5), members_atom::value)
      .receive([&](std::vector<uint32_t>&) {}, [](caf::error& e) { FAIL(to_string(e)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard<std::mutex> l(glog->mu);
    CHECK(glog->nbrs.size() == lists);
  }
  CHECK(sorted(glog->last()) == std::vector<uint32_t>{1, 3});

  caf::anon_send_exit(members, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(gossip, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(bridge, caf::exit_reason::user_shutdown);
}

TEST_CASE("quarantine: the gossip actor tells its watchers of every quarantine, earlier ones included",
          "[gossip][quarantine][actors]") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto model = std::shared_ptr<Sequential>(build_model("flatten,linear:2", {1, 2, 2}, 2).release());
  model->init(1);
  peer_settings s;
  s.id = 0;
  s.neighbours = {1, 2, 3};
  auto sink = sys.spawn([](transport_actor::pointer) -> transport_actor::behavior_type {
    return {[](send_atom, uint32_t, uint32_t, const wire_frame&) {}};
  });
  auto gossip = spawn_gossip(sys, s, model, sink);

  auto order = [&](uint32_t peer, quarantine_cause c) {
    self->send(gossip, quarantine_atom::value, peer, static_cast<uint8_t>(c));
  };
  order(2, quarantine_cause::evidence);  // before anyone watches
  self->send(gossip, watch_atom::value, caf::actor_cast<caf::actor>(self));
  order(3, quarantine_cause::missed_answers);
  order(3, quarantine_cause::evidence);  // already quarantined: no news
  order(0, quarantine_cause::evidence);  // ourselves: refused

  std::vector<std::pair<uint32_t, quarantine_cause>> heard;
  for (int k = 0; k < 2; ++k)
    self->receive([&](quarantine_atom, uint32_t peer, uint8_t c) { heard.emplace_back(peer, static_cast<quarantine_cause>(c)); },
                  caf::after(std::chrono::seconds(5)) >> [] { FAIL("no quarantine news within 5 s"); });
  CHECK(heard == std::vector<std::pair<uint32_t, quarantine_cause>>{{2, quarantine_cause::evidence},
                                                                    {3, quarantine_cause::missed_answers}});
  bool more = false;
  self->receive([&](quarantine_atom, uint32_t, uint8_t) { more = true; },
                caf::after(std::chrono::milliseconds(200)) >> [] {});
  CHECK_FALSE(more);

  caf::anon_send_exit(gossip, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
}
