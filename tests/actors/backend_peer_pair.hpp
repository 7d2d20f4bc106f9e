// A pair of peers wired as the simulation wires them (shard and gossip
// actors under CAF's deterministic scheduler), peer 0 optionally training
// on a compute backend: what tests/actors (CPU backend) and tests/gpu (CUDA)
// run to show a backend peer moves as a host peer does.
#pragma once
#include <catch2/catch.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <optional>

#include "actors/peer.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/verify_messages.hpp"
#include "tests/counting_backend.hpp"
#include "tests/float_distances.hpp"

namespace murmur::testing {

using registry = std::map<uint32_t, gossip_actor>;
using verifier_registry = std::map<uint32_t, verifier_actor>;

// Delivers every frame at once (verification frames to the verifier, as the
// simulation does) and tells the sender it left.
inline transport_actor::behavior_type loopback(transport_actor::pointer, std::shared_ptr<registry> peers,
                                               std::shared_ptr<verifier_registry> verifiers) {
  return {[=](send_atom, uint32_t from, uint32_t to, const wire_frame& w) {
    const auto type = w.bytes ? peek_type(*w.bytes) : std::nullopt;
    auto v = verifiers->find(to);
    if (type && is_verify_message(*type) && v != verifiers->end()) {
      caf::anon_send(v->second, deliver_atom::value, from, w);
      return;
    }
    auto it = peers->find(to);
    if (it != peers->end()) caf::anon_send(it->second, deliver_atom::value, from, w);
    auto back = peers->find(from);
    if (back != peers->end()) caf::anon_send(back->second, sent_atom::value, to);
  }};
}

struct run_result {
  std::vector<float> params[2];
  eval_report eval[2];
  std::vector<float> state0;  // peer 0's parameters as a state read returns them
  uint64_t bytes_sent[2] = {0, 0};
  // With verification: each peer's verifier, and what the streams peer 0's
  // trainer backend handed out (another_stream) uploaded, and how many.
  verifier_stats verify[2];
  int64_t stream_uploads = 0;
  size_t streams = 0;
};

// A counting backend whose other streams count their uploads too.
class stream_counting_backend : public counting_backend {
 public:
  using counting_backend::counting_backend;
  std::unique_ptr<compute_backend> another_stream() const override {
    auto s = std::make_unique<counting_backend>(counting_backend::another_stream());
    streams->push_back(s.get());
    return s;
  }
  // Valid while their owners live.
  std::shared_ptr<std::vector<const counting_backend*>> streams =
      std::make_shared<std::vector<const counting_backend*>>();
};

// Two peers on a ring of two, 12 cycles each, taking turns; peer 0 on the
// backend make_backend0 makes (none: on the host), counting what its
// trainer's backend downloads into *downloads. host_gossip: gossip in delta
// mode (not run on a backend), which keeps gossip on the host mirror. verify_cheat1: step verification on both peers (every
// commitment challenged), peer 1 cheating as it says (kind none: honest).
// robust: both peers' gossip.robust.
inline run_result run_pair(const std::function<std::unique_ptr<compute_backend>()>& make_backend0,
                           bool host_gossip = false, int64_t* downloads = nullptr,
                           const cheat_settings* verify_cheat1 = nullptr, robust_rule robust = robust_rule::none) {
  const bool backend0 = static_cast<bool>(make_backend0);
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  auto data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  auto gossips = std::make_shared<registry>();
  auto verifiers = std::make_shared<verifier_registry>();
  auto transport = sys.spawn(loopback, gossips, verifiers);
  std::shared_ptr<std::vector<const counting_backend*>> streams;
  std::vector<peer_handles> peers;
  for (uint32_t i = 0; i < 2; ++i) {
    peer_settings s;
    s.id = i;
    s.peer_count = 2;
    s.neighbours = {1 - i};
    s.model = "flatten,linear:16,relu,linear:10";
    s.gossip.mode = host_gossip ? gossip_mode::delta : gossip_mode::threshold;
    s.gossip.threshold = 1e-3;
    s.gossip.robust.rule = robust;
    s.train.lr = 0.1;
    s.train.batch = 32;
    s.train.total_steps = 12;
    s.train.data_seed = 5 + i;
    s.train.init_seed = 9;
    std::vector<int64_t> shard(250);
    std::iota(shard.begin(), shard.end(), int64_t{250} * i);
    std::function<void(trainer&)> prepare;
    if (backend0 && i == 0)
      prepare = [downloads, &make_backend0, &streams](trainer& t) {
        auto be = std::make_unique<stream_counting_backend>(make_backend0());
        if (downloads) *downloads = 0;
        auto* counter = be.get();
        streams = be->streams;
        t.use_backend(std::move(be));
        if (downloads) counter->on_download = [downloads](int64_t n) { *downloads += n; };
      };
    std::optional<peer_verification> v;
    if (verify_cheat1) {
      v.emplace();
      v->settings.rate = 1.0;
      v->settings.seed = 42;
      v->neighbours_of = [](uint32_t) { return std::vector<uint32_t>{0, 1}; };
      v->shard_of = [](uint32_t p) {
        std::vector<int64_t> sh(250);
        std::iota(sh.begin(), sh.end(), int64_t{250} * p);
        return sh;
      };
      v->now_s = [] { return 0.0; };  // no deadline passes: the scheduler's order is the test's
      if (i == 1) v->cheat = *verify_cheat1;
    }
    peers.push_back(spawn_peer(sys, s, data, shard, data, transport, v ? &*v : nullptr, prepare));
    (*gossips)[i] = peers.back().gossip;
    if (v) (*verifiers)[i] = peers.back().verifier;
  }
  REQUIRE(peers[0].train->on_backend() == backend0);
  caf::scoped_actor self{sys};
  auto fail = [](const char* what) { FAIL("no answer: " << what); };
  for (int c = 0; c < 12; ++c)
    for (uint32_t i = 0; i < 2; ++i) {
      self->send(peers[i].shard, cycle_atom::value);
      sched.run();
      self->receive([&](step_report& r) { CHECK(r.step == static_cast<uint64_t>(c + 1)); },
                    caf::after(std::chrono::seconds(0)) >> [&] { fail("a cycle"); });
    }
  run_result r;
  self->send(peers[0].shard, state_atom::value, uint32_t{0}, uint32_t{1u << 30});
  sched.run();
  self->receive([&](state_slice& s) { r.state0 = s.values; }, caf::after(std::chrono::seconds(0)) >> [&] { fail("state"); });
  for (uint32_t i = 0; i < 2; ++i) {
    self->send(peers[i].shard, eval_atom::value);
    self->send(peers[i].gossip, stats_atom::value);
    sched.run();
    for (int k = 0; k < 2; ++k)
      self->receive([&](eval_report& e) { r.eval[i] = e; }, [&](gossip_counters& g) { r.bytes_sent[i] = g.bytes_sent; },
                    caf::after(std::chrono::seconds(0)) >> [&] { fail("an evaluation"); });
    const Sequential& m = peers[i].train->synced_model();
    r.params[i].assign(m.params(), m.params() + m.param_count());
  }
  if (verify_cheat1) {
    for (uint32_t i = 0; i < 2; ++i) {
      self->send(peers[i].verifier, stats_atom::value);
      sched.run();
      self->receive([&](verifier_stats& st) { r.verify[i] = st; },
                    caf::after(std::chrono::seconds(0)) >> [&] { fail("verifier stats"); });
    }
  }
  if (streams) {
    r.streams = streams->size();
    for (const counting_backend* b : *streams) r.stream_uploads += b->uploaded;
  }
  for (auto& p : peers) {
    caf::anon_send_exit(p.shard, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(p.gossip, caf::exit_reason::user_shutdown);
    if (p.verifier) caf::anon_send_exit(p.verifier, caf::exit_reason::user_shutdown);
  }
  caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
  sched.run();
  return r;
}

}  // namespace murmur::testing
