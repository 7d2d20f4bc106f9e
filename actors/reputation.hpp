// reputation: a peer's standing in [0, 1], from the evidence verification
// gathered about it (docs/trust.md, "Reputation"). Pure: no actors, no clock.
//
// Evidence per peer: checks it passed (and the FLOPs they verified), checks
// it failed, challenges it left unanswered (misses). The standing is a Beta
// posterior mean with prior Beta(prior_pass, prior_miss):
//     failed > 0:  0                      (a failed check is proof: quarantined)
//     otherwise:   (passed + a) / (passed + miss_weight * misses + a + b)
// so a peer nobody checked stands at a / (a + b) = 0.5, every pass raises it,
// every miss lowers it, and it never reaches 0 without a failed check (an
// honest peer on a loaded machine can miss; it cannot fail: Freivalds and the
// element-wise checks have one-sided error). Verified FLOPs are not a term:
// they are the reward (what a peer is paid for), while standing measures how
// many independent checks it survived, whatever the size of the layer drawn.
// Several observers' evidence combines by sum (combine_testimony), leaving
// out the testimony of observers that are themselves proven cheats.
#pragma once
#include <cstdint>
#include <map>
#include <vector>

namespace murmur {

struct peer_evidence {
  uint64_t checks_passed = 0, checks_failed = 0, misses = 0;
  double verified_flops = 0;
  peer_evidence& operator+=(const peer_evidence& o);
};

struct reputation_weights {
  double prior_pass = 1;   // a: pseudo-passes of a peer nobody checked yet
  double prior_miss = 1;   // b: pseudo-misses of the same
  double miss_weight = 1;  // what one miss weighs against one pass
};

// The standing the formula above gives; throws std::invalid_argument for
// non-positive priors or a negative miss weight.
double standing_of(const peer_evidence& e, const reputation_weights& w = {});

class reputation {
 public:
  reputation() = default;
  explicit reputation(reputation_weights w);

  void passed(uint32_t peer, double flops);
  void failed(uint32_t peer);
  void missed(uint32_t peer, uint64_t n = 1);
  void add(uint32_t peer, const peer_evidence& e);

  // Of a peer without evidence: the prior's mean.
  double standing(uint32_t peer) const;
  const peer_evidence& evidence(uint32_t peer) const;
  const std::map<uint32_t, peer_evidence>& all() const { return evidence_; }
  const reputation_weights& weights() const { return w_; }

  // The candidates, highest standing first; equal standings keep the given
  // order (stable), so without evidence the order is the caller's.
  std::vector<uint32_t> by_standing(std::vector<uint32_t> candidates) const;

 private:
  reputation_weights w_;
  std::map<uint32_t, peer_evidence> evidence_;
};

// Evidence reported by several observers (observer -> peer -> evidence),
// summed per peer. An observer that some other observer recorded a failed
// check of is a proven cheat: its own reports are left out (a cheat could
// praise its accomplices); the failures others recorded of it stay in. What
// an observer says of itself is left out too (nobody verifies its own work).
// The reports are taken as written: a summary.json is its peer's claim, not
// re-checkable evidence (docs/trust.md, "Reputation").
reputation combine_testimony(const std::map<uint32_t, std::map<uint32_t, peer_evidence>>& reports,
                             const reputation_weights& w = {});

}  // namespace murmur
