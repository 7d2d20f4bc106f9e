// contribution: how strongly each neighbour's estimate pulls in a gossip
// mix (gossip.contribution, issue 16's contribution scaling). Pure: no
// actors, no clock; the same on a LAN peer and in the simulator.
//
// A peer mixes once per published round: x_i += gamma sum_j c_ij (x_j - x_i).
// Per second it mixes m_i times and trains d_i steps. Under uniform weights
// (c_ij = 1/(deg+1)) the average that mixing conserves is sum_i x_i / m_i:
// the peers that mix least (slow ones, those whose uplink is busy) weigh the
// most, and the fast, better-trained peers are pulled back toward them.
// With c_ij = min(1, rho_ij) / (deg+1) (Metropolis-Hastings weights) the
// conserved average is sum_i w_i x_i with d_i m_i c_ij = d_j m_j c_ji:
//   rate:    rho_ij = (d_j m_j) / (d_i m_i)  ->  w_i ∝ d_i, each trained sample counts once
//   mixing:  rho_ij = m_j / m_i              ->  w_i = 1, the plain average
// Rates are observed, not configured: over a window of at least `window`
// of our own steps, d_j / d_i = the growth of the step field of j's frames
// over the growth of our step, m_j / m_i = the growth of j's round field
// (the frames it published) over our frames published. No clock and no
// frame change is needed. Until a window has closed a neighbour pulls at 1
// (uniform). Each new window's value is averaged with the last (factor 1/2)
// so one late frame does not swing the weight.
//
// Safety: a pull never exceeds 1, the uniform weight, whatever a neighbour
// claims in its frames: a peer announcing a huge rate (forged step or round
// fields) gains nothing over uniform gossip, and one announcing a tiny rate
// only loses its own influence. Quarantined peers are not neighbours.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "actors/peer_settings.hpp"

namespace murmur {

class contribution {
 public:
  contribution(contribution_rule rule, uint64_t window, size_t neighbours);
  bool weighted() const { return rule_ != contribution_rule::uniform; }
  // A frame from neighbour slot j was accepted: its step and round fields,
  // our step and our frames published so far.
  void heard(size_t j, uint64_t their_step, uint64_t their_round, uint64_t our_step, uint64_t our_round);
  // Per neighbour slot, the factor in [0, 1] on its uniform weight.
  std::span<const float> pulls() const { return pull_; }
  // Per neighbour slot, rho unclamped (smoothed as the pull, at most 1e6;
  // 1 until a window has closed): > 1 means the neighbour's rate exceeds
  // ours, and its pull on our estimate is about 1 / rho (actors/link_budget.hpp).
  std::span<const float> ratios() const { return ratio_; }
  // Neighbours changed: slot i of the new list was old slot from[i], or a
  // new neighbour when from[i] < 0 (it starts at 1, measuring afresh).
  void remap(std::span<const int> from);

  // Everything the weights depend on (a segment replay carries it).
  struct slot_state {
    float pull = 1.f, ratio = 1.f;
    bool anchored = false;
    uint64_t our_step = 0, our_round = 0, their_step = 0, their_round = 0;
    bool operator==(const slot_state&) const = default;
  };
  std::span<const slot_state> state() const { return slots_; }

 private:
  contribution_rule rule_;
  uint64_t window_;
  std::vector<slot_state> slots_;
  std::vector<float> pull_, ratio_;
};

}  // namespace murmur
