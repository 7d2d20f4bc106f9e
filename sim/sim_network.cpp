#include "sim/sim_network.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "protocols/membership_messages.hpp"
#include "protocols/pipeline_messages.hpp"
#include "tensor/rng.hpp"

namespace murmur {

namespace {

struct sim_network_state {
  link_model links;
  Rng rng;
  static inline const char* name = "sim_network";
};

transport_actor::behavior_type sim_network_behavior(
    transport_actor::stateful_pointer<sim_network_state> self, event_queue* queue,
    network_model model, uint32_t peers, uint64_t seed, network_stats* stats) {
  self->state.links = model.links;
  self->state.rng = Rng(seed);
  stats->peer_bytes_sent.assign(peers, 0);
  stats->peer_bytes_received.assign(peers, 0);
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
        const auto when = st.links.send(from, to, bytes, queue->now());
        sim_event done;
        done.time = when.up_done;
        done.kind = sim_event::sent;
        done.peer = from;
        done.from = to;
        done.frame = frame;  // the receiver of `sent` tells gossip frames from others by it
        queue->push(std::move(done));
        ++stats->msgs_sent;
        stats->bytes_sent += frame.bytes->size();
        stats->peer_bytes_sent[from] += frame.bytes->size();
        const bool reliable = model.reliable_pipeline && type && is_pipeline_message(*type);
        if (model.loss > 0 && !reliable && st.rng.uniform() < model.loss) {
          ++stats->msgs_lost;
          stats->bytes_lost += frame.bytes->size();
          return;
        }
        stats->peer_bytes_received[to] += frame.bytes->size();
        sim_event e;
        e.time = when.arrive;
        e.kind = sim_event::deliver;
        e.peer = to;
        e.from = from;
        e.frame = frame;
        queue->push(std::move(e));
      },
  };
}

}  // namespace

transport_actor spawn_sim_network(caf::actor_system& sys, event_queue& queue, network_model model,
                                  uint32_t peers, uint64_t seed, network_stats& stats) {
  return sys.spawn(sim_network_behavior, &queue, model, peers, seed, &stats);
}

}  // namespace murmur
