// Settings a peer's actors need, derived from the run config by whoever
// spawns them (the simulation or a LAN peer process). Plain data, no CAF.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/peer_names.hpp"
#include "gpu/device_choice.hpp"
#include "tensor/augment.hpp"

namespace murmur {

enum class gossip_mode : uint8_t { threshold, dense, local_sgd, delta };

// How a peer combines its own public estimate with its neighbours' when it
// mixes (actors/robust_mix.hpp): the plain mean, or a Byzantine-robust rule.
// clipped_gossip (self-centered clipping) is the run config's default
// (gossip.robust): no neighbour and no frame can move a peer by more than a
// bounded amount per round. These plain settings default to none, the
// unclipped CHOCO mix, so unit tests state what they exercise.
enum class robust_rule : uint8_t { none, median, trimmed_mean, krum, centered_clip, clipped_gossip };

struct robust_settings {
  robust_rule rule = robust_rule::none;
  double trim = 0.2;         // trimmed mean: drop floor(trim*n) at each end; krum: f = floor(trim*n)
  double clip_radius = 0.0;  // centered_clip / clipped_gossip, L2; 0 = adaptive (robust_mix.hpp)
  double clip_scale = 0.5;   // clipped_gossip's adaptive radius: this many times the lower-median distance
};

// Ranking-based detection of poisoned updates (actors/rank_detector.hpp).
struct detect_settings {
  bool enabled = false;
  uint64_t window = 10;      // rounds between two checks
  uint64_t span = 1;         // the ranked updates are changes over the last span windows
  double threshold = 0.2;    // flag when a feature is this far beyond every honest-looking one
  uint64_t patience = 3;     // consecutive flagged checks before quarantine
  uint64_t coords = 8192;    // coordinates sampled for ranking; 0 = all
  uint64_t seed = 0;         // which coordinates
};

// Who a peer exchanges with in a round. all: every neighbour, every round
// (one public estimate for all). one_peer: a time-varying matching; in
// round r (= step / schedule_every) a peer exchanges only with the
// neighbours j whose link colour ctz(self XOR j) mod schedule_colours is
// r mod schedule_colours (on the hypercube with ids = positions: exactly
// one partner, i XOR 2^k, or none where that id is >= n), keeps one public
// estimate per link and mixes pairwise (x += gamma/2 (x_hat_j - x_hat_ij)).
enum class gossip_schedule : uint8_t { all, one_peer };

// How much a neighbour's estimate pulls in a mix (actors/contribution.hpp).
// uniform: w = 1 / (degree + 1) for every fresh neighbour. rate: w times
// min(1, rho_j), rho_j = (d_j m_j) / (d_self m_self), d the steps and m the
// frames each peer published over a window of our steps, as the frames'
// step and round fields show them: Metropolis-Hastings weights whose
// conserved average is the data-weighted one (every trained sample counts
// once), whatever the peers' speeds and busy uplinks. mixing: rho_j =
// m_j / m_self, the plain average in real time.
enum class contribution_rule : uint8_t { uniform, rate, mixing };

struct gossip_settings {
  gossip_mode mode = gossip_mode::threshold;
  gossip_schedule schedule = gossip_schedule::all;
  uint32_t schedule_colours = 1;  // one_peer: ceil(log2(peer count)), at least 1
  uint64_t schedule_every = 1;    // one_peer: steps per round (gossip.every)
  // one_peer: a pair's mix also moves the link's two public estimates by its
  // correction (gossip.link_estimates = follow_mix), so it is applied once.
  bool estimates_follow_mix = false;
  // gossip.publish = before_step: the shard publishes after the mix and
  // before the step (actors/shard_actor.hpp), not after the step.
  bool publish_first = false;
  double threshold = 1e-3;   // tau; 0 sends every coordinate
  // gossip.threshold_schedule = lr (threshold and grid compressors): the tau
  // of a publish at step s is threshold x max(threshold_floor, (lr_s /
  // lr_0)^threshold_power), lr_s the cosine schedule over lr_total_steps.
  // A grid frame carries its scale, so the two ends of a link need not agree
  // on it. threshold_power 0 (or lr_total_steps 0: a constant lr) = constant tau.
  double threshold_power = 0.0;
  double threshold_floor = 1.0;
  int64_t lr_total_steps = 0;
  bool grid = false;         // publish values rounded to a shared tau-grid
  double trigger = 0.0;      // send nothing while ||x - x_hat||^2 < trigger
  double gamma = 0.5;        // consensus step size
  // A neighbour not heard from for this many of our rounds is left out of
  // mixing (a paused, joining or slow peer must not hold the others back);
  // 0 = never. Silent peers send an empty keepalive every keepalive_rounds.
  uint64_t max_staleness = 100;
  uint64_t keepalive_rounds = 10;
  size_t max_frame_bytes = 64u << 20;
  // A received value (or delta increment) whose magnitude exceeds this cannot
  // be a parameter of this model: the frame is rejected (out_of_range).
  // 0 = derived from the model's own scale: 1000 * max(1, max |x0|).
  double max_value = 0.0;
  robust_settings robust;
  detect_settings detect;
  contribution_rule contribution = contribution_rule::uniform;
  uint64_t contribution_window = 20;  // our steps per rate measurement (contribution != uniform)
  // gossip.link_period_max: > 1 sends each neighbour its own frame, at most
  // every this many published rounds (actors/link_budget.hpp); 1 = off.
  uint32_t link_period_max = 1;
};

// What a peer attacks with, if anything (none for honest peers). The update
// attacks forge what the peer publishes (actors/update_attack.hpp); label
// flip trains on y -> classes-1-y; the compute cheats (skip_product ..
// replay), silent_prover and forged_evidence are carried out by the
// verification code.
enum class attack_kind : uint8_t {
  none,
  gaussian, zero_gradient, mean_shift, sign_flip,  // forged updates
  extreme, ipm, dissensus,                         // forged updates (dissensus: one per neighbour)
  label_flip,                                      // poisoned data
  skip_product, perturb, half_batch, replay,       // compute cheats
  silent_prover,                                   // never answers verification challenges
  forged_evidence,                                 // relays tampered segment replies as evidence
};
inline bool is_update_attack(attack_kind k) {
  return k == attack_kind::gaussian || k == attack_kind::zero_gradient || k == attack_kind::mean_shift ||
         k == attack_kind::sign_flip || k == attack_kind::extreme || k == attack_kind::ipm ||
         k == attack_kind::dissensus;
}

struct attack_settings {
  attack_kind kind = attack_kind::none;
  double scale = 0.0;       // 0 = the attack's own default (see update_attack.hpp)
  double noise = 0.1;       // own noise, relative to the honest spread, so attackers differ
  double eps = 1e-3;        // size of the perturb cheat
  uint64_t start_step = 0;  // first step the attack acts at
  uint64_t every = 1;       // then acts every this many steps; 0 = once (update attacks: the
                            // first publish at or after start_step; label flip: start_step only)
  uint64_t seed = 0;        // the attacker's own random stream
  // The other attackers (they collude): their updates are not taken for
  // honest ones, and an attacker does not mix with their forged estimates.
  std::vector<uint32_t> colluders;
  // dissensus: each neighbour's own neighbours (the topology, which the
  // attacker is assumed to know); a neighbour missing here is taken to have
  // a neighbourhood like ours.
  std::map<uint32_t, std::vector<uint32_t>> neighbourhoods;
  bool acts_at(uint64_t step) const {
    if (kind == attack_kind::none || step < start_step) return false;
    return every == 0 ? step == start_step : (step - start_step) % every == 0;
  }
};

struct train_settings {
  std::string optimizer = "sgd";
  double lr = 0.1;
  bool cosine = true;
  double momentum = 0.9;
  double weight_decay = 0.0;
  int64_t batch = 64;
  int64_t total_steps = 1;   // for the learning-rate schedule
  int64_t gossip_every = 1;  // mix/publish every K local steps
  uint64_t data_seed = 0;    // batch order
  uint64_t init_seed = 0;    // model init: the SAME for every peer
  augment_settings augment;  // training-image augmentation (its seed is run-wide)
  // Where the steps run: the host resolves train.device before anything
  // loads (run/peer_device.hpp); cuda = the trainer's backend on that GPU.
  resolved_device device;
};

struct peer_settings {
  uint32_t id = 0;
  uint32_t peer_count = 1;
  std::vector<uint32_t> neighbours;  // who we publish to and mix with
  std::string model;                 // model spec for build_model
  gossip_settings gossip;
  train_settings train;
  attack_settings attack;            // kind none for honest peers
  peer_names names;                  // how logs name peers (labels from the allowlist)
};

}  // namespace murmur
