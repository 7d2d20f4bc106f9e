#include "actors/gossip_state.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <stdexcept>
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "tensor/squared_distance.hpp"

namespace murmur {

std::string_view to_string(reject_reason r) {
  auto i = static_cast<uint8_t>(r);
  if (i < frame_error_count) return to_string(static_cast<frame_error>(i));
  switch (r) {
    case reject_reason::wrong_shape: return "wrong_shape";
    case reject_reason::unknown_sender: return "unknown_sender";
    case reject_reason::wrong_kind: return "wrong_kind";
    case reject_reason::stale: return "stale";
    case reject_reason::quarantined: return "quarantined";
    case reject_reason::out_of_range: return "out_of_range";
    case reject_reason::off_schedule: return "off_schedule";
    default: return "unknown";
  }
}

uint64_t gossip_counters::rejected_total() const {
  uint64_t n = 0;
  for (size_t i = 1; i < rejected.size(); ++i) n += rejected[i];
  return n;
}

float parameter_bound(double configured, std::span<const float> x0) {
  double scale = 1.0;
  for (float v : x0) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  // Far beyond any parameter a model of this scale reaches by training, far
  // below where differences of two values overflow a float.
  return static_cast<float>(std::min(configured > 0 ? configured : 1000.0 * scale, 1e30));
}

gossip_state::gossip_state(uint32_t self, std::vector<uint32_t> neighbours, gossip_settings s,
                           std::span<const float> x0, const attack_settings& attack)
    : self_(self), neighbours_(std::move(neighbours)), s_(s), dim_(x0.size()),
      contrib_(s.contribution, s.contribution_window, neighbours_.size()),
      budget_(s.link_period_max, s.contribution_window, neighbours_.size()) {
  max_value_ = parameter_bound(s_.max_value, x0);
  if (const auto why = contribution_unsupported(s_); !why.empty())
    throw std::invalid_argument("gossip.contribution: not with " + why);
  if (const auto why = link_budget_unsupported(s_); !why.empty())
    throw std::invalid_argument("gossip.link_period_max: not with " + why);
  if (std::find(neighbours_.begin(), neighbours_.end(), self_) != neighbours_.end())
    throw std::invalid_argument("gossip_state: a peer cannot be its own neighbour");
  if (one_peer()) {
    const char* why = s_.mode == gossip_mode::delta ? "gossip.mode = delta"
                      : s_.detect.enabled             ? "detect.method"
                      : is_update_attack(attack.kind) ? "an update attack"
                                                      : nullptr;
    if (why) throw std::invalid_argument(std::string("gossip.schedule = one_peer: not with ") + why);
    link_hat_.assign(neighbours_.size(), std::vector<float>(x0.begin(), x0.end()));
    link_full_.assign(neighbours_.size(), 0);
    pairing_.assign(neighbours_.size(), {});
  }
  if (budget_.on()) {
    if (is_update_attack(attack.kind)) throw std::invalid_argument("gossip.link_period_max: not with an update attack");
    link_hat_.assign(neighbours_.size(), std::vector<float>(x0.begin(), x0.end()));
    link_full_.assign(neighbours_.size(), 0);
  }
  last_round_.assign(neighbours_.size(), 0);
  incarnation_.assign(neighbours_.size(), 0);
  heard_at_.assign(neighbours_.size(), 0);
  if (s_.mode == gossip_mode::delta) {
    residual_.assign(dim_, 0.f);
    pending_.assign(dim_, 0.f);
    base_.assign(x0.begin(), x0.end());
  } else {
    // Every peer starts from the same initial parameters, so each copy of
    // every public estimate starts equal to x0.
    self_hat_.assign(x0.begin(), x0.end());
    nbr_hat_.assign(neighbours_.size(), self_hat_);
    if (s_.robust.rule != robust_rule::none) robust_ = std::make_unique<robust_mix>(s_.robust, dim_);
    mix_members_.reserve(neighbours_.size() + 1);
    if (is_update_attack(attack.kind)) {
      // An attacker has no use for detection: it keeps its honest estimate
      // aside, for mixing and to know what an honest update looks like.
      attack_ = std::make_unique<update_attack>(attack, x0, neighbours_);
      for (uint32_t id : neighbours_) colluder_.push_back(attack_->colludes_with(id));
      honest_hat_ = self_hat_;
      honest_prev_ = self_hat_;
      honest_update_.assign(dim_, 0.f);
      if (attack_->equivocates()) pub_hat_.assign(neighbours_.size(), self_hat_);
    } else if (s_.detect.enabled) {
      detector_ = std::make_unique<rank_detector>(s_.detect, self_, dim_);
    }
  }
}

std::string gossip_state::contribution_unsupported(const gossip_settings& s) {
  if (s.contribution == contribution_rule::uniform) return {};
  if (s.mode == gossip_mode::delta) return "gossip.mode = delta";
  if (s.schedule == gossip_schedule::one_peer) return "gossip.schedule = one_peer";
  // The coordinate-wise rules and krum take no per-neighbour weights.
  const auto r = s.robust.rule;
  if (r != robust_rule::none && r != robust_rule::clipped_gossip && r != robust_rule::centered_clip)
    return "gossip.robust = median, trimmed_mean or krum";
  return {};
}

// The budget's periods come from the contribution weights' measured rates,
// and its link estimates are host vectors beside x_hat_self.
std::string gossip_state::link_budget_unsupported(const gossip_settings& s) {
  if (s.link_period_max <= 1) return {};
  if (s.contribution == contribution_rule::uniform) return "gossip.contribution = uniform";
  if (s.mode == gossip_mode::delta) return "gossip.mode = delta";
  if (s.schedule != gossip_schedule::all) return "gossip.schedule = one_peer";
  if (s.detect.enabled) return "detect.method";
  return {};
}

std::string gossip_state::backend_unsupported(const gossip_settings& s, const attack_settings& attack) {
  if (s.mode == gossip_mode::delta) return "gossip.mode = delta";
  if (s.link_period_max > 1) return "gossip.link_period_max > 1";
  if (s.contribution != contribution_rule::uniform) return "gossip.contribution = rate or mixing";
  if (s.schedule == gossip_schedule::one_peer) return "gossip.schedule = one_peer";
  // The clipping and coordinate-wise rules run on the backend; krum
  // compares whole estimates pairwise on the host.
  if (s.robust.rule == robust_rule::krum) return "gossip.robust = krum";
  if (s.detect.enabled) return "detect.method";
  if (is_update_attack(attack.kind)) return "an update attack";
  return {};
}

gossip_state::gossip_state(uint32_t self, std::vector<uint32_t> neighbours, gossip_settings s,
                           std::span<const float> x0, compute_backend& be)
    : self_(self), neighbours_(std::move(neighbours)), s_(s), dim_(x0.size()),
      contrib_(s.contribution, s.contribution_window, neighbours_.size()),
      budget_(1, 1, 0) {
  const auto why = backend_unsupported(s_, {});
  if (!why.empty()) throw std::invalid_argument("gossip on " + be.name() + ": not with " + why);
  if (std::find(neighbours_.begin(), neighbours_.end(), self_) != neighbours_.end())
    throw std::invalid_argument("gossip_state: a peer cannot be its own neighbour");
  max_value_ = parameter_bound(s_.max_value, x0);
  last_round_.assign(neighbours_.size(), 0);
  incarnation_.assign(neighbours_.size(), 0);
  heard_at_.assign(neighbours_.size(), 0);
  const auto n = static_cast<int64_t>(dim_);
  be_ = &be;
  dev_self_hat_ = backend_buffer<float>(be, n);
  be.upload(dev_self_hat_.get(), x0.data(), n);
  for (size_t j = 0; j < neighbours_.size(); ++j) {
    dev_nbr_hat_.emplace_back(be, n);
    be.copy(dev_nbr_hat_.back().get(), dev_self_hat_.get(), n);
  }
  dev_idx_ = backend_buffer<int32_t>(be, n);
  dev_val_ = backend_buffer<float>(be, n);
  host_idx_.reserve(dim_);
  if (s_.robust.rule != robust_rule::none) robust_ = std::make_unique<robust_mix>(s_.robust, dim_);
}

std::string gossip_state::replay_unsupported(const gossip_settings& s, const attack_settings& attack) {
  if (s.contribution != contribution_rule::uniform) return "gossip.contribution = rate or mixing";
  if (s.link_period_max > 1) return "gossip.link_period_max > 1";
  if (s.schedule == gossip_schedule::one_peer) return "gossip.schedule = one_peer";
  if (s.detect.enabled) return "detect.method";
  if (is_update_attack(attack.kind)) return "an update attack";
  return {};
}

void gossip_state::save_replay_state(replay_state& r) const {
  if (be_) throw std::invalid_argument("gossip_state replay: not in backend mode");
  if (detector_ || attack_) throw std::invalid_argument("gossip_state replay: not with a detector or update attack");
  if (one_peer()) throw std::invalid_argument("gossip_state replay: not with gossip.schedule = one_peer");
  r.neighbours = neighbours_;
  r.quarantined = quarantined_;
  r.last_round = last_round_;
  r.incarnation = incarnation_;
  r.heard_at = heard_at_;
  r.self_hat = self_hat_;
  r.nbr_hat.resize(nbr_hat_.size());
  for (size_t j = 0; j < nbr_hat_.size(); ++j) r.nbr_hat[j] = nbr_hat_[j];  // keeps each copy's storage
  r.residual = residual_;
  r.base = base_;
  r.pending = pending_;
  r.rounds = counters_.rounds;
  r.round = round_;
  r.in_flight = in_flight_;
  r.silent_streak = silent_streak_;
  r.last_step = last_step_;
  r.max_value = max_value_;
  r.force_full = force_full_;
  r.robust_reference = robust_ ? robust_->reference_distance() : 0.0;
}

gossip_state::replay_view gossip_state::view_replay_state() const {
  if (be_) throw std::invalid_argument("gossip_state replay: not in backend mode");
  if (detector_ || attack_) throw std::invalid_argument("gossip_state replay: not with a detector or update attack");
  if (one_peer()) throw std::invalid_argument("gossip_state replay: not with gossip.schedule = one_peer");
  // As save_replay_state, field for field.
  replay_view v;
  v.neighbours = neighbours_, v.quarantined = quarantined_;
  v.last_round = last_round_, v.incarnation = incarnation_, v.heard_at = heard_at_;
  v.self_hat = self_hat_;
  v.nbr_hat = nbr_hat_;
  v.residual = residual_, v.base = base_, v.pending = pending_;
  v.rounds = counters_.rounds, v.round = round_, v.in_flight = in_flight_, v.silent_streak = silent_streak_;
  v.last_step = last_step_;
  v.max_value = max_value_;
  v.force_full = force_full_;
  v.robust_reference = robust_ ? robust_->reference_distance() : 0.0;
  return v;
}

void gossip_state::load_replay_state(const replay_state& r) {
  if (be_) throw std::invalid_argument("gossip_state replay: not in backend mode");
  if (detector_ || attack_) throw std::invalid_argument("gossip_state replay: not with a detector or update attack");
  if (one_peer()) throw std::invalid_argument("gossip_state replay: not with gossip.schedule = one_peer");
  const size_t n = r.neighbours.size();
  const bool delta = s_.mode == gossip_mode::delta;
  auto sized = [&](const std::vector<float>& v) { return v.size() == dim_; };
  if (r.last_round.size() != n || r.incarnation.size() != n || r.heard_at.size() != n ||
      (!delta && (r.nbr_hat.size() != n || !sized(r.self_hat))) ||
      (delta && (!sized(r.residual) || !sized(r.base) || !sized(r.pending))))
    throw std::invalid_argument("gossip_state replay: a state of another shape (" + std::to_string(n) +
                                " neighbours, dimension " + std::to_string(r.self_hat.size()) + ", this one " +
                                std::to_string(dim_) + ")");
  for (const auto& h : r.nbr_hat)
    if (!sized(h)) throw std::invalid_argument("gossip_state replay: a neighbour estimate of another dimension");
  if (!std::isfinite(r.robust_reference) || r.robust_reference < 0 || (!robust_ && r.robust_reference != 0))
    throw std::invalid_argument("gossip_state replay: robust reference distance " + std::to_string(r.robust_reference) +
                                (robust_ ? " is not finite and non-negative" : " without a robust rule"));
  neighbours_ = r.neighbours;
  quarantined_ = r.quarantined;
  last_round_ = r.last_round;
  incarnation_ = r.incarnation;
  heard_at_ = r.heard_at;
  self_hat_ = r.self_hat;
  nbr_hat_ = r.nbr_hat;
  residual_ = r.residual;
  base_ = r.base;
  pending_ = r.pending;
  counters_.rounds = r.rounds;
  round_ = r.round;
  in_flight_ = r.in_flight;
  silent_streak_ = r.silent_streak;
  last_step_ = r.last_step;
  max_value_ = r.max_value;
  force_full_ = r.force_full;
  if (robust_) robust_->restore_reference_distance(r.robust_reference);
}

// Neighbour slot j counts in a mix at round `now`: heard from (rounds count
// from 1, so heard_at_ 0 is never) within max_staleness rounds.
bool gossip_state::fresh(size_t j, uint64_t now) const {
  return heard_at_[j] > 0 && (s_.max_staleness == 0 || now - heard_at_[j] <= s_.max_staleness);
}

int gossip_state::neighbour_slot(uint32_t peer) const {
  for (size_t i = 0; i < neighbours_.size(); ++i)
    if (neighbours_[i] == peer) return static_cast<int>(i);
  return -1;
}

std::string_view to_string(quarantine_cause c) {
  switch (c) {
    case quarantine_cause::statistical: return "statistical";
    case quarantine_cause::evidence: return "evidence";
    case quarantine_cause::missed_answers: return "missed_answers";
    case quarantine_cause::replay_mismatch: return "replay_mismatch";
  }
  return "unknown";
}

bool gossip_state::is_quarantined(uint32_t peer) const {
  return std::binary_search(quarantined_.begin(), quarantined_.end(), peer);
}

bool gossip_state::quarantine(uint32_t peer, quarantine_cause cause) {
  if (peer == self_ || is_quarantined(peer)) return false;
  quarantined_.insert(std::lower_bound(quarantined_.begin(), quarantined_.end(), peer), peer);
  counters_.quarantines.push_back({peer, last_step_, cause});
  if (neighbour_slot(peer) >= 0) {
    // The remaining neighbours' copies of us stay exact, so no full publish
    // is needed; one would also replace our grid values by exact ones and
    // make our next update look unlike anyone's to their detectors.
    const bool full = force_full_;
    set_neighbours(neighbours_, incarnation_);  // filters it out
    force_full_ = full;
  }
  return true;
}

void gossip_state::set_neighbours(const std::vector<uint32_t>& offered, const std::vector<uint64_t>& offered_inc) {
  if (offered.size() != offered_inc.size()) throw std::invalid_argument("set_neighbours: one incarnation per id");
  std::vector<uint32_t> ids;
  std::vector<uint64_t> incarnations;
  for (size_t i = 0; i < offered.size(); ++i)
    if (!is_quarantined(offered[i])) {
      ids.push_back(offered[i]);
      incarnations.push_back(offered_inc[i]);
    }
  std::vector<std::vector<float>> hat, pub, link;
  std::vector<uint8_t> link_full;
  std::vector<link_pairing> pairing;
  std::vector<backend_buffer<float>> dev_hat;
  std::vector<uint64_t> last, inc, heard;
  std::vector<int> from;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == self_) throw std::invalid_argument("gossip_state: a peer cannot be its own neighbour");
    int old = neighbour_slot(ids[i]);
    bool keep = old >= 0 && incarnation_[static_cast<size_t>(old)] == incarnations[i];
    from.push_back(keep ? old : -1);
    auto o = static_cast<size_t>(old);
    if (be_) {
      if (keep) {
        dev_hat.push_back(std::move(dev_nbr_hat_[o]));
      } else {
        dev_hat.emplace_back(*be_, static_cast<int64_t>(dim_));
        be_->copy(dev_hat.back().get(), dev_self_hat_.get(), static_cast<int64_t>(dim_));
      }
    } else if (s_.mode != gossip_mode::delta) {
      hat.push_back(keep ? std::move(nbr_hat_[o]) : self_hat_);
    }
    if (!pub_hat_.empty()) pub.push_back(keep ? std::move(pub_hat_[o]) : honest_hat_);
    if (one_peer() || budget_.on()) {
      // A new link starts with a dense frame; until then its estimate is a placeholder.
      link.push_back(keep ? std::move(link_hat_[o]) : self_hat_);
      link_full.push_back(keep ? link_full_[o] : 1);
    }
    if (one_peer()) pairing.push_back(keep ? std::move(pairing_[o]) : link_pairing{});
    last.push_back(keep ? last_round_[o] : 0);
    heard.push_back(keep ? heard_at_[o] : 0);
    inc.push_back(incarnations[i]);
    if (!keep) force_full_ = true;
  }
  if (ids.size() < neighbours_.size()) force_full_ = true;  // weights change for everyone
  if (budget_.on()) {
    // Links that end keep their counts for the report (sends_report).
    std::vector<uint8_t> kept(neighbours_.size(), 0);
    for (int f : from)
      if (f >= 0) kept[static_cast<size_t>(f)] = 1;
    for (size_t o = 0; o < kept.size(); ++o) {
      if (kept[o]) continue;
      link_send gone{neighbours_[o], budget_.periods()[o], budget_.frames(o), round_};
      auto it = std::find_if(departed_sends_.begin(), departed_sends_.end(),
                             [&](const link_send& l) { return l.peer == gone.peer; });
      if (it == departed_sends_.end()) departed_sends_.push_back(gone);
      else it->period = gone.period, it->frames += gone.frames, it->rounds = gone.rounds;
    }
  }
  if (be_) dev_nbr_hat_ = std::move(dev_hat);  // the ones not kept are freed
  neighbours_ = ids;
  nbr_hat_ = std::move(hat);
  last_round_ = std::move(last);
  incarnation_ = std::move(inc);
  heard_at_ = std::move(heard);
  if (!pub_hat_.empty()) pub_hat_ = std::move(pub);
  if (one_peer() || budget_.on()) {
    link_hat_ = std::move(link);
    link_full_ = std::move(link_full);
  }
  if (one_peer()) pairing_ = std::move(pairing);
  partners_.clear();  // slots have moved; the next publish chooses again
  contrib_.remap(from);
  budget_.remap(from);
  if (attack_) {
    attack_->reset_neighbours(neighbours_);
    colluder_.clear();
    for (uint32_t id : neighbours_) colluder_.push_back(attack_->colludes_with(id));
  }
  mix_members_.reserve(neighbours_.size() + 1);
  in_flight_ = 0;  // confirmations from a departed peer's link may never come
}

void gossip_state::mix(std::span<float> x) { (void)mix_blocks(x, {}); }

gossip_counters gossip_state::sends_report() const {
  gossip_counters c = counters_;
  c.link_sends.clear();
  if (!budget_.on()) return c;
  const auto periods = budget_.periods();
  for (size_t j = 0; j < neighbours_.size(); ++j)
    c.link_sends.push_back({neighbours_[j], j < periods.size() ? periods[j] : 1u, budget_.frames(j), round_});
  // Links that ended (the neighbour left, restarted or was quarantined): their frames count
  // too, added to a link to the same peer now.
  for (const auto& d : departed_sends_) {
    auto it = std::find_if(c.link_sends.begin(), c.link_sends.end(),
                           [&](const link_send& l) { return l.peer == d.peer; });
    if (it == c.link_sends.end()) c.link_sends.push_back(d);
    else it->frames += d.frames;
  }
  return c;
}

bool gossip_state::mix_blocks(std::span<float> x, const std::function<void(size_t, size_t)>& after_block) {
  if (x.size() != dim_) throw std::invalid_argument("gossip_state::mix: wrong parameter count");
  if (s_.mode == gossip_mode::delta) {
    // base_ moves with x, so x - base_ stays the local change not yet published.
    for (size_t k = 0; k < dim_; ++k) {
      x[k] += pending_[k];
      base_[k] += pending_[k];
      pending_[k] = 0.f;
    }
    return false;
  }
  if (one_peer()) {
    mix_one_peer(x);
    return false;
  }
  // One mix per published round: mixing again with the same stale estimates
  // while our frames are still on the wire would apply the same correction
  // several times over, and the delayed feedback diverges.
  if (neighbours_.empty() || in_flight_ > 0) return false;
  const float c = static_cast<float>(s_.gamma / (static_cast<double>(neighbours_.size()) + 1.0));
  float* xp = x.data();
  const float* sh = attack_ ? honest_hat_.data() : self_hat_.data();
  // Rounds are counted from 1, so heard_at_ == 0 means never heard.
  const uint64_t now = counters_.rounds + 1;
  if (robust_) {
    // x += gamma * (agg - x_hat_self) over ourselves and the fresh neighbours.
    mix_members_.assign(1, sh);
    mix_pulls_.clear();
    for (size_t j = 0; j < nbr_hat_.size(); ++j) {
      if (!colluder_.empty() && colluder_[j]) continue;
      if (fresh(j, now)) {
        mix_members_.push_back(nbr_hat_[j].data());
        mix_pulls_.push_back(contrib_.pulls()[j]);
      } else {
        ++counters_.stale_skips;
      }
    }
    if (mix_members_.size() == 1) return false;
    const uint64_t clipped_before = robust_->clipped();
    robust_->mix_into(x, mix_members_, static_cast<float>(s_.gamma), nbr_hat_.size(),
                      contrib_.weighted() ? std::span<const float>(mix_pulls_) : std::span<const float>(),
                      after_block);
    counters_.clipped += robust_->clipped() - clipped_before;
    return static_cast<bool>(after_block);
  }
  // x += c * (sum_j x_hat_j - deg * x_hat_self): each coordinate adds the
  // neighbours' terms in slot order, then subtracts ours, in one pass over
  // x block by block (the same floats as a pass per neighbour).
  float active = 0.f;
  mix_members_.clear();
  for (size_t j = 0; j < nbr_hat_.size(); ++j) {
    if (!colluder_.empty() && colluder_[j]) continue;  // an attacker ignores its accomplices
    if (!fresh(j, now)) {
      ++counters_.stale_skips;
      continue;
    }
    active += 1.f;
    mix_members_.push_back(nbr_hat_[j].data());
  }
  if (contrib_.weighted()) {
    // x += c * sum_j p_j (x_hat_j - x_hat_self), p_j the pulls (contribution.hpp).
    float ps = 0.f;
    for (size_t j = 0; j < nbr_hat_.size(); ++j) {
      if (!fresh(j, now) || (!colluder_.empty() && colluder_[j])) continue;
      const float cj = c * contrib_.pulls()[j];
      ps += cj;
      const float* hp = nbr_hat_[j].data();
      for (size_t k = 0; k < dim_; ++k) xp[k] += cj * hp[k];
    }
    for (size_t k = 0; k < dim_; ++k) xp[k] -= ps * sh[k];
    return false;
  }
  const float cs = c * active;
  constexpr size_t kBlock = 1024;
  for (size_t k0 = 0; k0 < dim_; k0 += kBlock) {
    const size_t k1 = std::min(dim_, k0 + kBlock);
    for (const float* hp : mix_members_)
      for (size_t k = k0; k < k1; ++k) xp[k] += c * hp[k];
    for (size_t k = k0; k < k1; ++k) xp[k] -= cs * sh[k];
    if (after_block) after_block(k0, k1 - k0);
  }
  return static_cast<bool>(after_block);
}

// Bit for bit mix(x) then publish(x, step): the compressor's test of a
// coordinate reads only its x and x_hat_self, which no later block of the
// mix reads, so each block can be tested right after the mix wrote it.
std::span<const std::byte> gossip_state::mix_publish(std::span<float> x, uint64_t step) {
  const float tau = threshold_at(step);
  const bool fusable = !be_ && s_.mode == gossip_mode::threshold && !one_peer() && !budget_.on() && !attack_ &&
                       !detector_ && s_.grid && tau > 0.f && s_.trigger <= 0 && !force_full_ && in_flight_ == 0 &&
                       !neighbours_.empty() && x.size() == dim_;
  if (!fusable) {
    mix(x);
    return publish(x, step);
  }
  clear_out_msg();
  const bool tested = mix_blocks(x, [&](size_t k0, size_t n) { compress_grid_range(x.data(), self_hat_.data(), tau, k0, n); });
  // What publish() does before its compress (no detector, budget or frames in flight here).
  start_round(step);
  if (!tested) compress_grid_range(x.data(), self_hat_.data(), tau, 0, dim_);  // nothing was mixed
  out_msg_.kind = update_kind::grid_set;
  out_msg_.scale = tau;
  return seal(step);
}

// Every publish: the round is counted, its tau fixed for compress(), and
// the last round's per-neighbour frames (one_peer, a link budget, an
// equivocating attacker) cleared.
void gossip_state::start_round(uint64_t step) {
  ++counters_.rounds;
  last_step_ = step;
  tau_ = threshold_at(step);
  for (auto& f : out_frames_) f.clear();
}

void gossip_state::clear_out_msg() {
  out_msg_.indices.clear();
  out_msg_.values.clear();
  out_msg_.grid.clear();
  out_msg_.scale = 0;
}

std::span<const std::byte> gossip_state::publish(std::span<const float> x, uint64_t step) {
  if (x.size() != dim_) throw std::invalid_argument("gossip_state::publish: wrong parameter count");
  start_round(step);
  if (detector_) detect();
  if (neighbours_.empty()) return {};
  if (budget_.on()) budget_.attempt(in_flight_ > 0);
  if (in_flight_ > 0) { ++counters_.busy_rounds; return {}; }
  if (one_peer()) {
    publish_one_peer(x, step);
    return {};
  }
  if (budget_.on()) {
    publish_budgeted(x, step);
    return {};
  }
  const float tau = tau_;
  clear_out_msg();
  if (s_.mode == gossip_mode::delta) {
    for (size_t k = 0; k < dim_; ++k) residual_[k] += x[k] - base_[k];
    std::copy(x.begin(), x.end(), base_.begin());
    if (s_.trigger > 0) {
      double n2 = 0;
      for (float r : residual_) n2 += static_cast<double>(r) * r;
      if (n2 < s_.trigger) { ++counters_.silent_rounds; return {}; }
    }
    for (size_t k = 0; k < dim_; ++k) {
      if (residual_[k] != 0.f && (force_full_ || std::fabs(residual_[k]) >= tau)) {
        out_msg_.indices.push_back(static_cast<uint32_t>(k));
        out_msg_.values.push_back(residual_[k]);
        residual_[k] = 0.f;
      }
    }
    out_msg_.kind = update_kind::sparse_add;
  } else {
    std::span<const float> pub = x;
    if (attack_) {
      // What we would publish honestly (the frame is discarded), the update
      // that makes, then the poisoned point to publish instead.
      compress(x, honest_hat_);
      for (size_t k = 0; k < dim_; ++k) honest_update_[k] = honest_hat_[k] - honest_prev_[k];
      std::copy(honest_hat_.begin(), honest_hat_.end(), honest_prev_.begin());
      pub = attack_->poison(honest_update_, step);
      out_msg_.indices.clear();
      out_msg_.values.clear();
      out_msg_.grid.clear();
      out_msg_.scale = 0;
      if (attack_->equivocates()) {
        publish_per_neighbour(step);
        return {};
      }
    }
    if (!compress(pub, self_hat_)) {
      ++counters_.silent_rounds;
      return {};
    }
    if (attack_ && !attack_->raw_indices().empty()) put_raw_values(self_hat_);
  }
  return seal(step);
}

// The end of every single-frame publish: silence or a keepalive, and the
// frame of out_msg_.
std::span<const std::byte> gossip_state::seal(uint64_t step) {
  if (out_msg_.values.empty() && ++silent_streak_ < s_.keepalive_rounds) {
    ++counters_.silent_rounds;
    return {};
  }
  silent_streak_ = 0;  // an empty frame now is the keepalive
  force_full_ = false;
  out_msg_.sender = self_;
  out_msg_.round = ++round_;
  out_msg_.step = step;
  out_msg_.dim = static_cast<uint32_t>(dim_);
  counters_.coords_sent += out_msg_.values.size();
  encode_gossip(out_msg_, out_frame_);
  counters_.msgs_sent += neighbours_.size();
  in_flight_ += neighbours_.size();
  counters_.bytes_sent += out_frame_.size() * neighbours_.size();
  return out_frame_;
}

// An extreme attack's frame: its raw values replace what the compressor put
// at those coordinates (a grid frame becomes a sparse one: the grid cannot
// carry them), and our public estimate (as receivers will hold it) takes them.
void gossip_state::put_raw_values(std::vector<float>& hat) {
  const auto idx = attack_->raw_indices();
  const auto val = attack_->raw_values();
  for (size_t i = 0; i < idx.size(); ++i) hat[idx[i]] = val[i];
  if (out_msg_.kind == update_kind::dense_set) {
    for (size_t i = 0; i < idx.size(); ++i) out_msg_.values[idx[i]] = val[i];
    return;
  }
  std::vector<uint32_t> indices;
  std::vector<float> values;
  indices.reserve(out_msg_.indices.size() + idx.size());
  values.reserve(indices.capacity());
  size_t a = 0, b = 0;
  while (a < out_msg_.indices.size() || b < idx.size()) {
    if (b == idx.size() || (a < out_msg_.indices.size() && out_msg_.indices[a] < idx[b])) {
      indices.push_back(out_msg_.indices[a]);
      values.push_back(out_msg_.values[a++]);
    } else {
      if (a < out_msg_.indices.size() && out_msg_.indices[a] == idx[b]) ++a;
      indices.push_back(idx[b]);
      values.push_back(val[b++]);
    }
  }
  out_msg_.kind = update_kind::sparse_set;
  out_msg_.indices = std::move(indices);
  out_msg_.values = std::move(values);
  out_msg_.grid.clear();
  out_msg_.scale = 0;
}

// An equivocating attacker: one point, one copy of us and one frame per
// neighbour; the round is shared. Silent only when no frame carries a value
// and no keepalive is due.
void gossip_state::publish_per_neighbour(uint64_t step) {
  const auto& points = attack_->isolate(honest_hat_, nbr_hat_);
  const size_t n = neighbours_.size();
  out_frames_.resize(n);
  bool any = false;
  uint64_t coords = 0;
  for (size_t j = 0; j < n; ++j) {
    out_msg_.indices.clear();
    out_msg_.values.clear();
    out_msg_.grid.clear();
    out_msg_.scale = 0;
    if (!compress(points[j], pub_hat_[j])) continue;
    any = any || !out_msg_.values.empty();
    coords += out_msg_.values.size();
    out_msg_.sender = self_;
    out_msg_.round = round_ + 1;
    out_msg_.step = step;
    out_msg_.dim = static_cast<uint32_t>(dim_);
    encode_gossip(out_msg_, out_frames_[j]);
  }
  if (!any && ++silent_streak_ < s_.keepalive_rounds) {
    for (auto& f : out_frames_) f.clear();
    ++counters_.silent_rounds;
    return;
  }
  silent_streak_ = 0;
  force_full_ = false;
  ++round_;
  counters_.coords_sent += coords;
  for (const auto& f : out_frames_) {
    if (f.empty()) continue;
    ++counters_.msgs_sent;
    ++in_flight_;
    counters_.bytes_sent += f.size();
  }
}

namespace {

// The compressor visits coordinates in chunks of kChunk: in a steady round
// only about one in a hundred moves past the threshold, so a vectorized test
// of the whole chunk (moved_bits) gives a bit per coordinate that did, and
// the per-coordinate code, unchanged, runs only on those, in increasing k,
// while the chunk is still in the L1 cache (a second pass over the whole
// vector fetched every moved coordinate's lines again from memory). A NaN
// counts as moved, as the per-coordinate test treats it. The test is bound
// by its arithmetic in the baseline x86-64 build (4-wide SSE2) when the
// vectors are in cache, so an AVX-512 version runs where the CPU has it;
// both give the same bits (one subtraction and one comparison per
// coordinate, exact).
constexpr size_t kChunk = 1024;  // a multiple of 64

// Bit c of the result set when |x[c] - hat[c]| < threshold does not hold, c < n <= 64.
uint64_t moved_word(const float* x, const float* hat, size_t n, float threshold) {
  uint64_t m = 0;
  size_t c = 0;
#if defined(__SSE2__)
  const __m128 t = _mm_set1_ps(threshold), sign = _mm_set1_ps(-0.f);
  for (; c + 4 <= n; c += 4) {
    const __m128 d = _mm_andnot_ps(sign, _mm_sub_ps(_mm_loadu_ps(x + c), _mm_loadu_ps(hat + c)));
    m |= static_cast<uint64_t>(_mm_movemask_ps(_mm_cmplt_ps(d, t)) ^ 0xf) << c;
  }
#endif
  for (; c < n; ++c) m |= static_cast<uint64_t>(std::fabs(x[c] - hat[c]) < threshold ? 0u : 1u) << c;
  return m;
}

#if defined(__x86_64__)
[[gnu::target("avx512f")]] void moved_bits_avx512(const float* x, const float* hat, size_t n, float threshold,
                                                   uint64_t* mask) {
  const __m512 t = _mm512_set1_ps(threshold);
  size_t w = 0;
  for (; 64 * w + 64 <= n; ++w) {
    const float* xw = x + 64 * w;
    const float* hw = hat + 64 * w;
    uint64_t m = 0;
    for (size_t c = 0; c < 64; c += 16) {
      const __m512 d = _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(xw + c), _mm512_loadu_ps(hw + c)));
      m |= static_cast<uint64_t>(_mm512_cmp_ps_mask(d, t, _CMP_NLT_UQ)) << c;  // not below, or NaN
    }
    mask[w] = m;
  }
  if (64 * w < n) mask[w] = moved_word(x + 64 * w, hat + 64 * w, n - 64 * w, threshold);
}
#endif

// Bit k % 64 of mask[k / 64] set when coordinate k moved, k < n; mask holds (n + 63) / 64 words.
void moved_bits(const float* x, const float* hat, size_t n, float threshold, uint64_t* mask) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) {
    moved_bits_avx512(x, hat, n, threshold, mask);
    return;
  }
#endif
  for (size_t w = 0; 64 * w < n; ++w)
    mask[w] = moved_word(x + 64 * w, hat + 64 * w, std::min<size_t>(64, n - 64 * w), threshold);
}

// Calls f(k), in order, for every k < n with |x[k] - hat[k]| not below
// band (NaN included); a chunk's test is made before f changes its hat.
template <class F>
void for_each_moved(const float* x, const float* hat, size_t n, float band, F&& f) {
  std::array<uint64_t, kChunk / 64> moved;  // a bit per coordinate of a chunk
  for (size_t k0 = 0; k0 < n; k0 += kChunk) {
    const size_t b = std::min(kChunk, n - k0);
    moved_bits(x + k0, hat + k0, b, band, moved.data());
    for (size_t w = 0; 64 * w < b; ++w)
      for (uint64_t m = moved[w]; m != 0; m &= m - 1) f(k0 + 64 * w + static_cast<size_t>(std::countr_zero(m)));
  }
}

}  // namespace

// The grid compressor on coordinates [k0, k0 + n): those that moved 0.75
// tau or more go to the nearest grid value, and into out_msg_ if it differs.
void gossip_state::compress_grid_range(const float* x, float* hat, float tau, size_t k0, size_t n) {
  const float near = 0.75f * tau, limit = 1e9f;
  for_each_moved(x + k0, hat + k0, n, near, [&](size_t i) {
    const size_t k = k0 + i;
    float q = std::nearbyint(std::clamp(x[k] / tau, -limit, limit));
    float v = q * tau;
    if (v == hat[k]) return;
    hat[k] = v;
    out_msg_.indices.push_back(static_cast<uint32_t>(k));
    out_msg_.grid.push_back(static_cast<int32_t>(q));
    out_msg_.values.push_back(v);
  });
}

// The compressor: moves `hat` (the public estimate) toward x and fills
// out_msg_ with what changed. False when the trigger holds the round back.
bool gossip_state::compress(std::span<const float> x, std::vector<float>& hat) {
  const float tau = tau_;
  if (force_full_) {
    std::copy(x.begin(), x.end(), hat.begin());
    out_msg_.kind = update_kind::dense_set;
    out_msg_.values.assign(hat.begin(), hat.end());
  } else {
    if (s_.trigger > 0 && squared_distance(x.data(), hat.data(), dim_) < s_.trigger) return false;
    if (s_.grid && tau > 0.f) {
      // Publish on a tau-grid every peer shares: peers that agree publish
      // the same value and fall silent, and a value is a small integer.
      compress_grid_range(x.data(), hat.data(), tau, 0, dim_);
      out_msg_.kind = update_kind::grid_set;
      out_msg_.scale = tau;
    } else {
      for_each_moved(x.data(), hat.data(), dim_, tau, [&](size_t k) {
        if (std::fabs(x[k] - hat[k]) >= tau) {  // not a NaN
          hat[k] = x[k];
          out_msg_.indices.push_back(static_cast<uint32_t>(k));
        }
      });
      if (5 * out_msg_.indices.size() > 4 * dim_) {
        // Dense coding is cheaper once more than ~4/5 of the coordinates move.
        out_msg_.kind = update_kind::dense_set;
        out_msg_.indices.clear();
        out_msg_.values.assign(hat.begin(), hat.end());
      } else {
        out_msg_.kind = update_kind::sparse_set;
        for (uint32_t k : out_msg_.indices) out_msg_.values.push_back(hat[k]);
      }
    }
  }
  return true;
}

uint32_t gossip_state::link_colour(uint32_t peer) const {
  if (!one_peer() || peer == self_) return 0;
  return static_cast<uint32_t>(std::countr_zero(self_ ^ peer)) % std::max<uint32_t>(1, s_.schedule_colours);
}

// Late in training the lr, and with it how far a step moves x, is small:
// a tau that follows it keeps the dead band (disagreements below ~tau are
// never sent) in proportion to the moves, where a fixed one leaves the
// peers a floor of about 150 tau apart (docs/gossip_schedule.md).
float gossip_state::threshold_at(uint64_t step) const {
  if (s_.threshold_power <= 0 || s_.lr_total_steps <= 0) return static_cast<float>(s_.threshold);
  const double t = std::min(1.0, static_cast<double>(step) / static_cast<double>(s_.lr_total_steps));
  const double lr_ratio = 0.5 * (1.0 + std::cos(M_PI * t));
  return static_cast<float>(s_.threshold * std::max(s_.threshold_floor, std::pow(lr_ratio, s_.threshold_power)));
}

uint32_t gossip_state::round_colour(uint64_t step) const {
  if (!one_peer()) return 0;
  return static_cast<uint32_t>((step / std::max<uint64_t>(1, s_.schedule_every)) %
                               std::max<uint32_t>(1, s_.schedule_colours));
}

// One frame per partner of this round, each compressed against that link's
// estimate (its own error feedback), so every link's copy stays exact no
// matter which links the other rounds used.
void gossip_state::publish_one_peer(std::span<const float> x, uint64_t step) {
  const uint32_t colour = round_colour(step);
  partners_.clear();
  for (size_t j = 0; j < neighbours_.size(); ++j)
    if (link_colour(neighbours_[j]) == colour) partners_.push_back(j);
  if (force_full_) std::fill(link_full_.begin(), link_full_.end(), uint8_t{1});
  force_full_ = false;
  out_frames_.resize(neighbours_.size());
  bool any = false;
  if (!partners_.empty()) ++round_;
  const float pull = static_cast<float>(s_.gamma / (static_cast<double>(partners_.size()) + 1.0));
  for (size_t j : partners_) {
    auto& p = pairing_[j];
    if (p.sent > p.mixed) {
      // Our last frame's pair is still open: a new frame now would move the
      // estimate the partner is about to mix with. Wait for it, within limits.
      if (s_.max_staleness == 0 || counters_.rounds - p.sent_at <= s_.max_staleness) {
        ++counters_.stale_skips;
        continue;
      }
      p.mixed = p.sent;  // given up (a frame was lost): resynchronise in full
      link_full_[j] = 1;
    }
    if (!compress_link(x, j)) continue;  // the trigger held this link back
    p.sent_dense = out_msg_.kind == update_kind::dense_set;
    ++p.sent;
    p.pull = pull;
    p.sent_at = counters_.rounds;
    seal_link(j, p.sent, step);
    any = true;
  }
  if (!any) ++counters_.silent_rounds;
}

bool gossip_state::compress_link(std::span<const float> x, size_t j) {
  clear_out_msg();
  force_full_ = link_full_[j] != 0;  // compress() reads it
  const bool sent = compress(x, link_hat_[j]);
  force_full_ = false;
  return sent;
}

void gossip_state::seal_link(size_t j, uint64_t round, uint64_t step) {
  link_full_[j] = 0;
  out_msg_.sender = self_;
  out_msg_.round = round;
  out_msg_.step = step;
  out_msg_.dim = static_cast<uint32_t>(dim_);
  encode_gossip(out_msg_, out_frames_[j]);
  counters_.coords_sent += out_msg_.values.size();
  ++counters_.msgs_sent;
  ++in_flight_;
  counters_.bytes_sent += out_frames_[j].size();
}

// Link budget: x_hat_self moves as in a plain publish (mix() reads it; its
// frame is not sent), then each due link gets a frame compressed against
// its own estimate, so it carries all the neighbour missed while not due.
// A link not due, or with nothing to send and no keepalive due, gets none.
void gossip_state::publish_budgeted(std::span<const float> x, uint64_t step) {
  clear_out_msg();
  if (!compress(x, self_hat_)) {  // the trigger holds the round back
    ++counters_.silent_rounds;
    return;
  }
  if (force_full_) std::fill(link_full_.begin(), link_full_.end(), uint8_t{1});
  force_full_ = false;
  const bool keepalive = out_msg_.values.empty() && silent_streak_ + 1 >= s_.keepalive_rounds;
  budget_.plan(contrib_.ratios());
  const uint64_t round = round_ + 1;
  out_frames_.resize(neighbours_.size());
  bool any = false, moved = false;
  for (size_t j = 0; j < neighbours_.size(); ++j) {
    if (!link_full_[j] && !budget_.due(j, round)) continue;
    const bool sent = compress_link(x, j);
    if (!sent || (out_msg_.values.empty() && !keepalive)) continue;
    // The link's own frame count as its round: the neighbour's contribution weights then
    // measure how often it hears from us, and pull less toward a copy it gets rarely.
    seal_link(j, budget_.frames(j) + 1, step);
    budget_.sent(j, round);
    any = true;
    moved = moved || !out_msg_.values.empty();
  }
  if (!any) {
    ++silent_streak_;
    ++counters_.silent_rounds;
    return;
  }
  round_ = round;
  if (moved || keepalive) silent_streak_ = 0;
}

// Each link's open pair, once both its frames are here: x += c (x_hat_j -
// x_hat_ij), c = gamma/(m+1) from the round of our frame. Both ends of the
// link mix the same two estimates (a link sends nothing more until its pair
// is mixed, and a partner's next frame waits in `held`), so a pair's sum is kept.
void gossip_state::mix_one_peer(std::span<float> x) {
  for (size_t j = 0; j < pairing_.size(); ++j) {
    auto& p = pairing_[j];
    if (p.sent <= p.mixed) continue;
    if (!p.ready()) {
      ++counters_.stale_skips;
      continue;
    }
    if (p.sent_dense == p.got_dense) {
      mix_pair(x, j, p.pull);
    } else {
      // One side resynchronised (dense) and the other did not: the
      // sparse side's copy may be off, so neither end mixes this pair, and
      // both send the next one dense.
      link_full_[j] = 1;
    }
    p.mixed = p.sent;
    if (!p.held.empty()) {
      // The partner's next frame: it mixed this pair before we did.
      std::vector<std::byte> f;
      f.swap(p.held);
      accept(neighbours_[j], f, nullptr);
      f.clear();
      if (p.held.empty()) p.held.swap(f);  // keep the storage for the next one
    }
  }
}

// A robust rule aggregates the pair {x_hat_ij, x_hat_j}.
void gossip_state::mix_pair(std::span<float> x, size_t j, float c) {
  float* xp = x.data();
  float* hp = nbr_hat_[j].data();
  float* sp = link_hat_[j].data();
  if (s_.estimates_follow_mix && !robust_) {
    // Both estimates move with the pair (the partner computes the same
    // floats: its d is exactly -ours), so x - x_hat_ij keeps only what
    // training and other links changed, and the next round does not pull
    // again by a difference this mix already closed.
    for (size_t k = 0; k < dim_; ++k) {
      const float d = c * (hp[k] - sp[k]);
      xp[k] += d;
      sp[k] += d;
      hp[k] -= d;
    }
    return;
  }
  if (robust_) {
    // mix_into moves x by g (agg - x_hat_ij), agg = the pair's aggregate
    // (unclipped: the midpoint), so g = 2c gives the plain pull c (x_hat_j - x_hat_ij).
    mix_members_.assign({sp, hp});
    const uint64_t clipped_before = robust_->clipped();
    robust_->mix_into(x, mix_members_, 2.f * c, 1);
    counters_.clipped += robust_->clipped() - clipped_before;
    return;
  }
  for (size_t k = 0; k < dim_; ++k) xp[k] += c * (hp[k] - sp[k]);
}

void gossip_state::mix_on_backend(float* x) {
  if (!be_) throw std::logic_error("gossip_state::mix_on_backend: not in backend mode");
  if (neighbours_.empty() || in_flight_ > 0) return;
  // As mix(): x += c * (sum_j x_hat_j - active * x_hat_self) over the fresh
  // neighbours, c = gamma / (degree + 1).
  const float w = static_cast<float>(1.0 / (static_cast<double>(neighbours_.size()) + 1.0));
  const uint64_t now = counters_.rounds + 1;
  dev_mix_hats_.clear();
  dev_mix_weights_.clear();
  for (size_t j = 0; j < dev_nbr_hat_.size(); ++j) {
    if (fresh(j, now)) {
      dev_mix_hats_.push_back(dev_nbr_hat_[j].get());
      dev_mix_weights_.push_back(w);
    } else {
      ++counters_.stale_skips;
    }
  }
  if (dev_mix_hats_.empty()) return;
  if (robust_ && (s_.robust.rule == robust_rule::median || s_.robust.rule == robust_rule::trimmed_mean)) {
    // As mix()'s robust path: x += gamma * (agg - x_hat_self), agg sorted
    // per coordinate on the backend; nothing crosses.
    const size_t members = dev_mix_hats_.size() + 1;
    be_->coordinatewise_mix(x, dev_self_hat_.get(), dev_mix_hats_.data(), static_cast<int>(members - 1),
                            static_cast<int>(robust_->dropped(members)), static_cast<float>(s_.gamma),
                            static_cast<int64_t>(dim_));
    return;
  }
  if (robust_) {
    // As mix()'s robust path for the clipping rules: x += gamma * (agg -
    // x_hat_self), agg the clipped mean; the distances come to the host for
    // the radius (count doubles), the estimates stay where they are.
    const int count = static_cast<int>(dev_mix_hats_.size());
    dev_mix_dist_.resize(dev_mix_hats_.size());
    be_->squared_distances(dev_self_hat_.get(), dev_mix_hats_.data(), count, static_cast<int64_t>(dim_),
                           dev_mix_dist_.data());
    for (double& d : dev_mix_dist_) d = std::sqrt(d);
    const uint64_t clipped_before = robust_->clipped();
    const auto weights = robust_->clip_weights(dev_mix_dist_, dev_nbr_hat_.size());
    counters_.clipped += robust_->clipped() - clipped_before;
    be_->clip_mix(x, dev_self_hat_.get(), dev_mix_hats_.data(), weights.data(), count,
                  static_cast<float>(s_.gamma), static_cast<int64_t>(dim_));
    return;
  }
  be_->gossip_mix(x, dev_self_hat_.get(), dev_mix_hats_.data(), dev_mix_weights_.data(),
                  static_cast<int>(dev_mix_hats_.size()), static_cast<float>(s_.gamma), static_cast<int64_t>(dim_));
}

std::span<const std::byte> gossip_state::publish_on_backend(const float* x, uint64_t step) {
  if (!be_) throw std::logic_error("gossip_state::publish_on_backend: not in backend mode");
  start_round(step);
  if (neighbours_.empty()) return {};
  if (in_flight_ > 0) { ++counters_.busy_rounds; return {}; }
  clear_out_msg();
  if (!compress_on_backend(x)) {
    ++counters_.silent_rounds;
    return {};
  }
  return seal(step);
}

// compress() on the backend: the selection runs there, and only the chosen
// coordinates come back (the whole estimate only when the frame is dense).
// False when the trigger holds the round back.
bool gossip_state::compress_on_backend(const float* x) {
  const float tau = tau_;
  const auto n = static_cast<int64_t>(dim_);
  const auto dense = [&] {
    out_msg_.kind = update_kind::dense_set;
    out_msg_.indices.clear();
    out_msg_.values.resize(dim_);
    be_->download(out_msg_.values.data(), dev_self_hat_.get(), n);
  };
  if (force_full_) {
    be_->copy(dev_self_hat_.get(), x, n);
    dense();
    return true;
  }
  if (s_.trigger > 0) {
    // compress()'s trigger: the residual's squared norm, on the backend; one
    // double crosses (the CPU backend sums in compress()'s order, tensor/squared_distance).
    double n2 = 0;
    const float* xs = x;
    be_->squared_distances(dev_self_hat_.get(), &xs, 1, n, &n2);
    if (n2 < s_.trigger) return false;
  }
  const bool grid = s_.grid && tau > 0.f;
  const int64_t count = be_->gossip_select(x, dev_self_hat_.get(), n, grid ? 0.75f * tau : tau, grid ? tau : 0.f,
                                           dev_idx_.get(), dev_val_.get());
  if (!grid && 5 * count > 4 * n) {
    dense();
    return true;
  }
  host_idx_.resize(static_cast<size_t>(count));
  out_msg_.values.resize(static_cast<size_t>(count));
  be_->download_int(host_idx_.data(), dev_idx_.get(), count);
  be_->download(out_msg_.values.data(), dev_val_.get(), count);
  out_msg_.indices.assign(host_idx_.begin(), host_idx_.end());
  if (grid) {
    for (float v : out_msg_.values) out_msg_.grid.push_back(static_cast<int32_t>(std::nearbyint(v / tau)));
    out_msg_.kind = update_kind::grid_set;
    out_msg_.scale = tau;
  } else {
    out_msg_.kind = update_kind::sparse_set;
  }
  return true;
}

void gossip_state::detect() {
  const auto t0 = std::chrono::steady_clock::now();
  auto flagged = detector_->on_round(self_hat_, neighbours_, nbr_hat_, last_round_);
  flagged_.assign(flagged.begin(), flagged.end());
  counters_.detect_ns += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  for (uint32_t peer : flagged_) quarantine(peer, quarantine_cause::statistical);
}

bool gossip_state::receive(uint32_t from, std::span<const std::byte> frame, reject_reason* why) {
  ++counters_.msgs_received;
  counters_.bytes_received += frame.size();
  return accept(from, frame, why);
}

bool gossip_state::accept(uint32_t from, std::span<const std::byte> frame, reject_reason* why) {
  auto reject = [&](reject_reason r) {
    ++counters_.rejected[static_cast<size_t>(r)];
    if (why) *why = r;
    return false;
  };
  auto err = decode_gossip(frame, s_.max_frame_bytes, in_msg_);
  if (err != frame_error::none) return reject(static_cast<reject_reason>(err));
  if (in_msg_.dim != dim_) return reject(reject_reason::wrong_shape);
  if (is_quarantined(from)) return reject(reject_reason::quarantined);
  int slot = neighbour_slot(in_msg_.sender);
  if (slot < 0 || in_msg_.sender != from) return reject(reject_reason::unknown_sender);
  if (one_peer() && link_colour(from) != round_colour(in_msg_.step)) return reject(reject_reason::off_schedule);
  bool delta = s_.mode == gossip_mode::delta;
  if (delta != (in_msg_.kind == update_kind::sparse_add)) return reject(reject_reason::wrong_kind);
  for (float v : in_msg_.values)
    if (!(std::fabs(v) <= max_value_)) return reject(reject_reason::out_of_range);
  auto& last = last_round_[static_cast<size_t>(slot)];
  if (in_msg_.round <= last) return reject(reject_reason::stale);
  if (one_peer()) {
    auto& p = pairing_[static_cast<size_t>(slot)];
    if (p.ready()) {
      // The partner's next exchange, before we mixed the pair it follows:
      // applied after that mix (mix_one_peer), so that both ends mix the
      // same estimates.
      p.held.assign(frame.begin(), frame.end());
      if (why) *why = static_cast<reject_reason>(frame_error::none);
      return true;
    }
    if (in_msg_.round != p.got + 1) {
      // A gap: the partner's frame of our open pair was lost, and it went
      // on (it gave the pair up). So do we, and the dense frames below make
      // both copies exact again. A partner could skip numbers on purpose,
      // a few bytes buying a dense frame from us each time: at most one
      // such resync per kResyncExchanges of the link.
      if (p.mixed < p.sent) p.mixed = p.sent;
      if (p.resynced_at == 0 || p.sent >= p.resynced_at + kResyncExchanges) {
        link_full_[static_cast<size_t>(slot)] = 1;
        p.resynced_at = p.sent + 1;
      }
    }
    p.got = in_msg_.round;
    p.got_dense = in_msg_.kind == update_kind::dense_set;
  }
  last = in_msg_.round;
  heard_at_[static_cast<size_t>(slot)] = counters_.rounds + 1;
  contrib_.heard(static_cast<size_t>(slot), in_msg_.step, in_msg_.round, last_step_, round_);
  if (why) *why = static_cast<reject_reason>(frame_error::none);
  if (attack_) attack_->observe(static_cast<size_t>(slot), nbr_hat_[static_cast<size_t>(slot)], in_msg_);
  if (be_) {
    float* h = dev_nbr_hat_[static_cast<size_t>(slot)].get();
    if (in_msg_.kind == update_kind::dense_set) {
      be_->upload(h, in_msg_.values.data(), static_cast<int64_t>(dim_));
    } else {
      const auto count = static_cast<int64_t>(in_msg_.indices.size());
      host_idx_.assign(in_msg_.indices.begin(), in_msg_.indices.end());
      be_->upload_int(dev_idx_.get(), host_idx_.data(), count);
      be_->upload(dev_val_.get(), in_msg_.values.data(), count);
      be_->scatter(h, dev_idx_.get(), dev_val_.get(), count);
    }
    return true;
  }
  switch (in_msg_.kind) {
    case update_kind::dense_set:
      std::copy(in_msg_.values.begin(), in_msg_.values.end(), nbr_hat_[static_cast<size_t>(slot)].begin());
      break;
    case update_kind::sparse_set:
    case update_kind::grid_set: {
      auto& h = nbr_hat_[static_cast<size_t>(slot)];
      for (size_t i = 0; i < in_msg_.indices.size(); ++i) h[in_msg_.indices[i]] = in_msg_.values[i];
      break;
    }
    case update_kind::sparse_add:
      for (size_t i = 0; i < in_msg_.indices.size(); ++i) pending_[in_msg_.indices[i]] += in_msg_.values[i];
      break;
  }
  return true;
}

}  // namespace murmur
