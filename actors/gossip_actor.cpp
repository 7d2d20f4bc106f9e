#include "actors/gossip_actor.hpp"

#include "actors/segment_recorder.hpp"
#include "actors/trainer.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <iostream>

namespace murmur {

namespace {

struct gossip_actor_state {
  // Backend-mode gossip (the trainer's parameters on a GPU): its own stream
  // on the trainer's device, declared before the gossip_state whose buffers
  // it holds. Null otherwise.
  std::unique_ptr<compute_backend> be;
  std::unique_ptr<gossip_state> gossip;
  std::shared_ptr<Sequential> model;
  // Set when spawned with the trainer: it says where the parameters are
  // current (host mirror or backend) at each mix and publish.
  std::shared_ptr<trainer> train;
  // The host parameters, current, for a mix (which writes them) or a publish.
  std::span<float> params_to_mix() {
    Sequential& m = train ? *train->model() : *model;
    return {m.params(), static_cast<size_t>(m.param_count())};
  }
  std::span<const float> params_to_publish() {
    const Sequential& m = train ? train->synced_model() : *model;
    return {m.params(), static_cast<size_t>(m.param_count())};
  }
  transport_actor transport;
  // verify.scheme = segment: every state change below is recorded (null: off).
  std::shared_ptr<segment_recorder> segments;
  std::unique_lock<std::mutex> recording() {
    return segments ? segments->lock() : std::unique_lock<std::mutex>();
  }
  uint32_t self = 0;
  peer_names names;
  std::vector<caf::actor> watchers;  // told of every quarantine
  size_t quarantines_told = 0;       // of gossip->counters().quarantines
  // Frame buffers are reused once no receiver holds them any more: fresh
  // megabyte-sized allocations would page-fault on every round.
  std::vector<std::shared_ptr<std::vector<std::byte>>> frame_pool;
  std::shared_ptr<std::vector<std::byte>> frame_buffer() {
    for (auto& b : frame_pool)
      if (b.use_count() == 1) return b;
    auto b = std::make_shared<std::vector<std::byte>>();
    if (frame_pool.size() < 8) frame_pool.push_back(b);
    return b;
  }
  static inline const char* name = "gossip";
};

using gossip_self = gossip_actor::stateful_pointer<gossip_actor_state>;

// Tells the watchers of the quarantines made since the last call (the
// detector decides inside mix and receive, the verifier by message).
void tell_quarantines(gossip_self self) {
  auto& st = self->state;
  const auto& q = st.gossip->counters().quarantines;
  for (; st.quarantines_told < q.size(); ++st.quarantines_told)
    for (auto& w : st.watchers)
      caf::anon_send(w, quarantine_atom::value, q[st.quarantines_told].peer,
                     static_cast<uint8_t>(q[st.quarantines_told].cause));
}

// A publish's frames to the transport: one for every neighbour, or (one_peer,
// an equivocating attacker, a link budget) each neighbour its own.
void send_frames(gossip_self self, std::span<const std::byte> frame) {
  auto& st = self->state;
  if (!frame.empty()) {
    auto buf = st.frame_buffer();
    buf->assign(frame.begin(), frame.end());
    wire_frame w{std::move(buf)};
    for (uint32_t to : st.gossip->neighbours()) self->send(st.transport, send_atom::value, st.self, to, w);
  } else if (st.gossip->per_neighbour_frames()) {
    const auto& to = st.gossip->neighbours();
    for (size_t j = 0; j < to.size(); ++j) {
      auto f = st.gossip->frame_to(j);
      if (f.empty()) continue;
      auto buf = st.frame_buffer();
      buf->assign(f.begin(), f.end());
      self->send(st.transport, send_atom::value, st.self, to[j], wire_frame{std::move(buf)});
    }
  }
}

// The mix and publish handlers' work, also done back to back by (mix, step).
void mix_now(gossip_self self) {
  auto& st = self->state;
  if (st.gossip->on_backend()) {
    st.gossip->mix_on_backend(st.train->backend_params(true));
    st.be->sync();  // done before the trainer's stream uses the parameters again
  } else {
    auto rec = st.recording();
    st.gossip->mix(st.params_to_mix());
    if (st.segments) st.segments->log().mixed();
  }
  if (!st.watchers.empty()) tell_quarantines(self);
}

void publish_now(gossip_self self, uint64_t step) {
  auto& st = self->state;
  auto rec = st.recording();
  auto frame = st.gossip->on_backend() ? st.gossip->publish_on_backend(st.train->backend_params(false), step)
                                       : st.gossip->publish(st.params_to_publish(), step);
  if (st.segments) st.segments->log().published(step);
  send_frames(self, frame);
}

gossip_actor::behavior_type gossip_behavior(gossip_actor::stateful_pointer<gossip_actor_state> self,
                                            peer_settings s, std::shared_ptr<Sequential> model,
                                            std::shared_ptr<trainer> train, transport_actor transport,
                                            std::shared_ptr<segment_recorder> segments) {
  auto& st = self->state;
  st.self = s.id;
  st.names = s.names;
  st.model = std::move(model);
  st.train = std::move(train);
  st.transport = std::move(transport);
  const std::span<const float> x0(st.model->params(), static_cast<size_t>(st.model->param_count()));
  if (st.train && st.train->backend() && gossip_state::backend_unsupported(s.gossip, s.attack).empty()) {
    st.be = st.train->backend()->another_stream();
    st.gossip = std::make_unique<gossip_state>(s.id, s.neighbours, s.gossip, x0, *st.be);
  } else {
    st.gossip = std::make_unique<gossip_state>(s.id, s.neighbours, s.gossip, x0, s.attack);
  }
  st.segments = std::move(segments);
  if (st.segments) st.segments->start(*st.train, *st.gossip);
  return {
      [self](mix_atom) -> bool {
        mix_now(self);
        return true;
      },
      [self](publish_atom, uint64_t step) -> bool {
        publish_now(self, step);
        return true;
      },
      [self](mix_atom, uint64_t step) -> bool {
        auto& st = self->state;
        if (st.gossip->on_backend()) {
          mix_now(self);
          publish_now(self, step);
          return true;
        }
        auto rec = st.recording();
        auto frame = st.gossip->mix_publish(st.params_to_mix(), step);
        // The log keeps the two calls; a replay makes them apart, to the same floats.
        if (st.segments) {
          st.segments->log().mixed();
          st.segments->log().published(step);
        }
        send_frames(self, frame);
        if (!st.watchers.empty()) tell_quarantines(self);
        return true;
      },
      [self](deliver_atom, uint32_t from, const wire_frame& w) {
        auto& st = self->state;
        reject_reason why{};
        if (!w.bytes) return;
        auto rec = st.recording();
        const bool taken = st.gossip->receive(from, *w.bytes, &why);
        if (taken && st.segments) st.segments->log().received(from, *w.bytes);
        rec = {};
        if (!st.watchers.empty()) tell_quarantines(self);
        if (taken) return;
        // Dropped and counted; log the first few per peer so a flood cannot flood the log.
        auto n = st.gossip->counters().rejected_total();
        if (n <= 10 || n % 1000 == 0)
          std::cerr << st.names(st.self) << ": dropped frame from " << st.names(from) << " ("
                    << to_string(why) << ", " << w.bytes->size() << " bytes; " << n
                    << " dropped so far)\n";
      },
      [self](sent_atom, uint32_t) {
        auto& st = self->state;
        auto rec = st.recording();
        st.gossip->on_sent();
        if (st.segments) st.segments->log().sent();
      },
      [self](nbrs_atom, const std::vector<uint32_t>& ids, const std::vector<uint64_t>& inc) {
        auto& st = self->state;
        auto rec = st.recording();
        st.gossip->set_neighbours(ids, inc);
        // Even an unchanged list resets the frames in flight.
        if (st.segments) st.segments->log().neighbours(ids, inc);
      },
      [self](resync_atom) { self->state.gossip->resync(); },
      [self](segstart_atom) -> bool {
        auto& st = self->state;
        if (!st.segments || st.gossip->on_backend()) return false;
        st.segments->start(*st.train, *st.gossip);
        return true;
      },
      [self](quarantine_atom, uint32_t peer, uint8_t cause) {
        auto& st = self->state;
        const auto why = static_cast<quarantine_cause>(cause);
        auto rec = st.recording();
        const bool changed = st.gossip->quarantine(peer, why);
        if (changed && st.segments) st.segments->log().quarantined(peer, cause);
        rec = {};
        if (changed)
          std::cerr << st.names(st.self) << ": quarantined " << st.names(peer) << " (" << to_string(why) << ")\n";
        tell_quarantines(self);
      },
      [self](watch_atom, caf::actor watcher) {
        auto& st = self->state;
        st.watchers.push_back(std::move(watcher));
        st.quarantines_told = 0;  // the new watcher hears the earlier ones too; repeats are harmless
        tell_quarantines(self);
      },
      [self](stats_atom) -> gossip_counters { return self->state.gossip->sends_report(); },
  };
}

}  // namespace

gossip_actor spawn_gossip(caf::actor_system& sys, const peer_settings& s,
                          std::shared_ptr<Sequential> model, transport_actor transport) {
  return sys.spawn(gossip_behavior, s, std::move(model), std::shared_ptr<trainer>(), std::move(transport), nullptr);
}

gossip_actor spawn_gossip(caf::actor_system& sys, const peer_settings& s, std::shared_ptr<trainer> train,
                          transport_actor transport, std::shared_ptr<segment_recorder> segments) {
  auto model = train->model();
  return sys.spawn(gossip_behavior, s, std::move(model), std::move(train), std::move(transport), std::move(segments));
}

}  // namespace murmur
