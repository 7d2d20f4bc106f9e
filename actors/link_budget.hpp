// link_budget: how often a peer sends its gossip frame to each neighbour
// (gossip.link_period_max, issue 16's adaptive sharing per link). Pure: no
// actors, no clock; the same on a LAN peer and in the simulator.
//
// Link j gets a frame every p_j of our published rounds,
//   p_j = clamp(floor(rho_j * b), 1, max_period)
// rho_j the neighbour's rate over ours as our contribution weights measure
// it (contribution::ratios(): steps x frames published, read from its
// frames' fields), so about 1 / its pull on our estimate under
// gossip.contribution = rate | mixing; b in [0, 1] the share of our recent
// rounds in which our uplink was still busy with earlier frames (what the
// peer observes of its own uplink's capacity). A neighbour that barely uses
// our estimate gets it less often, and only when our uplink is the
// bottleneck; with b = 0 (an uplink that keeps up) every link is sent
// every round. Each link keeps its own public estimate (gossip_state's
// link estimates), so a frame after a gap carries everything the
// neighbour has missed: the error feedback stays exact per link. A link's
// frames carry its own frame count as their round field, so the
// neighbour's contribution weights see how often it hears from us and pull
// less toward a copy of us it gets rarely.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace murmur {

// One link's sending as a host reports it (gossip_state::sends_report).
struct link_send {
  uint32_t peer = 0;
  uint32_t period = 1;  // our published rounds between two frames on the link, as last planned
  uint64_t frames = 0;  // frames sent on the link so far
  uint64_t rounds = 0;  // our published rounds so far (the same on every link): rounds / frames is the mean period
};

class link_budget {
 public:
  // max_period 1: every link every round (off). window: our rounds per
  // uplink-load measurement (each averaged with the last).
  link_budget(uint32_t max_period, uint64_t window, size_t neighbours);
  bool on() const { return max_period_ > 1; }
  // Once per publish attempt: whether our uplink was still busy.
  void attempt(bool busy);
  // The periods from the neighbours' ratios (one per slot); call before due().
  void plan(std::span<const float> ratios);
  // Link `slot` is due in our published round `round` (the one about to go out).
  bool due(size_t slot, uint64_t round) const;
  void sent(size_t slot, uint64_t round);
  // Neighbours changed: slot i was old slot from[i], or new (< 0: due at once).
  void remap(std::span<const int> from);
  std::span<const uint32_t> periods() const { return period_; }
  // Frames sent on link `slot` so far (its frames' round field counts them).
  uint64_t frames(size_t slot) const { return slot < frames_.size() ? frames_[slot] : 0; }
  double busy_share() const { return busy_; }

 private:
  uint32_t max_period_;
  uint64_t window_;
  uint64_t attempts_ = 0, busy_attempts_ = 0;
  double busy_ = 0;
  std::vector<uint32_t> period_;
  std::vector<uint64_t> last_sent_;  // our round of the last frame to each slot; 0 = never
  std::vector<uint64_t> frames_;     // frames sent per slot
};

}  // namespace murmur
