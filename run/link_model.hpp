// link_model: the network conditions of a simulated WAN, per peer and per
// directed link, changing over virtual time. No actors, no sockets.
//
// Each peer i has an uplink (up_bps), a downlink (down_bps; 0 = unlimited)
// and an access latency; a directed link i->j may cap its own rate and set
// its own latency. A frame of B bytes from i to j sent at time t:
//   - leaves when i's uplink is free and occupies it for B*8 / min(up_i,
//     link_ij) (i's uplink is shared by everything i sends, in order);
//   - reaches j's downlink latency(i, j) after it started; occupies it for
//     B*8 / down_j once the downlink is free (shared by all j receives);
//   - arrives at max(uplink done + latency, downlink done).
// latency(i, j) = sim.latency_ms + access_i + access_j, unless the link sets it.
// Bandwidth windows (sim.link_events) multiply a peer's up and down rates by
// a factor from start_s to end_s of virtual time; factor 0 is an outage:
// nothing moves, frames wait for the window's end (as TCP would).
//
// Sources, all optional, later ones override earlier ones:
//   sim.bandwidth_mbps, sim.latency_ms   every uplink; downlinks unlimited
//   sim.link_classes  "home:4,datacenter:4": peers in index order take a
//                     class's up/down rates and access latency (classes())
//   sim.link_file     CSV lines "peer,i,up_mbps,down_mbps,access_ms" and
//                     "link,i,j,mbps,latency_ms"; '#' starts a comment
//   sim.link_events   "start_s-end_s:peer:factor,..." (windows of one peer
//                     must not overlap)
// With none of the last three, every number equals the uniform model's
// (one uplink rate, unlimited downlinks, one latency): runs are unchanged.
//
// Ranked uplinks (send_ranked; sim.uplink = "classes", protocols/
// traffic_class.hpp): an uplink serves the frames waiting on it by rank
// (0 first; FIFO within a rank). A frame outranking the one being sent
// waits at most for the end of that frame's current chunk (chunk_bytes
// after its start or resumption); the rest of the cut frame resumes after
// the higher-ranked ones, and frames already scheduled that are held back
// are reported with their new times. Frames of one rank, or that never
// meet, get the same times as send() to the last bit. On a limited
// downlink a frame waits for earlier frames of its own and higher ranks
// only (each rank keeps its own reservation: several ranks arriving at
// once each get the full downlink, an optimistic simplification); a held
// back frame's arrival moves by its uplink delay, its downlink slot stays.
// Errors name the key, the entry and what is wrong (ConfigError).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "run/run_config.hpp"

namespace murmur {

struct link_class {
  std::string name;
  double up_mbps = 0, down_mbps = 0, access_ms = 0;
};
// datacenter 10000/10000 Mbit/s, 0.25 ms; office 1000/1000, 1 ms;
// home 10 up / 50 down, 10 ms.
const std::vector<link_class>& link_classes();

struct bandwidth_window {
  double start_s = 0, end_s = 0, factor = 1;
};

struct peer_link {
  std::string cls;          // class name, "" = uniform
  double up_bps = 0;        // 0 = unlimited
  double down_bps = 0;      // 0 = unlimited
  double access_s = 0;
  std::vector<bandwidth_window> windows;  // sorted, disjoint
};

struct transfer_times {
  double up_done = 0;  // the uplink is free again (the sender's frame is out)
  double arrive = 0;   // the receiver has it
};

class link_model {
 public:
  // Throws ConfigError naming what is wrong.
  static link_model from_config(const RunConfig& c, uint32_t peers);
  // Every uplink bandwidth_bps (0 = unlimited), downlinks unlimited, one latency.
  static link_model uniform(double bandwidth_bps, double latency_s, uint32_t peers);

  // Schedules one frame: updates both links' queues.
  transfer_times send(uint32_t from, uint32_t to, double bytes, double now);
  struct moved_frame {
    uint64_t id = 0;
    transfer_times t;
  };
  // Schedules frame `id` (unique per sender) of `rank` on from's ranked
  // uplink; appends the frames it holds back, with their new times, to
  // `moved`. Do not mix with send() on one model.
  transfer_times send_ranked(uint32_t from, uint32_t to, double bytes, double now, int rank, uint64_t id,
                             double chunk_bytes, std::vector<moved_frame>& moved);
  // A frame that queues behind nothing (offloaded products): its time alone.
  double direct_time(uint32_t from, uint32_t to, double bytes, double now) const;

  double latency_s(uint32_t from, uint32_t to) const;
  // The rate a frame from one peer to another gets with the links idle:
  // the sender's uplink, the link's cap, the receiver's downlink (windows
  // left out; 0 = unlimited).
  double rate_bps(uint32_t from, uint32_t to) const;
  // The rate that occupies the sender's uplink: its uplink and the link's
  // cap, without the receiver's downlink (0 = unlimited).
  double send_rate_bps(uint32_t from, uint32_t to) const { return rate_cap(from, to); }
  const std::vector<peer_link>& peers() const { return peers_; }
  bool uniform() const { return uniform_; }
  // The slowest rate a frame between two peers can get (windows left out;
  // 0 = unlimited) and the largest latency: what deadlines must cover.
  double slowest_bps() const;
  double largest_latency_s() const;
  // The same network with peer k being peer machine_of[k] here (a
  // permutation: pipeline placement, run/pipeline_plan.hpp). Queues empty.
  link_model relabelled(const std::vector<uint32_t>& machine_of) const;

 private:
  double rate_cap(uint32_t from, uint32_t to) const;
  std::vector<peer_link> peers_;
  std::map<std::pair<uint32_t, uint32_t>, std::pair<double, double>> links_;  // bps (0 = no cap), latency_s
  double base_latency_s_ = 0;
  std::vector<double> up_free_, down_free_;
  // Ranked uplinks: per peer, the frames not yet out, in the order they
  // will be served (the one being sent first, then by rank and arrival).
  struct queued_frame {
    uint64_t id = 0, seq = 0;
    int rank = 0;
    double rate = 0;       // bps, the link's cap
    double bits = 0;       // left to send from run_start on
    double run_start = 0;  // when its (next) uninterrupted run starts
    double done = 0;       // when it leaves the uplink
    double arrive = 0;
  };
  std::vector<std::vector<queued_frame>> up_queue_;
  std::vector<double> up_cut_;  // per peer: where the last cut frame's chunk ends
  std::vector<std::vector<double>> down_free_ranked_;  // per peer, per rank
  uint64_t next_seq_ = 0;
  bool uniform_ = true;
};

// When a transfer of `bits` at base_bps (0 = unlimited), starting at t,
// ends under the windows (sorted, disjoint).
double transfer_end(double t, double bits, double base_bps, const std::vector<bandwidth_window>& windows);

}  // namespace murmur
