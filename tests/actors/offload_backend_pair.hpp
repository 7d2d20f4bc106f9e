// Offload with a helper that trains on a compute backend, wired as the
// simulation wires peers (spawn_peer, CAF's deterministic scheduler, a
// transport that routes verification frames to verifiers): the helper
// answers the offloaded products with its backend's gemm, on a stream of
// its own, allocating nothing after the first step; the offloading peer
// (on the host) steps as it would all-local, up to rounding; a helper that
// cheats on its backend is still caught on its first wrong answer. What
// tests/actors (CPU backend) and tests/gpu (CUDA) both run.
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

#include "actors/peer.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/verify_messages.hpp"
#include "tests/counting_backend.hpp"
#include "tests/float_distances.hpp"

namespace murmur::testing {

using helper_backend = std::function<std::unique_ptr<compute_backend>()>;

struct offload_endpoints {
  std::map<uint32_t, gossip_actor> gossip;
  std::map<uint32_t, verifier_actor> verifier;
};

// Delivers every frame at once: verification frames (offloaded products
// among them) to the receiver's verifier, the rest to its gossip actor,
// which is told its frame left.
inline transport_actor::behavior_type offload_router(transport_actor::pointer, std::shared_ptr<offload_endpoints> e) {
  return {[=](send_atom, uint32_t from, uint32_t to, const wire_frame& w) {
    auto type = w.bytes ? peek_type(*w.bytes) : std::nullopt;
    if (type && is_verify_message(*type)) {
      auto v = e->verifier.find(to);
      if (v != e->verifier.end()) caf::anon_send(v->second, deliver_atom::value, from, w);
      return;
    }
    auto g = e->gossip.find(to);
    if (g != e->gossip.end()) caf::anon_send(g->second, deliver_atom::value, from, w);
    auto back = e->gossip.find(from);
    if (back != e->gossip.end()) caf::anon_send(back->second, sent_atom::value, to);
  }};
}

constexpr int kOffloadCycles = 8;

struct offload_run {
  std::vector<float> losses[2];   // per cycle, by peer
  std::vector<float> params1;     // the offloading peer's, at the end
  offload_counters counters;      // the offloading peer's (offload on)
  bool helper_trusted = true;
  verifier_stats helper_stats, offloader_stats;
  // The helper's streams besides its training one (its gossip's and its
  // verifier's): products computed there, and the allocations of the one
  // that computed them after the first cycle and at the end.
  int64_t helper_stream_gemms = 0;
  int streams_with_gemms = 0;
  int64_t helper_stream_allocs_first = 0, helper_stream_allocs = 0;
};

// Peer 0 (the helper) trains on the backend `make` makes; peer 1 on the
// host. With offload on, peer 1 hands its Linear products to peer 0, which
// answers them with `cheat`.
inline offload_run run_offload(const helper_backend& make, bool offload, compute_cheat cheat = compute_cheat::none) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  auto data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  auto e = std::make_shared<offload_endpoints>();
  auto transport = sys.spawn(offload_router, e);
  offload_run r;
  std::vector<counting_backend*> helper_streams;  // owned by the helper's actors
  auto product_stream = [&]() -> counting_backend* {
    counting_backend* found = nullptr;
    for (auto* s : helper_streams)
      if (s->gemms > 0) found = s;
    return found;
  };
  std::vector<peer_handles> peers;
  for (uint32_t i = 0; i < 2; ++i) {
    peer_settings s;
    s.id = i;
    s.peer_count = 2;
    s.neighbours = {1 - i};
    s.model = "flatten,linear:32,relu,linear:10";
    s.gossip.mode = gossip_mode::threshold;
    s.gossip.threshold = 1e-3;
    s.train.lr = 0.1;
    s.train.batch = 32;
    s.train.total_steps = kOffloadCycles;
    s.train.data_seed = 5 + i;
    s.train.init_seed = 9;
    std::vector<int64_t> shard(250);
    std::iota(shard.begin(), shard.end(), int64_t{250} * i);
    std::function<void(trainer&)> prepare;
    if (i == 0)
      prepare = [&](trainer& t) {
        auto be = std::make_unique<counting_backend>(make());
        be->on_another_stream = [&](counting_backend& stream) { helper_streams.push_back(&stream); };
        t.use_backend(std::move(be));
      };
    peer_offload off;
    off.rounds = 16;
    off.seed = 77 + i;
    if (i == 0) {
      off.cheat = cheat;
      off.cheat_eps = 1e-2;
    } else {
      off.plan = offload_plan{0, 0.0, off.rounds, 0.0};
    }
    peers.push_back(spawn_peer(sys, s, data, shard, data, transport, nullptr, prepare, offload ? &off : nullptr));
    e->gossip[i] = peers.back().gossip;
    if (peers.back().verifier) e->verifier[i] = peers.back().verifier;
  }
  REQUIRE(peers[0].train->on_backend());
  REQUIRE_FALSE(peers[1].train->on_backend());
  REQUIRE(static_cast<bool>(peers[1].offload) == offload);
  caf::scoped_actor self{sys};
  auto fail = [](const char* what) { FAIL("no answer: " << what); };
  for (int c = 0; c < kOffloadCycles; ++c) {
    for (uint32_t i = 0; i < 2; ++i) {
      self->send(peers[i].shard, cycle_atom::value);
      sched.run();
      self->receive(
          [&](step_report& s) {
            CHECK(s.step == static_cast<uint64_t>(c + 1));
            r.losses[i].push_back(s.loss);
          },
          caf::after(std::chrono::seconds(0)) >> [&] { fail("a cycle"); });
    }
    if (c == 0 && product_stream()) r.helper_stream_allocs_first = product_stream()->allocs;
  }
  if (offload) {
    for (uint32_t i = 0; i < 2; ++i) {
      self->send(peers[i].verifier, stats_atom::value);
      sched.run();
      self->receive([&](verifier_stats& v) { (i == 0 ? r.helper_stats : r.offloader_stats) = v; },
                    caf::after(std::chrono::seconds(0)) >> [&] { fail("verifier stats"); });
    }
    r.counters = peers[1].offload->total();
    r.helper_trusted = peers[1].offload->helper_trusted();
    for (auto* s : helper_streams) {
      r.helper_stream_gemms += s->gemms;
      r.streams_with_gemms += s->gemms > 0;
    }
    if (product_stream()) r.helper_stream_allocs = product_stream()->allocs;
  }
  const Sequential& m = peers[1].train->synced_model();
  r.params1.assign(m.params(), m.params() + m.param_count());
  for (auto& p : peers) {
    caf::anon_send_exit(p.shard, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(p.gossip, caf::exit_reason::user_shutdown);
    if (p.verifier) caf::anon_send_exit(p.verifier, caf::exit_reason::user_shutdown);
  }
  caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
  sched.run();
  return r;
}

// The helper's answers come from its backend's gemm; the offloader's steps
// are the all-local ones.
inline void check_backend_helper_answers(const helper_backend& make) {
  const offload_run local = run_offload(make, false), off = run_offload(make, true);
  // Each offloaded product is one gemm on the helper's verifier stream
  // (forward of both layers, both weight gradients, the second layer's
  // input gradient: 5 a step), not the host gemm.
  CHECK(off.streams_with_gemms == 1);
  CHECK(off.counters.offloaded == 5u * kOffloadCycles);
  CHECK(off.counters.verified == off.counters.offloaded);
  CHECK(off.counters.local == 0);
  CHECK(off.helper_stats.tasks_served == off.counters.offloaded);
  CHECK(off.helper_stream_gemms == static_cast<int64_t>(off.counters.offloaded));
  // Its buffers are sized in the first step and reused after.
  CHECK(off.helper_stream_allocs_first > 0);
  CHECK(off.helper_stream_allocs == off.helper_stream_allocs_first);
  CHECK(off.helper_trusted);
  CHECK(off.offloader_stats.offloads_verified == off.counters.offloaded);
  CHECK(off.offloader_stats.ledger.at(0).verified_flops > 0);  // the helper is credited
  // The offloading peer steps as it would all-local, up to rounding (both
  // peers' steps, and so their gossip, match).
  for (uint32_t i = 0; i < 2; ++i)
    for (int c = 0; c < kOffloadCycles; ++c) {
      INFO("peer " << i << " cycle " << c);
      CHECK(off.losses[i][c] == Approx(local.losses[i][c]).epsilon(1e-4));
    }
  CHECK(max_abs_diff(off.params1, local.params1) < 1e-3);
}

// A helper on a backend that cheats is caught on its first wrong answer.
inline void check_cheating_backend_helper_caught(const helper_backend& make) {
  const offload_run local = run_offload(make, false);
  for (compute_cheat cheat : {compute_cheat::perturb, compute_cheat::skip_product}) {
    const offload_run r = run_offload(make, true, cheat);
    INFO((cheat == compute_cheat::perturb ? "perturb" : "skip_product"));
    CHECK(r.counters.offloaded == 1);  // the first answer was wrong, and the last one asked for
    CHECK(r.counters.rejected == 1);
    CHECK(r.counters.verified == 0);
    CHECK_FALSE(r.helper_trusted);
    CHECK(r.offloader_stats.offloads_rejected == 1);
    CHECK(r.helper_stats.tasks_served == 1);
    // perturb computes the product on the backend, then moves one element.
    CHECK(r.helper_stream_gemms == (cheat == compute_cheat::perturb ? 1 : 0));
    // The rejected answer was replaced by the local product: the first step
    // is the all-local one; the peer then trains on (without its quarantined helper).
    CHECK(r.losses[1][0] == Approx(local.losses[1][0]).epsilon(1e-5));
    REQUIRE(r.losses[1].size() == static_cast<size_t>(kOffloadCycles));
    CHECK(std::isfinite(r.losses[1].back()));
  }
}

}  // namespace murmur::testing
