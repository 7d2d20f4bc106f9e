// gossip_state: the gossip algorithm of one peer, without actors or sockets.
// It keeps the public estimate x_hat of itself and of each neighbour and
// decides what to publish (CHOCO-SGD with a per-coordinate threshold
// compressor and error feedback; tau = 0 is dense gossip), or, in delta
// mode, a residual of local changes broadcast when it crosses +-tau.
//
//   mix(x):     threshold/dense/local_sgd: x += gamma * sum_j w (x_hat_j - x_hat_self)
//               over the neighbours heard within max_staleness rounds (one
//               never heard from, e.g. still joining, does not count yet);
//               skipped while our last round's frames are still on the wire
//               delta: x += increments received since the last mix
//   publish(x): threshold/dense/local_sgd: coordinates with |x - x_hat_self| >= tau
//               become public (x_hat_self[k] = x[k]) and are sent as absolute values;
//               with the grid compressor, |x - x_hat_self| >= 0.75 tau publishes
//               x rounded to the tau-grid (x_hat_self[k] = round(x/tau) tau);
//               delta: residual += change since the last mix; |residual| >= tau sent, zeroed
//   receive(frame): validated completely before any state changes; a rejected
//               frame leaves the state byte-identical and is counted by reason.
//               Finite values beyond max_value (default 1000 * max(1, max|x0|))
//               are rejected like NaN (out_of_range): they cannot be ours.
// Weights are uniform, w = 1 / (degree + 1) (Metropolis weights on a regular graph),
// or, with gossip.contribution = rate | mixing (schedule all, host path,
// threshold/dense/local_sgd modes, no rule but none, clipped_gossip and
// centered_clip), w times each neighbour's pull in [0, 1] from the rates its
// frames show (actors/contribution.hpp); a clipping rule clips first.
// Link budget (gossip.link_period_max > 1, with contribution rate | mixing,
// schedule all, host path): each link keeps its own public estimate
// x_hat_ij, the copy j holds, and gets its own frame, compressed against it,
// every p_j published rounds (actors/link_budget.hpp); x_hat_self is still
// compressed every published round (its frame unsent) and is what mix()
// reads, so mixing is unchanged and each link's error feedback is exact.
// (Mixing on busy rounds too, x_hat_self refreshed, was measured worse: docs/wan.md.)
// Memory (host modes): parameter-sized buffers are x_hat_self and one x_hat_j
// per neighbour (delta mode: residual, base, pending), all the algorithm
// reads; a robust rule adds none (robust_mix::mix_into). The frame scratch
// (out_msg_, in_msg_, out_frame_) grows to the largest frame seen, geometrically,
// and is reused: a steady round allocates nothing.
//
// Byzantine settings (non-delta modes):
//   gossip.robust != none: mix moves x by gamma * (agg - x_hat_self), agg a
//               robust aggregate of x_hat_self and the fresh x_hat_j (robust_mix.hpp).
//   detect.enabled: every round, publish feeds the public estimates to a
//               rank_detector, which may quarantine neighbours (cause statistical).
//
// Schedule one_peer (gossip_settings::schedule; threshold, dense and
// local_sgd modes on the host, without detection or update attacks: the
// constructor throws otherwise): in round r = step / schedule_every a peer
// exchanges only with its partners of that round, the neighbours j with
// link colour ctz(self XOR j) mod colours == r mod colours (one on the
// hypercube). Each link keeps its own public estimate of us, x_hat_ij, the
// copy j holds: publish compresses x against x_hat_ij for each partner
// (error feedback per link, exact whatever the others receive) and returns
// an empty span, the frames being frame_to(slot). A link's frames are its
// exchanges, numbered in the frame's round field; the k-th pair of a link
// is our k-th frame and the partner's k-th, and mix mixes it once both are
// here: x += gamma/(m+1) (x_hat_j - x_hat_ij), m our partners in the round
// of our frame (1: the pairwise average at gamma = 1). Until then the link
// sends nothing more, and a partner's frame of the next exchange that comes
// before our mix is held back, so both ends mix the same two estimates
// however late the frames come (frames leave when the step ends, or a slow
// link). A pair still open after max_staleness of our rounds, or one whose
// partner frame was lost (the numbering skips), is given up and the link's
// next frame is dense (a skip asks for that at most once per 8 exchanges:
// a partner skipping on purpose buys no stream of dense frames); a pair with one dense frame and one not is not mixed
// (the sparse side's copy may be off) and both ends send the next one
// dense, after which both copies are exact again. A frame whose step falls in a round
// of another colour than its sender's link is rejected (off_schedule). A
// new link, or a resync, starts with a dense frame.
//
//   an update attack: publish sends a poisoned estimate (update_attack.hpp);
//               mix and detection use the honest estimate the peer keeps aside.
//               An extreme attack's frame carries raw out-of-grid values; an
//               equivocating attack (dissensus) keeps one public estimate
//               per neighbour and publishes one frame per neighbour.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "actors/contribution.hpp"
#include "actors/link_budget.hpp"
#include "actors/peer_settings.hpp"
#include "actors/rank_detector.hpp"
#include "actors/robust_mix.hpp"
#include "actors/update_attack.hpp"
#include "protocols/gossip_messages.hpp"
#include "tensor/backend_buffer.hpp"

namespace murmur {

enum class reject_reason : uint8_t {
  // frame_error values first (too_short .. undecodable), then:
  wrong_shape = frame_error_count,  // dim differs from ours
  unknown_sender,                   // not a neighbour, or not who the transport says
  wrong_kind,                       // kind does not fit our gossip mode
  stale,                            // round not newer than the last one seen
  quarantined,                      // the sender is quarantined by this peer
  out_of_range,                     // a value beyond gossip max_value: cannot be a parameter of ours
  off_schedule,                     // one_peer: the frame's round does not pair us with its sender
  count_
};
std::string_view to_string(reject_reason r);

// Why a peer was quarantined: a statistical detector flagged its updates
// (from frames this peer received itself), evidence of a failed
// verification that this peer re-checked itself, or verify.max_misses
// challenges this peer sent (or re-checked) that it left unanswered, or
// (verify.scheme = segment) a replay fingerprint unlike this peer's: its
// segments cannot be replayed here, so it is not mixed (no accusation).
enum class quarantine_cause : uint8_t { statistical, evidence, missed_answers, replay_mismatch };
std::string_view to_string(quarantine_cause c);

struct quarantine_record {
  uint32_t peer = 0;
  uint64_t step = 0;  // our step when it happened
  quarantine_cause cause = quarantine_cause::statistical;
};

struct gossip_counters {
  uint64_t bytes_sent = 0, msgs_sent = 0, bytes_received = 0, msgs_received = 0;
  uint64_t rounds = 0, silent_rounds = 0, busy_rounds = 0, coords_sent = 0, stale_skips = 0;
  std::array<uint64_t, static_cast<size_t>(reject_reason::count_)> rejected{};
  std::vector<quarantine_record> quarantines;  // in the order they happened
  uint64_t clipped = 0;     // neighbour pulls shortened by a clipping rule (robust_mix.hpp)
  uint64_t detect_ns = 0;  // wall-clock time spent in detection (never in metrics.jsonl)
  std::vector<link_send> link_sends;  // filled by sends_report(): per neighbour slot under a link budget, else empty
  uint64_t rejected_total() const;
};

// The largest magnitude a parameter of a model starting at x0 may have:
// `configured` (gossip.max_value) when > 0, else 1000 * max(1, max|x0|);
// never above 1e30. Frames and state chunks beyond it are refused.
float parameter_bound(double configured, std::span<const float> x0);

class gossip_state {
 public:
  gossip_state(uint32_t self, std::vector<uint32_t> neighbours, gossip_settings s,
               std::span<const float> x0, const attack_settings& attack = {});
  // Backend mode (parameters on a GPU): x_hat_self and every x_hat_j live
  // in be's buffers, mix_on_backend / publish_on_backend take the backend's
  // parameter buffer, and only frames cross to the host: a publish downloads
  // the selected coordinates (the frame's values, not the model), a received
  // frame is uploaded and scattered. Same frames and counters as the host
  // path. Threshold, dense and local_sgd modes, with or without a trigger
  // (the residual norm on the backend: one double crosses), plain or with
  // the robust rules clipped_gossip (the default) and centered_clip
  // (distances on the backend, only those m doubles cross; the radius is
  // chosen on the host, robust_mix::clip_weights; x moves by clip_mix) or
  // median and trimmed_mean (sorted per coordinate by coordinatewise_mix;
  // nothing crosses): the same parameters (bit for bit on the CPU backend)
  // and clip counts as the host path. Still on the host (the caller keeps a
  // synced host mirror; backend_unsupported names the one in the way, the
  // constructor throws std::invalid_argument with it): gossip.mode = delta
  // (with or without its trigger), gossip.robust = krum, detect.method, and
  // update attacks. be must outlive this object. public_estimate() is empty
  // in this mode.
  gossip_state(uint32_t self, std::vector<uint32_t> neighbours, gossip_settings s,
               std::span<const float> x0, compute_backend& be);
  static std::string backend_unsupported(const gossip_settings& s, const attack_settings& attack);
  bool on_backend() const { return be_ != nullptr; }
  void mix_on_backend(float* x);
  std::span<const std::byte> publish_on_backend(const float* x, uint64_t step);

  void mix(std::span<float> x);
  // mix(x) then publish(x, step), the same floats, frames and counters; on
  // the host's grid path (schedule all, no link budget, attack, detector or
  // trigger) in one pass: each block of x is compressed right after the
  // mix wrote it, while it is in cache (gossip.publish = before_step).
  std::span<const std::byte> mix_publish(std::span<float> x, uint64_t step);
  // Returns the frame to send to every neighbour, or an empty span if silent
  // (nothing crossed the threshold, the trigger held it back, or frames of
  // the previous round are still on the wire: then nothing changes and the
  // residual simply keeps growing until the next round).
  // An equivocating attacker (equivocates()) returns an empty span: its
  // frames, one per neighbour, are then frame_to(slot) for neighbours()[slot]
  // (empty: nothing for that neighbour this round).
  std::span<const std::byte> publish(std::span<const float> x, uint64_t step);
  bool equivocates() const { return attack_ && attack_->equivocates(); }
  bool one_peer() const { return s_.schedule == gossip_schedule::one_peer; }
  // publish's frames go out one per neighbour (frame_to): one_peer, or an equivocating attacker.
  bool per_neighbour_frames() const { return one_peer() || equivocates() || budget_.on(); }
  // Link budget: per neighbour slot, the current send period in published rounds (all 1 when off).
  std::span<const uint32_t> link_periods() const { return budget_.periods(); }
  // counters() with link_sends filled (a host's report; empty without a link
  // budget): every link this peer had, current ones first; a link that ended
  // keeps its last period and the published rounds when it ended.
  gossip_counters sends_report() const;
  // one_peer: the colour of a link to `peer` and of the round of `step` (always 0 under schedule all).
  uint32_t link_colour(uint32_t peer) const;
  uint32_t round_colour(uint64_t step) const;
  // The threshold tau of a publish at `step` (gossip_settings::threshold_power; constant without it).
  float threshold_at(uint64_t step) const;
  // Our copy of neighbours()[slot]'s public estimate (host modes but delta).
  std::span<const float> neighbour_estimate(size_t slot) const {
    return slot < nbr_hat_.size() ? std::span<const float>(nbr_hat_[slot]) : std::span<const float>();
  }
  // one_peer or a link budget: our public estimate as neighbours()[slot] holds it.
  std::span<const float> link_estimate(size_t slot) const {
    return slot < link_hat_.size() ? std::span<const float>(link_hat_[slot]) : std::span<const float>();
  }
  std::span<const std::byte> frame_to(size_t slot) const {
    return slot < out_frames_.size() ? std::span<const std::byte>(out_frames_[slot]) : std::span<const std::byte>();
  }
  // The transport reports one of our frames has left the uplink.
  void on_sent() { if (in_flight_ > 0) --in_flight_; }

  // Membership changed. Kept neighbours keep their estimates; a new one, or
  // one with another incarnation (it restarted), starts from our own public
  // estimate with its round count reset, and our next publish is complete
  // (dense), so every neighbour's copy of us is exact again.
  void set_neighbours(const std::vector<uint32_t>& ids, const std::vector<uint64_t>& incarnations);
  // Our parameters were replaced (state transfer): publish them in full next.
  void resync() { force_full_ = true; }
  // Stop listening to `peer` for good: it leaves our neighbours now and
  // whenever membership offers it again, and its frames are rejected.
  // Returns false if it was already quarantined.
  bool quarantine(uint32_t peer, quarantine_cause cause);
  bool is_quarantined(uint32_t peer) const;
  // `from` is who the transport says sent it; a frame claiming another
  // sender is rejected. Returns true when accepted; else *why says why.
  bool receive(uint32_t from, std::span<const std::byte> frame, reject_reason* why = nullptr);

  // Replay of a training segment (actors/segment_log.hpp): everything that
  // mix, publish, receive and on_sent read besides their arguments. Saved
  // after a step, loaded into a gossip_state of the same settings and
  // dimension, the same calls in the same order then change parameters and
  // estimates bit for bit as they did. Host modes only, any robust rule
  // (its only carried state, clipped_gossip's reference distance, is part of
  // it), without a detector or update attack (replay_unsupported names the
  // one in the way; save and load throw std::invalid_argument with it).
  // Counters other than rounds are not part of it.
  struct replay_state {
    std::vector<uint32_t> neighbours, quarantined;
    std::vector<uint64_t> last_round, incarnation, heard_at;
    std::vector<float> self_hat;
    std::vector<std::vector<float>> nbr_hat;
    std::vector<float> residual, base, pending;  // delta mode
    uint64_t rounds = 0, round = 0, in_flight = 0, silent_streak = 0, last_step = 0;
    float max_value = 0;
    bool force_full = false;
    double robust_reference = 0;  // robust_mix::reference_distance (0 without a robust rule)
    bool operator==(const replay_state&) const = default;
  };
  // The same fields as views of the live state (nothing copied; valid
  // until the next call that changes it): a segment boundary is hashed
  // and written from where it lies. view() makes one of a saved state.
  struct replay_view {
    std::span<const uint32_t> neighbours, quarantined;
    std::span<const uint64_t> last_round, incarnation, heard_at;
    std::span<const float> self_hat;
    std::span<const std::vector<float>> nbr_hat;
    std::span<const float> residual, base, pending;
    uint64_t rounds = 0, round = 0, in_flight = 0, silent_streak = 0, last_step = 0;
    float max_value = 0;
    bool force_full = false;
    double robust_reference = 0;
    // Inline: the segment frames' decoder is built without gossip_state.cpp (tests/fuzz).
    static replay_view of(const replay_state& r) {
      replay_view v;
      v.neighbours = r.neighbours, v.quarantined = r.quarantined;
      v.last_round = r.last_round, v.incarnation = r.incarnation, v.heard_at = r.heard_at;
      v.self_hat = r.self_hat;
      v.nbr_hat = r.nbr_hat;
      v.residual = r.residual, v.base = r.base, v.pending = r.pending;
      v.rounds = r.rounds, v.round = r.round, v.in_flight = r.in_flight, v.silent_streak = r.silent_streak;
      v.last_step = r.last_step;
      v.max_value = r.max_value;
      v.force_full = r.force_full;
      v.robust_reference = r.robust_reference;
      return v;
    }
  };
  static std::string replay_unsupported(const gossip_settings& s, const attack_settings& attack);
  void save_replay_state(replay_state& into) const;  // reuses into's storage
  replay_view view_replay_state() const;              // throws as save_replay_state
  void load_replay_state(const replay_state& from);

  const std::vector<uint32_t>& neighbours() const { return neighbours_; }
  gossip_counters& counters() { return counters_; }
  const gossip_counters& counters() const { return counters_; }
  std::span<const float> public_estimate() const { return self_hat_; }
  // Per neighbour slot, the factor on its uniform mixing weight (all 1 under gossip.contribution = uniform).
  std::span<const float> contribution_pulls() const { return contrib_.pulls(); }
  // Why gossip.contribution = rate | mixing cannot run with these settings (empty: it can).
  static std::string contribution_unsupported(const gossip_settings& s);
  // Why gossip.link_period_max > 1 cannot run with these settings (empty: it can).
  static std::string link_budget_unsupported(const gossip_settings& s);

 private:
  uint32_t self_;
  std::vector<uint32_t> neighbours_;
  gossip_settings s_;
  size_t dim_;
  float max_value_ = 0;                           // largest magnitude a received value may have
  std::vector<float> self_hat_;                   // x_hat_self (threshold modes)
  std::vector<std::vector<float>> nbr_hat_;       // x_hat_j, in neighbours_ order
  std::vector<uint64_t> last_round_;              // per neighbour
  std::vector<uint64_t> incarnation_;             // per neighbour, as membership reported it
  std::vector<uint64_t> heard_at_;                // per neighbour: our round when last heard; 0 = never
  uint64_t silent_streak_ = 0;
  bool force_full_ = false;
  std::vector<float> residual_, base_, pending_;  // delta mode
  uint64_t round_ = 0;
  uint64_t in_flight_ = 0;
  uint64_t last_step_ = 0;                        // step of our latest publish
  float tau_ = 0;                                 // threshold_at(last_step_): what compress() uses
  std::vector<uint32_t> quarantined_;             // sorted
  gossip_update out_msg_, in_msg_;
  std::vector<std::byte> out_frame_;
  gossip_counters counters_;
  // Byzantine settings; null / empty when off.
  std::unique_ptr<robust_mix> robust_;
  std::vector<const float*> mix_members_;  // the estimates a mix reads (any rule)
  std::unique_ptr<rank_detector> detector_;
  std::vector<uint32_t> flagged_;
  std::unique_ptr<update_attack> attack_;
  std::vector<float> honest_hat_, honest_prev_, honest_update_;  // an attacker's honest estimate
  std::vector<uint8_t> colluder_;  // an attacker's: per neighbour slot, a fellow attacker
  std::vector<std::vector<float>> pub_hat_;       // an equivocating attacker's: per neighbour, its copy of us
  std::vector<std::vector<std::byte>> out_frames_;  // an equivocating attacker's or one_peer frames, per neighbour
  // one_peer: per neighbour slot, our estimate as it holds it, and whether its next frame is dense;
  // the slots our last publish went to.
  std::vector<std::vector<float>> link_hat_;
  std::vector<uint8_t> link_full_;
  std::vector<size_t> partners_;
  // one_peer: the exchanges of each link slot, counted from 1 (a frame's
  // round field is its link's count): frames we sent, frames we accepted,
  // pairs mixed (or given up); the pull of our latest frame's pair, our
  // round when we sent it, whether it was dense; and a frame of the next
  // exchange that came before we mixed the ready pair it follows.
  struct link_pairing {
    uint64_t sent = 0, got = 0, mixed = 0;
    float pull = 0;
    uint64_t sent_at = 0;
    bool sent_dense = false, got_dense = false;  // the kinds of the latest frames each way
    uint64_t resynced_at = 0;  // the exchange of the last resync a gap asked for (0: none)
    std::vector<std::byte> held;
    bool ready() const { return sent > mixed && got == sent; }
  };
  std::vector<link_pairing> pairing_;
  static constexpr uint64_t kResyncExchanges = 8;
  // mix() with after_block(k0, n) run once x's coordinates [k0, k0 + n)
  // are final; true when it ran over every block (false: nothing mixed, or
  // a path that does not go block by block).
  bool mix_blocks(std::span<float> x, const std::function<void(size_t, size_t)>& after_block);
  void compress_grid_range(const float* x, float* hat, float tau, size_t k0, size_t n);
  void start_round(uint64_t step);  // a publish's count, step and tau
  void clear_out_msg();
  void publish_one_peer(std::span<const float> x, uint64_t step);
  void mix_one_peer(std::span<float> x);
  void mix_pair(std::span<float> x, size_t j, float c);
  // The part of receive() after the counters: a held frame goes through it again.
  bool accept(uint32_t from, std::span<const std::byte> frame, reject_reason* why);
  // One link's frame (one_peer, link budget): compress x against slot j's
  // estimate into out_msg_ (dense when the link is owed a full frame);
  // false when the trigger holds it back. Then seal it into out_frames_[j].
  bool compress_link(std::span<const float> x, size_t j);
  void seal_link(size_t j, uint64_t round, uint64_t step);
  // Backend mode: be_'s buffers (x_hat_self, x_hat_j per neighbour slot, and
  // dim_-sized index/value scratch for selections and received frames).
  compute_backend* be_ = nullptr;
  backend_buffer<float> dev_self_hat_;
  std::vector<backend_buffer<float>> dev_nbr_hat_;
  backend_buffer<int32_t> dev_idx_;
  backend_buffer<float> dev_val_;
  std::vector<int32_t> host_idx_;
  std::vector<const float*> dev_mix_hats_;
  std::vector<float> dev_mix_weights_;
  std::vector<double> dev_mix_dist_;  // the clipping rules' distances, brought to the host
  bool compress_on_backend(const float* x);
  std::span<const std::byte> seal(uint64_t step);
  void put_raw_values(std::vector<float>& hat);
  void publish_per_neighbour(uint64_t step);
  int neighbour_slot(uint32_t peer) const;
  bool fresh(size_t j, uint64_t now) const;
  bool compress(std::span<const float> x, std::vector<float>& hat);
  void detect();
  // gossip.contribution: the per-neighbour pulls and, for a robust rule, the fresh ones in mix order.
  contribution contrib_;
  std::vector<float> mix_pulls_;
  // gossip.link_period_max: which links are due (uses link_hat_, link_full_ and out_frames_).
  link_budget budget_;
  std::vector<link_send> departed_sends_;  // links that ended, for sends_report()
  void publish_budgeted(std::span<const float> x, uint64_t step);
};

}  // namespace murmur
