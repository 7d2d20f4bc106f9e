// rank_detector: ranking-based detection of poisoned updates, in the spirit
// of MANDERA (Zhu et al. 2022), for a gossip peer that sees only its
// neighbours. Every `window` of our rounds it compares how far each public
// estimate it holds moved over the window: its own (known honest, the
// reference) and each neighbour's heard from in the window, n in all, on a
// fixed sample of coordinates (detect.coords, drawn once from detect.seed).
// The change is taken over the last `span` windows (a sliding span: a slow,
// steady drift away from the group grows with the span, honest peers'
// disagreement does not, as gossip keeps pulling them together).
//   1. Per coordinate k, the mid-ranks R_jk of the n changes (ties share the
//      mean of their ranks); coordinates where all n are equal say nothing
//      and are skipped (the grid compressor makes many).
//   2. Per member j, over the K informative coordinates, with
//      e_jk = (R_jk - (n+1)/2) / ((n-1)/2) in [-1, 1]:
//        u_j = mean_k e_jk            (a consistent shift: mean shift)
//        v_j = sqrt(mean_k e_jk^2)    (extreme ranks: Gaussian)
//        a_j = mean_k e_jk * d_k      (against the group: sign flip, zero
//                                      gradient, label flip), d_k = the sign
//                                      of the sum of the members' signs at k
//   3. Neighbour j is flagged when it is far both from us and from the
//      centre c (the per-feature median over all n members, us included):
//        max over the features f of |f_j - f_self| > theta  and
//        max over the features f of |f_j - f_c|    > theta,  theta = detect.threshold.
//      Honest members are exchangeable, so their features differ only by
//      sampling noise, O(1/sqrt(K)). Requiring both distances keeps the rule
//      conservative: our own features carry a systematic offset (our estimate
//      is fresher than our copies of theirs, which arrive a round or two
//      late), which the centre does not have; and where attackers are a
//      majority the centre moves toward them, but honest neighbours stay
//      near us. A check needs n >= 4 members and K >= 64 coordinates.
//   4. A neighbour flagged at `patience` consecutive checks is reported
//      once; a check that does not flag it resets its count.
// Work per check: O(n * coords) copies and O(n^2 * coords) comparisons;
// nothing between checks but a counter.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "actors/peer_settings.hpp"

namespace murmur {

struct rank_features {
  uint32_t peer = 0;
  double u = 0, v = 0, a = 0;
  bool flagged = false;
};

class rank_detector {
 public:
  rank_detector(const detect_settings& s, uint32_t self, size_t dim);

  // Called once per round of ours with our honest public estimate and our
  // neighbours' (ids[i] owns estimates[i], rounds[i] its latest round).
  // Returns the neighbours to quarantine now (valid until the next call).
  std::span<const uint32_t> on_round(std::span<const float> self_estimate, std::span<const uint32_t> ids,
                                     std::span<const std::vector<float>> estimates,
                                     std::span<const uint64_t> rounds);
  // The features of the latest check, ours first (for tests and reports).
  std::span<const rank_features> last_check() const { return features_; }
  uint64_t checks() const { return checks_; }

 private:
  detect_settings s_;
  uint32_t self_;
  std::vector<uint32_t> coords_;              // sampled coordinate indices, increasing
  uint64_t round_ = 0, checks_ = 0;
  // A window's start: who, at which of their rounds, and their sampled
  // values (a row per member, coords_.size() wide). The last `span` are kept.
  struct window_start {
    std::vector<uint32_t> ids;
    std::vector<uint64_t> rounds;
    std::vector<float> values;
  };
  std::vector<window_start> starts_;
  uint64_t taken_ = 0;
  // Scratch for a check.
  std::vector<float> change_;                 // row per member
  std::vector<uint32_t> members_;             // ids, ours first
  std::vector<double> rank_, sum_e_, sum_e2_, sum_a_;
  std::vector<rank_features> features_;
  std::vector<uint32_t> streak_ids_;          // consecutive flags per neighbour id
  std::vector<uint64_t> streak_;
  std::vector<uint32_t> report_;
  void snapshot(window_start& w, std::span<const float> self_estimate, std::span<const uint32_t> ids,
                std::span<const std::vector<float>> estimates, std::span<const uint64_t> rounds);
  void check(const window_start& from, std::span<const float> self_estimate, std::span<const uint32_t> ids,
             std::span<const std::vector<float>> estimates, std::span<const uint64_t> rounds);
  uint64_t& streak_of(uint32_t peer);
};

}  // namespace murmur
