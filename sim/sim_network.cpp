#include "sim/sim_network.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "protocols/membership_messages.hpp"
#include "protocols/pipeline_messages.hpp"
#include "protocols/traffic_class.hpp"
#include "tensor/rng.hpp"

#include <map>

namespace murmur {

namespace {

// A frame on a ranked uplink that may still be held back: its events.
struct frame_in_flight {
  uint32_t to = 0;
  uint8_t cls = 0;
  bool lost = false;
  uint64_t sent_seq = 0, deliver_seq = 0;
  double sent_at = 0, up_done = 0, arrive = 0;
  wire_frame frame;
};

struct sim_network_state {
  link_model links;
  Rng rng;
  uint64_t next_id = 0;
  std::vector<std::map<uint64_t, frame_in_flight>> in_flight;  // per sender, by id
  std::vector<link_model::moved_frame> moved;
  static inline const char* name = "sim_network";
};

transport_actor::behavior_type sim_network_behavior(
    transport_actor::stateful_pointer<sim_network_state> self, event_queue* queue,
    network_model model, uint32_t peers, uint64_t seed, network_stats* stats) {
  self->state.links = model.links;
  self->state.rng = Rng(seed);
  stats->peer_bytes_sent.assign(peers, 0);
  stats->peer_bytes_received.assign(peers, 0);
  stats->delay_by_class.assign(traffic_class_count, {});
  self->state.in_flight.resize(peers);
  // A frame held back by a higher class: its events move to the new times.
  auto reschedule = [queue, stats](frame_in_flight& f, uint32_t from, const transfer_times& t) {
    queue->cancel(f.sent_seq);
    sim_event done;
    done.time = t.up_done;
    done.kind = sim_event::sent;
    done.peer = from;
    done.from = f.to;
    done.frame = f.frame;
    f.sent_seq = queue->push(std::move(done));
    f.up_done = t.up_done;
    if (f.lost) return;
    queue->cancel(f.deliver_seq);
    sim_event e;
    e.time = t.arrive;
    e.kind = sim_event::deliver;
    e.peer = f.to;
    e.from = from;
    e.frame = f.frame;
    f.deliver_seq = queue->push(std::move(e));
    auto& d = stats->delay_by_class[f.cls];
    d.sum_s += t.arrive - f.arrive;
    d.max_s = std::max(d.max_s, t.arrive - f.sent_at);
    f.arrive = t.arrive;
  };
  return {
      [=](send_atom, uint32_t from, uint32_t to, const wire_frame& frame) {
        auto& st = self->state;
        if (from >= peers || to >= peers || !frame.bytes) return;
        const double bytes = static_cast<double>(frame.bytes->size());
        auto type = peek_type(*frame.bytes);
        if (model.offload && type &&
            (*type == message_type::matmul_task || *type == message_type::matmul_result)) {
          sim_event e;
          e.time = st.links.direct_time(from, to, bytes, queue->now());
          e.kind = sim_event::deliver;
          e.peer = to;
          e.from = from;
          e.frame = frame;
          model.offload->push(std::move(e));
          ++stats->msgs_sent;
          stats->bytes_sent += frame.bytes->size();
          stats->peer_bytes_sent[from] += frame.bytes->size();
          stats->peer_bytes_received[to] += frame.bytes->size();
          return;
        }
        const uint8_t cls = static_cast<uint8_t>(type ? traffic_class_of(*type) : traffic_class::bulk);
        const double now = queue->now() + queue->send_delay();
        const uint64_t id = st.next_id++;
        transfer_times when;
        if (model.ranked) {
          // Frames out of the uplink can no longer move: forget them (by the
          // queue's time: a later send, one not delayed, may start before `now`).
          auto& mine = st.in_flight[from];
          for (auto it = mine.begin(); it != mine.end();)
            it = it->second.up_done <= queue->now() ? mine.erase(it) : std::next(it);
          st.moved.clear();
          when = st.links.send_ranked(from, to, bytes, now, cls, id, static_cast<double>(traffic_chunk_bytes), st.moved);
          for (const auto& m : st.moved) reschedule(mine.at(m.id), from, m.t);
        } else {
          when = st.links.send(from, to, bytes, now);
        }
        sim_event done;
        done.time = when.up_done;
        done.kind = sim_event::sent;
        done.peer = from;
        done.from = to;
        done.frame = frame;  // the receiver of `sent` tells gossip frames from others by it
        const uint64_t sent_seq = queue->push(std::move(done));
        ++stats->msgs_sent;
        stats->bytes_sent += frame.bytes->size();
        stats->peer_bytes_sent[from] += frame.bytes->size();
        const bool reliable = model.reliable_pipeline && type && is_pipeline_message(*type);
        if (model.loss > 0 && !reliable && st.rng.uniform() < model.loss) {
          ++stats->msgs_lost;
          stats->bytes_lost += frame.bytes->size();
          if (model.ranked) st.in_flight[from][id] = {to, cls, true, sent_seq, 0, now, when.up_done, when.arrive, frame};
          return;
        }
        auto& d = stats->delay_by_class[cls];
        ++d.frames;
        d.sum_s += when.arrive - now;
        d.max_s = std::max(d.max_s, when.arrive - now);
        stats->peer_bytes_received[to] += frame.bytes->size();
        sim_event e;
        e.time = when.arrive;
        e.kind = sim_event::deliver;
        e.peer = to;
        e.from = from;
        e.frame = frame;
        const uint64_t deliver_seq = queue->push(std::move(e));
        if (model.ranked) st.in_flight[from][id] = {to, cls, false, sent_seq, deliver_seq, now, when.up_done, when.arrive, frame};
      },
  };
}

}  // namespace

transport_actor spawn_sim_network(caf::actor_system& sys, event_queue& queue, network_model model,
                                  uint32_t peers, uint64_t seed, network_stats& stats) {
  return sys.spawn(sim_network_behavior, &queue, model, peers, seed, &stats);
}

}  // namespace murmur
