// robust_mix: the point a peer mixes toward when Byzantine neighbours may
// publish anything. Plain gossip moves x by gamma * (mean - x_hat_self) over
// the n = 1 + m public estimates it mixes (its own first, then the m fresh
// neighbours'); a robust rule replaces that mean by:
//   median         coordinate-wise median (mean of the two middle values for even n)
//   trimmed_mean   coordinate-wise mean of what is left after dropping the
//                  b = min(floor(trim * n), (n - 1) / 2) lowest and highest values
//   krum           the estimate whose summed squared L2 distance to its n - f - 2
//                  nearest others is smallest, f = floor(trim * n) (at least one
//                  neighbour is always counted)
//   centered_clip  x_hat_self + (1/n) sum_j clip(x_hat_j - x_hat_self, r), where
//                  clip(v, r) = v * min(1, r / ||v||_2) and r = clip_radius, or
//                  the median of the ||x_hat_j - x_hat_self|| when clip_radius = 0
//   clipped_gossip the same clipped mean (self-centered clipping, ClippedGossip,
//                  He, Karimireddy and Jaggi 2022), with a radius no neighbour
//                  can inflate: r = clip_scale * min(m, 4 rbar), m the LOWER
//                  median of the fresh neighbours' distances (the smaller one of
//                  two, so on a ring one hostile neighbour of two never sets
//                  it), rbar a slow average (weight 1/20) of those capped m
//                  (unset until the first positive m). A lone fresh neighbour
//                  cannot vouch for itself: r = clip_scale * min(its distance,
//                  rbar), and 0 (no pull) while one of several and no reference
//                  exists yet; only a peer that never had more than one
//                  neighbour (two peers in all) uses that neighbour's distance.
//                  Per round a neighbour moves x by at most gamma * r / n; r
//                  grows by at most a factor 1 + 3/20 per round even if every
//                  neighbour is hostile. clip_radius > 0 fixes r instead.
//                  clip_scale < 1 (default 0.5) keeps, on a ring, a hostile
//                  neighbour's pull below the honest one's, so the honest pull
//                  wins and our distance to the honest peers contracts; at 1
//                  the two balance and we can be walked away, above 1 we are
//                  dragged off geometrically. clipped() counts pulls shortened.
// Scratch buffers are owned and grow only when more members than ever before
// are passed, so a steady gossip round allocates nothing. mix_into needs no
// parameter-sized buffer (the aggregate goes into x block by block); only
// aggregate() keeps one, made on its first call.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "actors/peer_settings.hpp"

namespace murmur {

class robust_mix {
 public:
  robust_mix(robust_settings s, size_t dim);
  // members[0] is x_hat_self; every pointer addresses dim floats. Returns the
  // aggregate (valid until the next call). rule none gives the plain mean.
  // neighbours: how many neighbours the peer has in all, fresh or not (0 =
  // members.size() - 1); clipped_gossip does not let a lone fresh neighbour
  // of several set its own radius.
  std::span<const float> aggregate(std::span<const float* const> members, size_t neighbours = 0);
  // x += gamma * (aggregate - members[0]), the same floats as computing the
  // aggregate first, without holding it: what a gossip mix does.
  // pulls (gossip.contribution; empty = all 1): one factor in [0, 1] per
  // neighbour member, on its weight after clipping; clipping rules only
  // (others throw std::logic_error when given pulls).
  // after_block(k0, b), when given, runs once coordinates [k0, k0 + b) of
  // x are final, in increasing k0 (a caller's pass over the same block
  // while it is in cache); it must not change what later blocks read.
  void mix_into(std::span<float> x, std::span<const float* const> members, float gamma, size_t neighbours = 0,
                std::span<const float> pulls = {}, const std::function<void(size_t, size_t)>& after_block = {});
  // The clipping rules (centered_clip, clipped_gossip) split for a caller
  // that computes the distances elsewhere (gossip on a backend): from the
  // fresh neighbours' distances ||x_hat_j - x_hat_self||_2, in members
  // order, the radius (same state and counts as aggregate) and the weight of
  // each neighbour's pull, 1/n shrunk so the pull is at most r; the
  // aggregate is then x_hat_self + sum_j w_j (x_hat_j - x_hat_self).
  // Valid until the next call; throws std::logic_error for other rules.
  std::span<const float> clip_weights(std::span<const double> distances, size_t neighbours = 0);
  // The coordinate-wise rules (median, trimmed_mean): how many values of n
  // they drop at each end of a coordinate's sorted column (for a caller
  // that sorts elsewhere, compute_backend::coordinatewise_mix); throws
  // std::logic_error for other rules.
  size_t dropped(size_t n) const;
  uint64_t clipped() const { return clipped_; }  // neighbour pulls shortened so far
  double radius() const { return radius_; }      // the last radius used (clipping rules)
  // The only state one aggregate carries into the next: clipped_gossip's
  // slow average of its reference distance (0 before the first; the other
  // rules keep none). A segment replay restores it (gossip_state::replay_state).
  double reference_distance() const { return rbar_; }
  void restore_reference_distance(double rbar) { rbar_ = rbar; }

 private:
  static constexpr size_t kBlock = 256;  // coordinates sorted together
  robust_settings s_;
  size_t dim_;
  std::vector<float> agg_, column_, block_;  // agg_: aggregate() only; block_: one block of the aggregate
  std::vector<double> dist_, row_;
  double rbar_ = 0, radius_ = 0;  // clipped_gossip's slow average of its reference distance; last radius
  uint64_t clipped_ = 0;
  std::span<const float> pulls_;  // mix_into's, during the call
  // Each rule hands the aggregate to out(k0, block, b), block holding its
  // coordinates [k0, k0 + b), in increasing k0.
  template <class Out>
  void run(std::span<const float* const> members, size_t neighbours, Out&& out);
  template <class Out>
  void coordinatewise(std::span<const float* const> members, size_t drop, Out& out);
  template <class Out>
  void krum(std::span<const float* const> members, Out& out);
  template <class Out>
  void centered_clip(std::span<const float* const> members, size_t neighbours, Out& out);
  double adaptive_radius(size_t n, size_t neighbours);      // clipped_gossip, from row_[1..n)
  void clip_weights_from_row(size_t n, size_t neighbours);  // from row_[1..n) into column_[1..n)
};

}  // namespace murmur
