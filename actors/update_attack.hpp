// update_attack: what a Byzantine peer publishes instead of its honest public
// estimate. The attacker keeps training and mixing honestly (so it knows
// where the group is) but publishes x_pub(t) = x_pub(t-1) + p_t, x_pub(0) = x0.
// An update is the change of a public estimate over one of our rounds: h,
// ours had we been honest, and d_j, each neighbour heard from this round
// (summed over its frames; fellow attackers' are left out). Over these n
// honest updates, per
// coordinate k: mu_k = mean, sigma_k = population std, and
// s = sqrt(mean_k sigma_k^2) (their RMS spread, one number). With xi ~ N(0, I)
// drawn from the attacker's own stream and a = attack.noise:
//   gaussian       p = mu + sqrt(c^2 + a^2) s xi          c = scale, default 30
//   zero_gradient  p = -(h + sum_j d_j) + a s xi          = -n mu: alone, an
//                  attacker cancels the sum of the n updates it sees (m = 1)
//   mean_shift     p = mu - z sigma + a s xi              z = scale (the
//                  simulation sets ALIE's z from the peer count and the number
//                  of attackers); default 1
//   sign_flip      p = -c mu + a s xi                     c = scale, default 3
// On steps where the attack does not act (before start_step, between `every`),
// p = h: the published estimate moves as the honest one would.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "actors/peer_settings.hpp"
#include "protocols/gossip_messages.hpp"
#include "tensor/rng.hpp"

namespace murmur {

class update_attack {
 public:
  update_attack(const attack_settings& a, std::span<const float> x0, std::span<const uint32_t> neighbours);
  bool colludes_with(uint32_t peer) const;

  // A frame from the neighbour in `slot` is about to be applied to its
  // estimate `before`: its change is added to that neighbour's update.
  void observe(size_t slot, std::span<const float> before, const gossip_update& msg);
  // Membership changed: slots are renumbered, updates seen so far dropped.
  void reset_neighbours(std::span<const uint32_t> neighbours);
  // Our honest public estimate moved by `honest` in this round at `step`:
  // returns the point to publish (valid until the next call).
  std::span<const float> poison(std::span<const float> honest, uint64_t step);

 private:
  attack_settings a_;
  size_t dim_;
  std::vector<float> target_;               // x_pub before compression
  std::vector<std::vector<float>> update_;  // d_j, per neighbour slot
  std::vector<uint8_t> heard_;              // per slot: a frame arrived this round
  std::vector<uint8_t> colluder_;           // per slot: a fellow attacker, ignored
  std::vector<const float*> seen_;          // the updates of this round, ours first
  Rng rng_;
  double spare_ = 0;                        // second normal of a Box-Muller pair
  bool has_spare_ = false;
  double normal();
};

}  // namespace murmur
