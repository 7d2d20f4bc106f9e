// The simulated network: a transport actor that, instead of moving bytes,
// schedules their delivery on the simulation's event queue.
// A message from peer i leaves when i's uplink is free, occupies it for
// bytes*8/bandwidth, arrives `latency` later (per peer and link, downlinks
// and windows over time: run/link_model.hpp), and is lost with probability
// `loss` (drawn from the network's own seeded stream, so runs repeat).
// With traffic classes on (network_model::ranked, sim.uplink = "classes"),
// each uplink serves frames by class (protocols/traffic_class.hpp): a
// heartbeat or gossip frame waits for at most one 64 KiB chunk of a state
// transfer or segment reply; frames it holds back have their `sent` and
// `deliver` events cancelled and scheduled again at their new times.
#pragma once
#include <cstdint>
#include <queue>
#include <unordered_set>
#include <vector>

#include "actors/messages.hpp"
#include "run/link_model.hpp"

namespace murmur {

struct sim_event {
  // At equal times, frames arrive and uplinks free up before peers step.
  // wake: a pipeline node's timer (its op is done, or a heartbeat tick).
  // check_ready: a verifier's segment check may be used (sim/check_worker.hpp).
  // reduce: gossip.mode = allreduce's round is done (sim/ring_allreduce.hpp).
  enum kind_t : uint8_t { deliver = 0, sent = 1, cycle = 2, wake = 3, check_ready = 4, reduce = 5 };
  double time = 0;
  kind_t kind = cycle;
  uint64_t seq = 0;
  uint32_t peer = 0;  // who acts / receives
  uint32_t from = 0;  // deliver: the sender; sent: the destination; wake: the tag
  uint64_t check = 0;  // check_ready: the check's id at the check_worker
  wire_frame frame;
};

// Min-heap on (time, kind, seq): a total order, hence a deterministic run.
// An event may be cancelled by its seq (push returns it): it is never popped.
class event_queue {
 public:
  uint64_t push(sim_event e) {
    e.seq = next_seq_++;
    const uint64_t seq = e.seq;
    heap_.push(std::move(e));
    return seq;
  }
  sim_event pop() {
    sim_event e = heap_.top();
    heap_.pop();
    now_ = e.time;
    drop_cancelled();
    return e;
  }
  // seq must be an event pushed and not yet popped.
  void cancel(uint64_t seq) {
    cancelled_.insert(seq);
    drop_cancelled();
  }
  bool empty() const { return heap_.empty(); }
  double next_time() const { return heap_.top().time; }
  sim_event::kind_t next_kind() const { return heap_.top().kind; }
  double now() const { return now_; }
  // Frames sent by sim_network leave at now() + send_delay(): the driver
  // sets it to a step's modelled time while that step's cycle runs, so its
  // frames leave when the step ends (sim.frames_leave = step_end).
  void set_send_delay(double s) { send_delay_ = s; }
  double send_delay() const { return send_delay_; }

 private:
  struct later {
    bool operator()(const sim_event& a, const sim_event& b) const {
      if (a.time != b.time) return a.time > b.time;
      if (a.kind != b.kind) return a.kind > b.kind;
      return a.seq > b.seq;
    }
  };
  // Keeps the top a live event, so that the accessors above need not look.
  void drop_cancelled() {
    while (!heap_.empty() && !cancelled_.empty()) {
      auto it = cancelled_.find(heap_.top().seq);
      if (it == cancelled_.end()) return;
      cancelled_.erase(it);
      heap_.pop();
    }
  }
  std::priority_queue<sim_event, std::vector<sim_event>, later> heap_;
  std::unordered_set<uint64_t> cancelled_;
  uint64_t next_seq_ = 0;
  double now_ = 0;
  double send_delay_ = 0;
};

struct network_model {
  link_model links;  // rates and latencies, per peer and link
  double loss = 0.0;
  // Uplinks serve frames by traffic class (link_model::send_ranked);
  // false: one FIFO per uplink (sim.uplink = "fifo").
  bool ranked = false;
  // Pipeline frames ride reliable connections (TCP, as ZeroMQ's): `loss`
  // never drops them.
  bool reliable_pipeline = true;
  // Offloaded products (matmul_task / matmul_result frames) go here instead,
  // stamped with their transfer time (link_model::direct_time) rather
  // than an arrival time: the driver delivers them at once, within the
  // offloading peer's step, and charges that time to the step. They are
  // never lost and do not queue behind gossip on the uplink. Null: as any frame.
  event_queue* offload = nullptr;
};

struct network_stats {
  uint64_t msgs_sent = 0, bytes_sent = 0, msgs_lost = 0, bytes_lost = 0;
  // Per traffic class: frames, and the time from send to arrival (virtual
  // s, the final one; lost frames left out), summed and the largest.
  struct class_delay {
    uint64_t frames = 0;
    double sum_s = 0, max_s = 0;
  };
  std::vector<class_delay> delay_by_class;  // indexed by traffic_class
  std::vector<uint64_t> peer_bytes_sent, peer_bytes_received;  // per peer (received: delivered, not lost)
};

// queue and stats must outlive the actor system.
transport_actor spawn_sim_network(caf::actor_system& sys, event_queue& queue, network_model model,
                                  uint32_t peers, uint64_t seed, network_stats& stats);

}  // namespace murmur
