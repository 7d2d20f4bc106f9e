// link_stats: what a `murmur peer` measures of its link to each other peer:
// frames and bytes each way (the zmq bridge counts them at the socket) and
// round trips (the membership actor times each heartbeat to its ack). Its
// summary.json lists them under "links" (lan/peer_host.cpp), as the
// simulator lists its modelled links (sim.link_*), so a run on real
// machines shows the bandwidth and latency its gossip actually saw.
// A round trip counts only for the ack of a heartbeat we sent to that peer
// in the last `window` ticks, once, and only when it is newer than the last
// one counted: a peer that acks early or replays acks misstates its own
// link only.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>

namespace murmur {

struct link_bytes {
  uint64_t frames_sent = 0, bytes_sent = 0, frames_received = 0, bytes_received = 0;
};

// Round trips to one peer: count, min, max, and the median of the last 64.
class link_rtt {
 public:
  void add(double seconds);
  uint64_t samples() const { return samples_; }
  double min_s() const { return samples_ ? min_ : 0; }
  double max_s() const { return samples_ ? max_ : 0; }
  double median_s() const;  // of the last min(samples, 64); 0 with none

 private:
  static constexpr size_t keep = 64;
  std::array<double, keep> last_{};
  uint64_t samples_ = 0;
  double min_ = 0, max_ = 0;
};

// The membership actor's heartbeat timing: when each of the last `window`
// heartbeats went out, and the last sequence number acked per peer.
class heartbeat_clock {
 public:
  static constexpr uint64_t window = 64;
  void sent(uint64_t seq, double now_s);
  // An ack of seq from peer at now_s: adds a round trip to rtt[peer] when it
  // counts (see above); returns whether it did.
  bool acked(uint32_t peer, uint64_t seq, double now_s, std::map<uint32_t, link_rtt>& rtt);

 private:
  std::array<double, window> sent_at_{};
  std::array<uint64_t, window> sent_seq_{};
  std::map<uint32_t, uint64_t> last_acked_;
};

}  // namespace murmur
