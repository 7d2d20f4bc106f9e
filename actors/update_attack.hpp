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
//   ipm            p = -eps mu + a s xi                   eps = scale, default 0.1
//                  (inner-product manipulation, Xie, Koyejo, Gupta 2020: small
//                  enough to hide among honest updates; with enough
//                  colluders the mixed update's inner product with the
//                  honest mean turns negative)
//   extreme        p = h, and the frame of an acting round carries
//                  kExtremeCoords random coordinates set to +-M, M = scale
//                  (default 1e30, at most FLT_MAX): finite, exact float
//                  values, outside the grid (raw_indices/raw_values); the
//                  next frame puts the honest values back. scale just under
//                  a receiver's magnitude bound probes what passes it.
//   dissensus      p = h, and on acting rounds each neighbour i gets its own
//                  point (equivocation; He, Karimireddy, Jaggi 2022):
//                    x_i - (eps / b_i) sum_{k in H_i} (x_k - x_i)
//                  eps = scale, default 1.5; H_i: i's honest neighbours, b_i:
//                  its Byzantine neighbours (us and our colluders, from
//                  attack_settings::neighbourhoods); uniform weights cancel
//                  w_ik / w_ij. x_i, x_k are our copies of their public
//                  estimates; an x_k we do not hold (k is not our neighbour)
//                  is taken as the mean of the honest estimates we hold.
//                  It pushes i away from its neighbourhood's consensus.
// On steps where the attack does not act (before start_step, between `every`),
// p = h: the published estimate moves as the honest one would. every = 0
// acts once: at the first poison() at or after start_step.
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
  // Whether the last poison() acted.
  bool acting() const { return acting_; }

  // extreme: the coordinates (ascending) and values this round's frame must
  // carry as raw floats; empty on other rounds and for other attacks.
  std::span<const uint32_t> raw_indices() const { return raw_index_; }
  std::span<const float> raw_values() const { return raw_value_; }

  // dissensus: each neighbour gets its own frame.
  bool equivocates() const { return a_.kind == attack_kind::dissensus; }
  // dissensus, after poison(): one point per neighbour slot (our honest
  // public estimate where the attack does not act, or for a colluder), from
  // our honest public estimate and our copies of the neighbours' (in slot
  // order). Valid until the next call.
  const std::vector<std::vector<float>>& isolate(std::span<const float> honest_hat,
                                                 const std::vector<std::vector<float>>& nbr_hat);

  static constexpr size_t kExtremeCoords = 16;

 private:
  attack_settings a_;
  size_t dim_;
  std::vector<float> target_;               // x_pub before compression
  std::vector<std::vector<float>> update_;  // d_j, per neighbour slot
  std::vector<uint8_t> heard_;              // per slot: a frame arrived this round
  std::vector<uint8_t> colluder_;           // per slot: a fellow attacker, ignored
  std::vector<const float*> seen_;          // the updates of this round, ours first
  std::vector<uint32_t> ids_;               // neighbour ids, in slot order
  bool acting_ = false, acted_ = false;     // this round; ever (for every = 0)
  std::vector<uint32_t> raw_index_;         // extreme
  std::vector<float> raw_value_;
  std::vector<std::vector<float>> point_;   // dissensus: per neighbour slot
  std::vector<float> mean_;                 // dissensus: mean of the honest estimates we hold
  std::vector<const float*> known_;         // dissensus: the x_k we hold for one neighbour
  bool acts(uint64_t step);
  void draw_extreme();
  Rng rng_;
  double spare_ = 0;                        // second normal of a Box-Muller pair
  bool has_spare_ = false;
  double normal();
};

}  // namespace murmur
