// ring_allreduce: the synchronous baseline (gossip.mode = allreduce) that
// compressed gossip is measured against on a heterogeneous WAN (issue 16,
// docs/wan.md). Pure arithmetic over the per-link model: no actors.
//
// The ring is 0 -> 1 -> ... -> n-1 -> 0 and the parameters (P floats) are cut
// into n chunks (P/n floats, the first P mod n of them one more). An
// all-reduce is 2(n-1) phases: n-1 of reduce-scatter (in phase s peer i
// sends chunk (i - s) mod n to i+1, which adds it to its own) and n-1 of
// all-gather (peer i sends chunk (i + 1 - s) mod n on). Every peer sends in
// every phase and a phase ends when the last of its n transfers has arrived
// (link_model::direct_time: the link's rate, the receiver's downlink,
// latency, bandwidth windows), so each phase waits for the ring's slowest
// link. Bytes are the chunks' floats, 4 bytes each: 2(n-1) x 4P over all
// peers, what summary.json's dense_allreduce_bytes counts per step.
#pragma once
#include <cstdint>
#include <vector>

#include "run/link_model.hpp"

namespace murmur {

class ring_allreduce {
 public:
  // n >= 1 peers, params >= 0 floats. One peer: no phases, nothing sent.
  ring_allreduce(uint32_t peers, int64_t params);

  // Virtual seconds an all-reduce starting at `now` takes on `links`
  // (which it does not change: the all-reduce owns the links while it runs).
  double seconds(const link_model& links, double now) const;
  // What peer i sends (and its successor receives) in one all-reduce.
  uint64_t bytes_sent(uint32_t peer) const;
  uint64_t messages_per_peer() const { return n_ > 1 ? 2 * (n_ - 1) : 0; }
  uint32_t peers() const { return n_; }

  // The chunk peer i sends in phase p (0 <= p < 2(n-1)).
  uint32_t chunk_sent(uint32_t peer, uint32_t phase) const;
  uint64_t chunk_bytes(uint32_t chunk) const;

  // What the all-reduce computes: every x_i becomes the mean of all of
  // them, summed in double in peer order, so every peer gets the same bits.
  static void average(const std::vector<float*>& params, int64_t dim);

 private:
  uint32_t n_;
  int64_t params_;
};

}  // namespace murmur
