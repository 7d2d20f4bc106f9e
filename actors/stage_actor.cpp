#include "actors/stage_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "protocols/membership_messages.hpp"

namespace murmur {

namespace {

using stage_key = std::pair<uint16_t, uint16_t>;  // (replica, stage)

struct stage_node_state {
  stage_node_settings s;
  std::function<std::shared_ptr<pipeline_stage>(uint16_t, uint16_t)> make_stage;
  gossip_factory make_gossip;
  transport_actor transport;
  clock_actor clock;
  pipeline_observer observer;
  gossip_actor gossip;
  std::shared_ptr<stage_node_view> view;
  std::shared_ptr<pipeline_stage> stage;  // null while a spare
  std::vector<uint32_t> route;            // node hosting each stage of our replica
  bool busy = false, dead = false, resumed_pending = false;
  std::optional<stage_tensor> pending;    // the running op's output, sent when it is done
  bool pending_step_done = false;
  uint32_t pending_generation = 0;
  std::map<uint64_t, checkpoint> own;     // our last checkpoints, by step
  // Spare.
  std::map<stage_key, checkpoint> held;
  std::map<stage_key, int64_t> silent;    // heartbeat periods since the last heartbeat
  std::map<stage_key, uint32_t> node_of;
  std::map<stage_key, uint64_t> last_step;
  std::map<uint16_t, uint32_t> generation;  // per replica, the newest seen
  std::set<stage_key> done;               // finished or taken over: not watched
  static inline const char* name = "stage_node";
};

using self_ptr = stage_actor::stateful_pointer<stage_node_state>;

void emit(self_ptr self, pipeline_event e) {
  auto& st = self->state;
  e.node = st.s.node;
  if (st.observer) self->send(st.observer, pevent_atom::value, std::move(e));
}

template <class Encode>
void send_frame(self_ptr self, uint32_t to, Encode&& encode) {
  auto buf = std::make_shared<std::vector<std::byte>>();
  encode(*buf);
  self->send(self->state.transport, send_atom::value, self->state.s.node, to, wire_frame{std::move(buf)});
}

uint32_t spare_node(const stage_node_settings& s, uint16_t j) {
  return uint32_t{s.replicas} * s.stages + j;
}

bool watches(const stage_node_settings& s, uint32_t self_node, stage_key k) {
  if (s.spares == 0) return false;
  const uint32_t index = stage_node(k.first, k.second, s.stages);
  return spare_node(s, static_cast<uint16_t>(index % s.spares)) == self_node;
}

void checkpoint_now(self_ptr self) {
  auto& st = self->state;
  checkpoint c = st.stage->make_checkpoint(st.s.seed);
  auto blob = encode_checkpoint(c);
  const auto& ss = st.stage->settings();
  if (!st.s.checkpoint_dir.empty()) {
    try {
      std::filesystem::create_directories(st.s.checkpoint_dir);
      write_checkpoint_file(st.s.checkpoint_dir + "/stage-" + std::to_string(ss.replica) + "-" +
                                std::to_string(ss.stage) + ".ckpt",
                            blob);
    } catch (const std::exception& e) {
      emit(self, pipeline_event{pipeline_event::error, ss.replica, ss.stage, 0, c.step, 0, e.what()});
    }
  }
  stage_checkpoint_msg m{ss.replica, ss.stage, c.step, st.stage->generation(), std::move(blob)};
  for (uint16_t j = 0; j < st.s.spares; ++j) {
    const uint32_t to = spare_node(st.s, j);
    if (to != st.s.node) send_frame(self, to, [&](auto& out) { encode_stage_checkpoint(m, out); });
  }
  st.own[c.step] = std::move(c);
  while (st.own.size() > 3) st.own.erase(st.own.begin());
}

void try_start(self_ptr self);

void step_boundary(self_ptr self) {
  auto& st = self->state;
  const uint64_t step = st.stage->steps_done();
  const auto& ss = st.stage->settings();
  emit(self, pipeline_event{pipeline_event::step_done, ss.replica, ss.stage, 0, step, 0, {}});
  if (st.resumed_pending) {
    st.resumed_pending = false;
    emit(self, pipeline_event{pipeline_event::resumed, ss.replica, ss.stage, 0, step, 0, {}});
  }
  if (st.s.checkpoint_every > 0 && step % static_cast<uint64_t>(st.s.checkpoint_every) == 0) checkpoint_now(self);
  if (!st.gossip) return try_start(self);
  const uint32_t gen = st.stage->generation();
  self->request(st.gossip, caf::infinite, publish_atom::value, step).then([=](bool) {
    self->request(self->state.gossip, caf::infinite, mix_atom::value).then([=](bool) {
      // The mix wrote the master parameters (a stage on a backend uploads them).
      if (self->state.stage) self->state.stage->mark_host_params_written();
      // A roll-back in between has already restarted the stage.
      if (self->state.stage && self->state.stage->generation() == gen) try_start(self);
    });
  });
}

void try_start(self_ptr self) {
  auto& st = self->state;
  if (st.dead || st.busy || !st.stage || !st.stage->ready()) return;
  const auto& ss = st.stage->settings();
  pipeline_stage::op_result r;
  try {
    r = st.stage->run_next();
  } catch (const std::exception& e) {
    // A bug or a resource failure: this node stops, as if it had crashed,
    // and says why; a spare can take its stage over.
    emit(self, pipeline_event{pipeline_event::error, ss.replica, ss.stage, 0, st.stage->steps_done(), 0,
                              std::string("stage failed: ") + e.what()});
    st.dead = true;
    st.view->stage.reset();
    self->quit();
    return;
  }
  if (st.s.crash_step && st.stage->steps_done() + 1 == st.s.crash_step && !r.step_done &&
      2 * st.stage->step_ops_done() >= st.stage->step_ops()) {
    // Fault injection: the process dies with micro-batches in flight.
    emit(self, pipeline_event{pipeline_event::crashed, ss.replica, ss.stage, 0, st.s.crash_step, 0, {}});
    st.dead = true;
    st.view->stage.reset();
    self->quit();
    return;
  }
  st.busy = true;
  st.pending = std::move(r.out);
  st.pending_step_done = r.step_done;
  st.pending_generation = st.stage->generation();
  self->send(st.clock, wake_atom::value, st.s.node, r.seconds, static_cast<uint8_t>(wake_tag::op_done));
}

void op_done(self_ptr self) {
  auto& st = self->state;
  st.busy = false;
  const bool step_done = std::exchange(st.pending_step_done, false);
  auto out = std::exchange(st.pending, std::nullopt);
  // A roll-back while the op ran has made its result stale.
  if (!st.stage || st.pending_generation != st.stage->generation()) return try_start(self);
  if (out) {
    const uint16_t to_stage = out->gradient ? out->stage - 1 : out->stage + 1;
    if (to_stage < st.route.size())
      send_frame(self, st.route[to_stage], [&](auto& buf) { encode_stage_tensor(*out, buf); });
  }
  if (step_done) return step_boundary(self);
  try_start(self);
}

void become_stage(self_ptr self, std::shared_ptr<pipeline_stage> stage) {
  auto& st = self->state;
  st.stage = std::move(stage);
  st.view->stage = st.stage;
  const auto& ss = st.stage->settings();
  st.route.resize(st.s.stages);
  for (uint16_t k = 0; k < st.s.stages; ++k) {
    auto it = st.node_of.find({ss.replica, k});
    st.route[k] = it != st.node_of.end() ? it->second : stage_node(ss.replica, k, st.s.stages);
  }
  st.route[ss.stage] = st.s.node;
}

void take_over(self_ptr self, stage_key k) {
  auto& st = self->state;
  st.done.insert(k);
  const checkpoint& c = st.held.at(k);
  const uint32_t gen = st.generation[k.first] + 1;
  std::shared_ptr<pipeline_stage> stage;
  try {
    stage = st.make_stage(k.first, k.second);
    stage->restore(c, gen);
  } catch (const std::exception& e) {
    emit(self, pipeline_event{pipeline_event::error, k.first, k.second, 0, c.step, 0,
                              std::string("take-over failed: ") + e.what()});
    return;
  }
  st.generation[k.first] = gen;
  become_stage(self, std::move(stage));
  st.own[c.step] = c;
  st.done.clear();  // a host watches nothing
  const uint64_t before = st.last_step.count(k) ? st.last_step[k] : c.step;
  emit(self, pipeline_event{pipeline_event::takeover, k.first, k.second, 0, c.step,
                            before > c.step ? before - c.step : 0, {}});
  if (st.make_gossip && st.s.replicas > 1) {
    st.gossip = st.make_gossip(k.first, k.second, st.s.node, st.stage->model());
    st.view->gossip = st.gossip;
  }
  stage_takeover m{k.first, k.second, st.s.node, c.step, gen};
  for (uint16_t s2 = 0; s2 < st.s.stages; ++s2)
    if (s2 != k.second) send_frame(self, st.route[s2], [&](auto& out) { encode_stage_takeover(m, out); });
  // Stage k.second of the other replicas: their gossip neighbour moved.
  for (uint16_t r = 0; r < st.s.replicas; ++r) {
    if (r == k.first) continue;
    auto it = st.node_of.find({r, k.second});
    const uint32_t to = it != st.node_of.end() ? it->second : stage_node(r, k.second, st.s.stages);
    if (to != st.s.node) send_frame(self, to, [&](auto& out) { encode_stage_takeover(m, out); });
  }
  for (uint16_t j = 0; j < st.s.spares; ++j)
    if (spare_node(st.s, j) != st.s.node)
      send_frame(self, spare_node(st.s, j), [&](auto& out) { encode_stage_takeover(m, out); });
  st.resumed_pending = true;
  try_start(self);
}

void on_takeover(self_ptr self, const stage_takeover& m) {
  auto& st = self->state;
  const stage_key k{m.replica, m.stage};
  // Our gossip's neighbour in that replica now lives on the new host.
  if (st.gossip && st.stage && st.stage->settings().replica != m.replica && st.stage->settings().stage == m.stage) {
    auto known = st.node_of.find(k);
    const uint32_t old = known != st.node_of.end() ? known->second : stage_node(m.replica, m.stage, st.s.stages);
    bool changed = false;
    for (auto& n : st.s.gossip_neighbours)
      if (n == old && old != m.node) n = m.node, changed = true;
    if (changed)
      self->send(st.gossip, nbrs_atom::value, st.s.gossip_neighbours,
                 std::vector<uint64_t>(st.s.gossip_neighbours.size(), 0));
  }
  st.node_of[k] = m.node;
  st.done.insert(k);
  st.generation[m.replica] = std::max(st.generation[m.replica], m.generation);
  if (!st.stage || st.stage->settings().replica != m.replica) return;
  const auto& ss = st.stage->settings();
  if (m.stage == ss.stage) {
    // Someone took our stage: we were presumed dead. Step aside.
    emit(self, pipeline_event{pipeline_event::error, ss.replica, ss.stage, 0, st.stage->steps_done(), 0,
                              "stage taken over by node " + std::to_string(m.node) + " while alive; leaving"});
    st.dead = true;
    st.view->stage.reset();
    self->quit();
    return;
  }
  if (m.stage < st.route.size()) st.route[m.stage] = m.node;
  if (m.generation <= st.stage->generation()) return;
  auto it = st.own.find(m.resume_step);
  if (it == st.own.end()) {
    emit(self, pipeline_event{pipeline_event::error, ss.replica, ss.stage, 0, m.resume_step, 0,
                              "no own checkpoint at step " + std::to_string(m.resume_step) + " to roll back to"});
    return;
  }
  const uint64_t before = st.stage->steps_done();
  st.stage->restore(it->second, m.generation);
  st.own.erase(std::next(it), st.own.end());
  emit(self, pipeline_event{pipeline_event::rollback, ss.replica, ss.stage, 0, m.resume_step,
                            before > m.resume_step ? before - m.resume_step : 0, {}});
  st.resumed_pending = true;
  try_start(self);
}

void tick(self_ptr self) {
  auto& st = self->state;
  if (st.dead) return;
  bool again = false;
  if (st.stage) {
    const auto& ss = st.stage->settings();
    stage_heartbeat hb{ss.replica, ss.stage, st.s.node, st.stage->steps_done(), st.stage->generation()};
    for (uint16_t j = 0; j < st.s.spares; ++j)
      if (spare_node(st.s, j) != st.s.node)
        send_frame(self, spare_node(st.s, j), [&](auto& out) { encode_stage_heartbeat(hb, out); });
    again = !st.stage->finished();
  } else {
    std::optional<stage_key> dead;
    for (uint16_t r = 0; r < st.s.replicas; ++r)
      for (uint16_t k = 0; k < st.s.stages; ++k) {
        const stage_key key{r, k};
        if (!watches(st.s, st.s.node, key) || st.done.count(key)) continue;
        again = true;
        if (++st.silent[key] > st.s.dead_ticks && st.held.count(key) && !dead) dead = key;
      }
    if (dead) {
      take_over(self, *dead);
      again = st.stage ? !st.stage->finished() : again;
    }
  }
  if (again) self->send(st.clock, wake_atom::value, st.s.node, st.s.heartbeat_s, static_cast<uint8_t>(wake_tag::tick));
}

void on_frame(self_ptr self, uint32_t from, const wire_frame& f) {
  auto& st = self->state;
  if (st.dead || !f.bytes) return;
  auto type = peek_type(*f.bytes);
  auto reject = [&] { ++st.view->frames_rejected; };
  if (!type || !is_pipeline_message(*type)) return reject();
  switch (*type) {
    case message_type::stage_activation:
    case message_type::stage_gradient: {
      stage_tensor m;
      if (!st.stage || decode_stage_tensor(*f.bytes, st.s.max_frame_bytes, m) != frame_error::none) return reject();
      if (m.stage >= st.route.size() || st.route[m.stage] != from) return reject();
      if (st.stage->accept(std::move(m))) try_start(self);
      return;
    }
    case message_type::stage_checkpoint: {
      stage_checkpoint_msg m;
      if (decode_stage_checkpoint(*f.bytes, st.s.max_frame_bytes, m) != frame_error::none) return reject();
      const stage_key k{m.replica, m.stage};
      if (st.stage || !watches(st.s, st.s.node, k)) return reject();
      try {
        checkpoint c = decode_checkpoint(m.blob, "checkpoint from node " + std::to_string(from));
        if (c.kind != checkpoint_kind::stage || c.replica != m.replica || c.stage != m.stage || c.step != m.step)
          return reject();
        if (st.held.count(k) && st.held[k].step > c.step) return;
        if (!st.s.checkpoint_dir.empty()) {
          std::filesystem::create_directories(st.s.checkpoint_dir + "/held");
          write_checkpoint_file(st.s.checkpoint_dir + "/held/stage-" + std::to_string(k.first) + "-" +
                                    std::to_string(k.second) + ".ckpt",
                                m.blob);
        }
        st.held[k] = std::move(c);
      } catch (const std::exception& e) {
        emit(self, pipeline_event{pipeline_event::error, k.first, k.second, 0, m.step, 0, e.what()});
        reject();
      }
      return;
    }
    case message_type::stage_heartbeat: {
      stage_heartbeat m;
      if (decode_stage_heartbeat(*f.bytes, st.s.max_frame_bytes, m) != frame_error::none || m.node != from)
        return reject();
      const stage_key k{m.replica, m.stage};
      if (st.stage || m.generation < st.generation[m.replica]) return;
      st.silent[k] = 0;
      st.node_of[k] = m.node;
      st.last_step[k] = m.step;
      if (st.s.total_steps && m.step >= st.s.total_steps) st.done.insert(k);
      return;
    }
    case message_type::stage_takeover: {
      stage_takeover m;
      if (decode_stage_takeover(*f.bytes, st.s.max_frame_bytes, m) != frame_error::none || m.node != from)
        return reject();
      return on_takeover(self, m);
    }
    default: return reject();
  }
}

stage_actor::behavior_type stage_node_behavior(
    self_ptr self, stage_node_settings s, std::shared_ptr<pipeline_stage> stage,
    std::function<std::shared_ptr<pipeline_stage>(uint16_t, uint16_t)> make_stage, transport_actor transport,
    clock_actor clock, pipeline_observer observer, gossip_actor gossip, std::shared_ptr<stage_node_view> view,
    gossip_factory make_gossip) {
  auto& st = self->state;
  st.s = s;
  st.make_stage = std::move(make_stage);
  st.make_gossip = std::move(make_gossip);
  st.transport = std::move(transport);
  st.clock = std::move(clock);
  st.observer = std::move(observer);
  st.gossip = std::move(gossip);
  st.view = view ? std::move(view) : std::make_shared<stage_node_view>();
  st.view->gossip = st.gossip;
  if (stage) become_stage(self, std::move(stage));
  return {
      [=](deliver_atom, uint32_t from, const wire_frame& f) { on_frame(self, from, f); },
      [=](wake_atom, uint8_t tag) {
        if (self->state.dead) return;
        if (tag == static_cast<uint8_t>(wake_tag::op_done)) op_done(self);
        else tick(self);
      },
      [=](start_atom) {
        auto& st = self->state;
        if (st.stage) {
          checkpoint_now(self);
          try_start(self);
        }
        if (st.s.spares > 0) tick(self);
      },
  };
}

}  // namespace

stage_actor spawn_stage_node(caf::actor_system& sys, const stage_node_settings& s,
                             std::shared_ptr<pipeline_stage> stage,
                             std::function<std::shared_ptr<pipeline_stage>(uint16_t, uint16_t)> make_stage,
                             transport_actor transport, clock_actor clock, pipeline_observer observer,
                             gossip_actor gossip, std::shared_ptr<stage_node_view> view,
                             gossip_factory make_gossip) {
  return sys.spawn(stage_node_behavior, s, std::move(stage), std::move(make_stage), std::move(transport),
                   std::move(clock), std::move(observer), std::move(gossip), std::move(view), std::move(make_gossip));
}

const char* to_string(pipeline_event::kind_t k) {
  switch (k) {
    case pipeline_event::step_done: return "step_done";
    case pipeline_event::crashed: return "crashed";
    case pipeline_event::takeover: return "takeover";
    case pipeline_event::rollback: return "rollback";
    case pipeline_event::resumed: return "resumed";
    case pipeline_event::error: return "error";
  }
  return "?";
}

}  // namespace murmur
