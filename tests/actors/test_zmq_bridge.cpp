// Two peers' gossip actors talk through zmq_bridge over loopback with
// CurveZMQ: the actors are the ones the simulation uses, unchanged.
#include <catch2/catch.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <chrono>
#include <thread>

#include "actors/gossip_actor.hpp"
#include "actors/zmq_bridge.hpp"
#include "protocols/pipeline_messages.hpp"

using namespace murmur;

namespace {

struct lan_peer {
  curve_keys keys;
  zmq_bridge_handle bridge;
  std::shared_ptr<Sequential> model;
  gossip_actor gossip;
};

lan_peer make_peer(caf::actor_system& sys, uint32_t id, std::vector<uint32_t> neighbours,
                   std::vector<std::string> authorized, curve_keys keys) {
  lan_peer p;
  p.keys = keys;
  zmq_transport_options o;
  o.keys = p.keys;
  o.authorized = std::move(authorized);
  o.max_frame_bytes = 1 << 20;
  p.bridge = spawn_zmq_bridge(sys, o);
  p.model = std::shared_ptr<Sequential>(build_model("flatten,linear:2", {1, 2, 2}, 2).release());
  p.model->init(1);
  peer_settings s;
  s.id = id;
  s.neighbours = std::move(neighbours);
  s.gossip.mode = gossip_mode::dense;
  s.gossip.threshold = 0;
  p.gossip = spawn_gossip(sys, s, p.model, p.bridge.transport);
  caf::anon_send(p.bridge.actor, bind_atom::value, p.gossip);
  return p;
}

void introduce(const lan_peer& a, uint32_t id_of_b, const lan_peer& b) {
  caf::anon_send(a.bridge.actor, add_peer_atom::value, id_of_b, b.bridge.endpoint, b.keys.public_key);
}

gossip_counters stats(caf::scoped_actor& self, const gossip_actor& g) {
  gossip_counters c;
  self->request(g, std::chrono::seconds(5), stats_atom::value).receive([&](gossip_counters& x) { c = x; },
                                                                        [&](caf::error&) { FAIL("no stats"); });
  return c;
}

// Waits until pred() holds, up to 10 s.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

TEST_CASE("gossip frames cross ZeroMQ between two peers' actors", "[zmq][actors]") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto ka = generate_curve_keys(), kb = generate_curve_keys(), kc = generate_curve_keys();
  // Everyone's allowlist, in index order: peer i is key i.
  const std::vector<std::string> all{ka.public_key, kb.public_key, kc.public_key};
  auto a = make_peer(sys, 0, {1}, all, ka);
  auto b = make_peer(sys, 1, {0}, all, kb);
  introduce(a, 1, b);
  introduce(b, 0, a);
  // Publish from A until B has heard it (the first frames may go out before
  // the CurveZMQ handshake is done and are then dropped by ZMQ_IMMEDIATE).
  uint64_t step = 0;
  REQUIRE(eventually([&] {
    a.model->params()[0] += 1.f;  // something new to publish each round
    self->request(a.gossip, std::chrono::seconds(5), publish_atom::value, ++step).receive([](bool) {},
                                                                                          [](caf::error&) {});
    return stats(self, b.gossip).msgs_received > 0;
  }));
  auto sb = stats(self, b.gossip);
  CHECK(sb.rejected_total() == 0);
  // Mixing on B now pulls it toward A's published parameters.
  const float before = b.model->params()[0];
  self->request(b.gossip, std::chrono::seconds(5), mix_atom::value).receive([](bool) {}, [](caf::error&) {});
  CHECK(b.model->params()[0] != before);

  // A third, authorized peer cannot pass its frames off as A's: the bridge
  // names the sender by its CurveZMQ key, and the gossip actor refuses.
  auto c = make_peer(sys, 2, {1}, all, kc);
  introduce(c, 1, b);
  introduce(b, 2, c);
  gossip_update forged;
  forged.sender = 0;  // claims to be A
  forged.round = 1000;
  forged.dim = static_cast<uint32_t>(a.model->param_count());
  forged.kind = update_kind::dense_set;
  forged.values.assign(forged.dim, 9.f);
  auto bytes = std::make_shared<std::vector<std::byte>>();
  encode_gossip(forged, *bytes);
  const auto rejected_before = stats(self, b.gossip).rejected_total();
  REQUIRE(eventually([&] {
    caf::anon_send(c.bridge.transport, send_atom::value, uint32_t{2}, uint32_t{1}, wire_frame{bytes});
    return stats(self, b.gossip).rejected_total() > rejected_before;
  }));
  CHECK(stats(self, b.gossip).rejected[static_cast<size_t>(reject_reason::unknown_sender)] >= 1);

  for (auto* p : {&a, &b, &c}) {
    caf::anon_send(p->bridge.actor, stop_atom::value);
    caf::anon_send_exit(p->gossip, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("frames for the router that arrive before route_atom are held and handed over with it", "[zmq][actors]") {
  // A pipeline neighbour that is already running has its activations queued
  // for this node; they may come through as soon as the transport listens,
  // before the router is named. Losing one stalled both nodes for good.
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto ka = generate_curve_keys(), kb = generate_curve_keys();
  zmq_transport_options ob;
  ob.keys = kb;
  ob.authorized = {ka.public_key, kb.public_key};
  auto b = spawn_zmq_bridge(sys, ob);
  zmq_transport_options oa;
  oa.keys = ka;
  oa.authorized = {ka.public_key, kb.public_key};
  zmq_transport a(oa);
  a.connect(1, b.endpoint, kb.public_key);
  std::vector<std::vector<std::byte>> sent;
  for (uint64_t step = 1; step <= 3; ++step) {
    sent.emplace_back();
    encode_stage_heartbeat(stage_heartbeat{0, 1, 0, step, 0}, sent.back());
    REQUIRE(a.send(1, sent.back()));
  }
  // B has read all three (its counters), with no router yet.
  auto received = [&] {
    uint64_t n = 0;
    self->request(b.actor, std::chrono::seconds(5), stats_atom::value)
        .receive([&](bridge_stats& s) { n = s.net.frames_received; }, [&](caf::error&) { FAIL("no stats"); });
    return n;
  };
  REQUIRE(eventually([&] { return received() == 3; }));
  caf::anon_send(b.actor, route_atom::value, caf::actor_cast<caf::actor>(self));
  for (size_t i = 0; i < sent.size(); ++i) {
    INFO("frame " << i);
    bool got = false;
    self->receive(
        [&](frame_atom, const std::string& key, const wire_frame& w) {
          CHECK(key == ka.public_key);
          REQUIRE(w.bytes);
          CHECK(*w.bytes == sent[i]);
          got = true;
        },
        caf::after(std::chrono::seconds(10)) >> [] {});
    CHECK(got);
  }
  a.close(0);
  caf::anon_send(b.actor, stop_atom::value);
}
