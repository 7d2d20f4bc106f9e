#include "actors/verifier_actor.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <deque>
#include <iostream>
#include <set>
#include <tuple>

#include "actors/segment_replay_actor.hpp"
#include "actors/segment_verifier.hpp"
#include "actors/transcript_check.hpp"
#include "protocols/membership_messages.hpp"
#include "tensor/backend_matmul.hpp"
#include "tensor/freivalds.hpp"
#include "tensor/product_checker.hpp"
#include "tensor/gemm.hpp"

namespace murmur {

namespace {

// A segment_reply frame of r's content, r moved in (the evidence a verifier
// relays once the frame it received is gone).
std::vector<std::byte> reply_frame_of(segment_reply_msg&& r) {
  segment s;
  s.start = std::make_shared<const segment_boundary>(std::move(r.start));
  s.records = std::move(r.records);
  s.step_digests = std::move(r.step_digests);
  std::vector<std::byte> out;
  encode_segment_reply(r.prover, r.nonce, s, out);
  return out;
}

// Segment checks out on the replay actor at once (its mailbox). Each holds
// a reply (a boundary state: MiBs for a large model) until it is replayed,
// and costs a replay of K steps here. Replies to our own challenges are
// never dropped (a reply dropped unreplayed is a check escaped): past the
// bound they wait here, in order, and go out as checks come back; what
// bounds them is the bound on a prover's open challenges below. Relayed
// evidence (anyone may relay any amount) goes out only while fewer than
// half the slots are taken and none waits; otherwise it is dropped,
// counted (segment_checks_dropped), and another relayer may try again.
constexpr size_t max_segment_checks_out = 4;
// A prover's open challenges of ours (asked and not yet answered, or
// answered and not yet replayed), at most keep_segments +
// max_segment_checks_out: at that many its further commitments are refused
// (segment_commits_refused) until some are settled. An honest prover keeps
// keep_segments segments, so more requests than those cannot be answered
// anyway; the rest is head-room for replays running behind. This bounds
// what waits for a replay: keep_segments + max_segment_checks_out replies
// per neighbour (docs/trust.md).
// A prover's commitments may not run ahead of this peer's progress (its own
// latest committed end step; while it has committed none, the furthest any
// other neighbour's commitment reached) by more than commit_pace_factor
// times that progress since the prover's first commitment here, plus
// (keep_segments + commit_pace_slack) segments: an honest peer trains at
// about the pace of the others (the factor covers a verifier starved by
// its load), a flooding one would commit faster than steps are made.
constexpr uint64_t commit_pace_factor = 4;
constexpr uint64_t commit_pace_slack = 4;

struct verifier_state {
  verifier_context ctx;
  verifier_settings s;
  transport_actor transport;
  gossip_actor gossip;
  std::unique_ptr<transcript_checker> checker;
  Rng rng;
  struct held_commit {
    transcript_commit c;
    uint64_t seq;  // how many commitments of its prover had arrived, this one included
    bool challenged = false;  // by us (own challenge or re-check): claims about it add nothing
  };
  std::map<uint32_t, std::deque<held_commit>> commits;  // by prover, oldest first
  std::map<uint32_t, uint64_t> commits_seen;             // by prover
  struct challenge {
    uint32_t prover;
    uint64_t step;
    uint16_t layer;
    double sent_s;       // by ctx.now_s
    uint64_t seq;        // the challenged commitment's
    bool recheck;        // of another verifier's miss claim
    bool overdue;        // past its deadline (missed or expired); a late reply is still checked
    bool missed;         // a miss was counted
    uint64_t seen_at_send;  // the prover's commitments we had when we asked
    bool resent = false;    // asked a second time at half the deadline
    bool segment = false;   // a segment challenge: step is the segment's start step, layer unused
    double deadline_s = 0;  // this challenge's deadline (segments: sized by the announced records)
    // A segment challenge of a prover's earlier incarnation (it restarted
    // since): no answer can come from the process asked, nor be taken from
    // its new one; counted at its deadline without waiting for it to move on.
    bool retired = false;
    uint64_t end_step = 0;     // a segment challenge: the segment's end step
    bool unavailable = false;  // a segment challenge the prover answered "unavailable" (judged at the deadline)
  };
  std::map<uint64_t, challenge> pending;  // by nonce
  // Segment challenges still open when membership dropped their prover
  // (counted abandoned then): if it comes back as a new incarnation, a
  // restart slower than the dead timeout, they become misses.
  std::map<uint32_t, std::vector<challenge>> departed;  // by prover
  uint64_t next_nonce = 1, next_task = 1;
  std::map<uint32_t, std::vector<int64_t>> shards;  // sorted, by peer
  std::set<uint32_t> quarantined;
  std::set<std::tuple<uint32_t, uint64_t, uint16_t>> evidence_seen;
  struct waiting_task {
    caf::typed_response_promise<matmul_outcome> rp;
    std::shared_ptr<const matmul_job> job;
    uint32_t worker;
  };
  std::map<uint64_t, waiting_task> tasks;
  std::unique_ptr<backend_matmul> products;  // on ctx.backend (null: host gemm); destroyed before ctx
  verifier_stats st;
  std::unique_ptr<product_checker> fv;  // offloaded answers, on ctx.backend or the host
  transcript_commit commit_in;
  tensor_request request_in;
  tensor_reply reply_in;
  evidence_msg evidence_in;
  matmul_task task_in;
  matmul_result result_in;
  miss_claim claim_in;
  std::unique_ptr<segment_verifier> segments;  // segment scheme (null: per-step)
  segment_replay_actor replays;                // runs the segment checks (segment scheme)
  size_t checks_out = 0;                       // segment checks sent to it and not yet answered
  struct waiting_check {
    segment_check job;
    // The verdict, and the job when its give_back asked for it (else null).
    std::function<void(const segment_verdict&, std::shared_ptr<segment_check>)> on_done;
  };
  std::deque<waiting_check> checks_waiting;      // own replies waiting for a slot, in arrival order
  std::function<void()> pump_checks;             // sends waiting checks while slots are free
  std::map<uint32_t, size_t> own_checks_open;    // by prover: own replies waiting or replaying
  // Commitment pace (flood bound), by prover: its chain's first end step
  // and this peer's reference progress when it came, its incarnation, and
  // the furthest end step it committed (the reference of others).
  struct pace {
    uint64_t incarnation = 0, first_end = 0, reference_at_first = 0, last_end = 0;
  };
  std::map<uint32_t, pace> paces;
  uint64_t own_end = 0;                          // our own latest committed end step (0: none yet)
  std::shared_ptr<const std::vector<std::byte>> last_commit;  // our latest commitment's frame, sent again with the next
  std::set<uint32_t> refusal_logged;             // provers whose refusal was logged (once each)
  segment_commit_msg seg_commit_in;
  segment_request_msg seg_request_in;
  segment_reply_msg seg_reply_in;
  segment_evidence_msg seg_evidence_in;
  segment_unavailable_msg seg_unavailable_in;
  // Segment evidence: (prover, start step) settled by a re-check (confirmed,
  // or the relayed reply replayed honestly), and (relayer, prover, start
  // step) tried: each relayer costs at most one decode and hash per segment.
  std::set<std::pair<uint32_t, uint64_t>> segment_evidence_settled;
  std::set<std::tuple<uint32_t, uint32_t, uint64_t>> segment_evidence_tried;
  static inline const char* name = "verifier";

  double now() const {
    if (ctx.now_s) return ctx.now_s();
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  bool is_neighbour(uint32_t peer) const {
    return std::find(ctx.neighbours.begin(), ctx.neighbours.end(), peer) != ctx.neighbours.end();
  }
  // The prover has committed keep_steps steps since: it may have dropped
  // the step's transcript, as promised.
  bool past_retention(uint32_t prover, uint64_t seq) const {
    auto it = commits_seen.find(prover);
    return it != commits_seen.end() && it->second - seq >= s.keep_steps;
  }

  // This peer's progress, the reference a prover's pace is held to.
  uint64_t reference_progress() const {
    if (own_end > 0) return own_end;
    uint64_t r = 0;
    for (const auto& [p, pc] : paces) r = std::max(r, pc.last_end);
    return r;
  }
  // Our segment challenges of the prover still open: asked (not overdue),
  // or answered and waiting for a replay.
  size_t open_challenges(uint32_t prover) const {
    size_t open = 0;
    for (const auto& [nonce, ch] : pending) open += ch.segment && !ch.overdue && ch.prover == prover;
    if (auto it = own_checks_open.find(prover); it != own_checks_open.end()) open += it->second;
    return open;
  }
  // Refused for this peer's load alone (its open challenges), not for the
  // commitment itself: then the segment is no gap of the prover's.
  bool refused_for_load(uint32_t prover, const segment_commit_msg& c) const {
    const uint64_t k = s.segment_steps;
    return c.end_step > c.start_step && c.end_step % k == 0 && c.end_step - c.start_step <= k &&
           open_challenges(prover) >= s.keep_segments + max_segment_checks_out;
  }
  // Why a neighbour's segment commitment is refused (flood bound), or "".
  std::string refusal(uint32_t prover, const segment_commit_msg& c) const {
    const uint64_t k = s.segment_steps;
    if (c.end_step <= c.start_step || c.end_step % k != 0 || c.end_step - c.start_step > k)
      return "it does not span one segment of " + std::to_string(k) + " steps ending at a multiple of " +
             std::to_string(k);
    const size_t open = open_challenges(prover);
    if (open >= s.keep_segments + max_segment_checks_out)
      return std::to_string(open) + " challenges of it are open here (asked, or answered and waiting for a replay)";
    auto it = paces.find(prover);
    if (it == paces.end() || c.incarnation != it->second.incarnation) return "";  // its chain's first here
    const pace& p = it->second;
    const uint64_t ref = reference_progress();
    const uint64_t allowed = p.first_end + commit_pace_factor * (ref - std::min(ref, p.reference_at_first)) +
                             (s.keep_segments + commit_pace_slack) * k;
    if (c.end_step > allowed)
      return "it ends at step " + std::to_string(c.end_step) + ", ahead of any honest pace (its first here ended at " +
             std::to_string(p.first_end) + ", this peer's progress since is " +
             std::to_string(ref - std::min(ref, p.reference_at_first)) + " steps; at most " +
             std::to_string(allowed) + ")";
    return "";
  }
  // An "unavailable" answer to a segment challenge is excused when the
  // commitments for which the prover may drop the segment (keep_segments
  // newer ones, the last ending keep_segments segments after it) have
  // reached us too: they are signed frames of its, sent before its answer.
  bool dropped_as_promised(const challenge& c) const {
    auto it = paces.find(c.prover);
    return it != paces.end() && it->second.last_end >= c.end_step + s.keep_segments * s.segment_steps;
  }
  // A held commitment: its prover's pace goes on (or starts, for a new chain).
  void paced(uint32_t prover, const segment_commit_msg& c) {
    auto [it, first] = paces.try_emplace(prover);
    pace& p = it->second;
    if (first || c.incarnation != p.incarnation) p = {c.incarnation, c.end_step, reference_progress(), c.end_step};
    p.last_end = std::max(p.last_end, c.end_step);
  }

  const std::vector<int64_t>& shard(uint32_t peer) {
    auto it = shards.find(peer);
    if (it != shards.end()) return it->second;
    auto v = ctx.shard_of ? ctx.shard_of(peer) : std::vector<int64_t>{};
    std::sort(v.begin(), v.end());
    return shards.emplace(peer, std::move(v)).first->second;
  }
  held_commit* find_held(uint32_t prover, uint64_t step) {
    auto it = commits.find(prover);
    if (it == commits.end()) return nullptr;
    for (auto& h : it->second)
      if (h.c.step == step) return &h;
    return nullptr;
  }
  const transcript_commit* find_commit(uint32_t prover, uint64_t step) {
    const held_commit* h = find_held(prover, step);
    return h ? &h->c : nullptr;
  }
};

using clock_type = std::chrono::steady_clock;


verifier_actor::behavior_type verifier_behavior(verifier_actor::stateful_pointer<verifier_state> self,
                                                verifier_context ctx, verifier_settings s, transport_actor transport,
                                                gossip_actor gossip) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.s = s;
  st.transport = std::move(transport);
  st.gossip = std::move(gossip);
  st.checker =
      std::make_unique<transcript_checker>(st.ctx.layers, st.ctx.data, s.rounds, s.augment, st.ctx.backend.get());
  st.fv = std::make_unique<product_checker>(st.ctx.backend.get());
  st.rng = Rng(s.seed).fork(0x7665726966ULL + st.ctx.self);
  if (st.ctx.backend) st.products = std::make_unique<backend_matmul>(*st.ctx.backend);
  if (s.segment_steps > 0) {
    st.segments = std::make_unique<segment_verifier>(
        st.ctx.self, segment_challenge_probability(s.rate, st.ctx.layers.size(), s.segment_steps), s.keep_segments);
    // Linked: it ends with this actor (and this one with it, should a check throw).
    st.replays = spawn_segment_replay_actor(self->system(), st.ctx.replay_of, st.ctx.step_flops, st.ctx.check_runner,
                                              st.ctx.replay_spill);
    self->link_to(st.replays);
  }

  auto send = [self](uint32_t to, std::vector<std::byte> bytes) {
    wire_frame w{std::make_shared<const std::vector<std::byte>>(std::move(bytes))};
    self->send(self->state.transport, send_atom::value, self->state.ctx.self, to, std::move(w));
  };
  // An answer that came: on time, or late (checked all the same; the miss
  // it was charged stands).
  auto count_answer = [self](const verifier_state::challenge& asked) {
    auto& st = self->state;
    if (asked.overdue) {
      if (asked.missed) ++st.st.challenges_late;
    } else {
      ++st.st.challenges_completed;
      st.st.max_answer_s = std::max(st.st.max_answer_s, st.now() - asked.sent_s);
    }
  };
  // Sends one frame (evidence, a miss claim) to the prover's other
  // verifiers, its neighbours but us; one buffer for all. Returns how many.
  auto to_other_verifiers = [self](uint32_t prover, std::vector<std::byte> bytes) {
    auto& st = self->state;
    wire_frame w{std::make_shared<const std::vector<std::byte>>(std::move(bytes))};
    uint64_t sent = 0;
    for (uint32_t to : st.ctx.neighbours_of ? st.ctx.neighbours_of(prover) : st.ctx.neighbours) {
      if (to == st.ctx.self || to == prover) continue;
      self->send(st.transport, send_atom::value, st.ctx.self, to, w);
      ++sent;
    }
    return sent;
  };
  // Drops the challenges of a prover we no longer wait for.
  auto abandon = [self](uint32_t peer) {
    auto& st = self->state;
    for (auto it = st.pending.begin(); it != st.pending.end();) {
      if (it->second.prover != peer) {
        ++it;
        continue;
      }
      if (!it->second.overdue) {
        ++st.st.challenges_abandoned;
        if (it->second.recheck) ++st.st.misses_ignored;
        if (it->second.segment && !st.quarantined.count(peer)) st.departed[peer].push_back(it->second);
      }
      if (it->second.segment && st.segments) st.segments->withdraw(it->first);
      it = st.pending.erase(it);
    }
  };
  auto quarantine = [self, abandon](uint32_t peer, const char* why,
                                    quarantine_cause cause = quarantine_cause::evidence) {
    auto& st = self->state;
    if (!st.quarantined.insert(peer).second) return;
    st.departed.erase(peer);
    std::erase(st.ctx.neighbours, peer);
    abandon(peer);
    if (st.segments) st.segments->forget(peer);
    std::cerr << st.ctx.names(st.ctx.self) << ": verification: quarantining " << st.ctx.names(peer) << " (" << why << ")\n";
    self->send(st.gossip, quarantine_atom::value, peer, static_cast<uint8_t>(cause));
  };
  // Sends a challenge for (prover, step) and waits for it until the deadline.
  auto challenge_step = [self, send](uint32_t prover, uint64_t step, size_t layers, uint64_t seq, bool recheck) {
    auto& st = self->state;
    tensor_request rq{st.ctx.self, prover, step, static_cast<uint16_t>(st.rng.below(layers)), st.next_nonce++};
    st.pending[rq.nonce] = {prover, step, rq.layer, st.now(), seq, recheck, false, false, st.commits_seen[prover]};
    st.pending[rq.nonce].deadline_s = st.s.deadline_s;
    ++st.st.challenges;
    std::vector<std::byte> out;
    encode_tensor_request(rq, out);
    send(prover, std::move(out));
  };
  // Sends a segment challenge the segment verifier drew (its nonce is
  // st.next_nonce) and waits for it until the deadline, as for a step.
  auto track_segment = [self, send](const segment_request_msg& rq, uint64_t seq, bool recheck) {
    auto& st = self->state;
    st.next_nonce = std::max(st.next_nonce, rq.nonce + 1);
    verifier_state::challenge c{rq.prover, rq.start_step, 0, st.now(), seq, recheck, false, false,
                                st.segments->commits_seen(rq.prover)};
    c.segment = true;
    c.deadline_s = st.s.deadline_s;
    const auto* h = st.segments->held(rq.prover, rq.start_step);
    if (h) c.end_step = h->c.end_step;
    // An implied commitment announced no records' size: the ceiling.
    if (h && !h->implied && st.s.segment_records_cap > 0 && st.s.segment_deadline_min_s < st.s.deadline_s) {
      const double part = std::min(1.0, static_cast<double>(h->c.records_bytes) / st.s.segment_records_cap);
      c.deadline_s = st.s.segment_deadline_min_s + part * (st.s.deadline_s - st.s.segment_deadline_min_s);
    }
    st.pending[rq.nonce] = c;
    ++st.st.challenges;
    ++st.st.segments_challenged;
    std::vector<std::byte> out;
    encode_segment_request(rq, out);
    send(rq.prover, std::move(out));
  };
  // Counts the misses of every challenge past its deadline, announces those
  // of our own challenges, and quarantines a prover at max_misses.
  auto sweep = [self, send, quarantine, to_other_verifiers](double now) {
    auto& st = self->state;
    std::vector<uint32_t> over;
    // Dropped without holding it against the prover.
    auto erase = [&st](std::map<uint64_t, verifier_state::challenge>::iterator it) {
      if (it->second.segment && st.segments) st.segments->withdraw(it->first);
      return st.pending.erase(it);
    };
    auto give_up = [&st, &erase](std::map<uint64_t, verifier_state::challenge>::iterator it) {
      ++st.st.challenges_abandoned;
      if (it->second.recheck) ++st.st.misses_ignored;
      return erase(it);
    };
    for (auto it = st.pending.begin(); it != st.pending.end();) {
      auto& c = it->second;
      if (c.overdue) {  // a late reply may still come, but not forever
        it = now - c.sent_s > 8 * c.deadline_s ? erase(it) : std::next(it);
        continue;
      }
      if (now - c.sent_s < c.deadline_s) {
        // A request lost on the way (a dropped frame, a reconnect) costs an
        // honest prover a miss: ask once more at half the deadline.
        if (!c.resent && !c.retired && !c.unavailable && now - c.sent_s >= c.deadline_s / 2) {
          c.resent = true;
          ++st.st.requests_resent;
          std::vector<std::byte> out;
          if (c.segment)
            encode_segment_request({st.ctx.self, c.prover, c.step, it->first}, out);
          else
            encode_tensor_request({st.ctx.self, c.prover, c.step, c.layer, it->first}, out);
          send(c.prover, std::move(out));
        }
        ++it;
        continue;
      }
      if (st.quarantined.count(c.prover) || !st.is_neighbour(c.prover)) {
        it = give_up(it);
        continue;
      }
      // The prover has not moved on since we asked (fewer than
      // moved_on_commits commitments since, some of them in flight then):
      // a stalled process or a starved machine, so silence is not yet
      // dodging. Wait for a sign of life; past 8 deadlines, give up unheld.
      // Segments: a prover commits once per K steps, which may be longer than
      // 8 deadlines; one that goes on committing is not stalled, one that
      // stops is waited for until it leaves (and challenged no more).
      // A retired challenge's process is gone: nothing to wait for.
      if (c.segment) {
        if (!c.retired && !c.unavailable &&
            st.segments->commits_seen(c.prover) < c.seen_at_send + st.s.moved_on_commits) {
          ++it;
          continue;
        }
      } else if (st.commits_seen[c.prover] < c.seen_at_send + st.s.moved_on_commits) {
        it = now - c.sent_s > 8 * c.deadline_s ? give_up(it) : std::next(it);
        continue;
      }
      c.overdue = true;
      // A silence: a segment's retention is judged when we asked, not now: a prover
      // keeps keep_segments closed segments, and our request left while it
      // still held this one unless keep_segments more had arrived by then.
      // (Judged at the deadline, a silent prover would be excused whenever
      // the deadline, which covers a boundary state's transfer, outlasts
      // keep_segments segments.)
      // An "unavailable" answer: excused only if the commitments it was
      // dropped for reached us by now, the deadline (verifier_actor.hpp).
      const bool excused = c.segment ? c.seen_at_send - c.seq >= st.s.keep_segments ||
                                           (c.unavailable && st.dropped_as_promised(c))
                                     : st.past_retention(c.prover, c.seq);
      if (excused) {  // a late answer is still checked
        ++st.st.challenges_expired;
        if (c.recheck) ++st.st.misses_ignored;
        ++it;
        continue;
      }
      c.missed = true;
      ++st.st.challenges_missed;
      const uint32_t n = ++st.st.misses_by_prover[c.prover];
      std::cerr << st.ctx.names(st.ctx.self) << ": " << st.ctx.names(c.prover) << " left the challenge of "
                << (c.segment ? "its segment from step " : "step ") << c.step << " unanswered (" << n << " of "
                << st.s.max_misses << " misses)\n";
      if (c.recheck) {
        ++st.st.misses_confirmed;
      } else {
        std::vector<std::byte> out;
        encode_miss_claim({st.ctx.self, c.prover, c.step, c.layer}, out);
        st.st.misses_announced += to_other_verifiers(c.prover, std::move(out));
      }
      if (n >= st.s.max_misses) over.push_back(c.prover);
      ++it;
    }
    for (uint32_t p : over) quarantine(p, "left challenges unanswered", quarantine_cause::missed_answers);
  };
  // Runs the transcript check and times it.
  auto run_check = [self](const transcript_commit& c, const tensor_reply& r) {
    auto& st = self->state;
    const auto t0 = clock_type::now();
    check_outcome o = r.layer < c.layers.size() ? st.checker->check(c, r, st.shard(r.prover), st.rng)
                                                : check_outcome::bad_shape;
    st.st.check_seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
    return o;
  };

  auto on_commit = [self, challenge_step](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    if (decode_transcript_commit(f, st.s.max_frame_bytes, st.commit_in) != frame_error::none ||
        st.commit_in.prover != from) {
      ++st.st.frames_rejected;
      return;
    }
    if (st.quarantined.count(from)) return;
    ++st.st.commits_received;
    const uint64_t seq = ++st.commits_seen[from];
    auto& q = st.commits[from];
    q.push_back({st.commit_in, seq});
    while (q.size() > st.s.keep_commits) q.pop_front();
    // The challenge is drawn only now, after the prover is bound.
    if (st.rng.uniform() >= st.s.rate) return;
    q.back().challenged = true;
    challenge_step(from, st.commit_in.step, st.commit_in.layers.size(), seq, false);
  };

  // A miss claim is only a reason to look: we challenge the prover for that
  // step ourselves (with our own random layer) and count what WE observe.
  // Segment scheme: the claim names a segment by its start step (layer 0).
  auto on_claim = [self, challenge_step, track_segment](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& m = st.claim_in;
    if (decode_miss_claim(f, st.s.max_frame_bytes, m) != frame_error::none || m.accuser != from) {
      ++st.st.frames_rejected;
      return;
    }
    ++st.st.miss_claims_received;
    if (m.prover == st.ctx.self || st.quarantined.count(m.prover)) return;
    if (st.segments) {
      const auto* h = st.segments->held(m.prover, m.step);
      if (h && h->challenged) return;  // we asked for that segment ourselves already
      // As for steps; the retention is keep_segments further commitments.
      if (!st.is_neighbour(m.prover) || !h || st.segments->commits_seen(m.prover) - h->seq >= st.s.keep_segments) {
        ++st.st.misses_ignored;
        return;
      }
      const uint64_t seq = h->seq;
      if (auto rq = st.segments->challenge(m.prover, m.step, st.next_nonce)) track_segment(*rq, seq, true);
      return;
    }
    auto* h = st.find_held(m.prover, m.step);
    if (h && h->challenged) return;  // we asked for that step ourselves already
    // Not our neighbour (left, or never was), or nothing we could hold it to.
    if (!st.is_neighbour(m.prover) || !h || st.past_retention(m.prover, h->seq)) {
      ++st.st.misses_ignored;
      return;
    }
    h->challenged = true;
    challenge_step(m.prover, m.step, h->c.layers.size(), h->seq, true);
  };

  auto on_request = [self, send](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    if (decode_tensor_request(f, st.s.max_frame_bytes, st.request_in) != frame_error::none ||
        st.request_in.verifier != from || st.request_in.prover != st.ctx.self) {
      ++st.st.frames_rejected;
      return;
    }
    if (st.s.silent && st.request_in.step >= st.s.silent_from) {
      ++st.st.requests_withheld;
      return;
    }
    tensor_reply r;
    if (!st.ctx.log || !st.ctx.log->reply(st.request_in.step, st.request_in.layer, st.request_in.nonce, r)) {
      ++st.st.requests_unavailable;
      return;
    }
    ++st.st.requests_answered;
    std::vector<std::byte> out;
    encode_tensor_reply(r, out);
    send(from, std::move(out));
  };

  auto on_reply = [self, quarantine, run_check, to_other_verifiers, count_answer](uint32_t from,
                                                                                 std::span<const std::byte> f) {
    auto& st = self->state;
    auto& r = st.reply_in;
    if (decode_tensor_reply(f, st.s.max_frame_bytes, r) != frame_error::none || r.prover != from) {
      ++st.st.frames_rejected;
      return;
    }
    auto it = st.pending.find(r.nonce);
    if (it == st.pending.end() && r.nonce < st.next_nonce) {
      ++st.st.replies_duplicate;  // the answer to a request we sent twice, or a replay: already settled
      return;
    }
    if (it == st.pending.end() || it->second.prover != from || it->second.step != r.step ||
        it->second.layer != r.layer) {
      ++st.st.frames_rejected;  // unasked for
      return;
    }
    const auto asked = it->second;
    st.pending.erase(it);
    const transcript_commit* c = st.find_commit(from, r.step);
    if (!c) return;
    ++st.st.replies_checked;
    count_answer(asked);
    check_outcome o = run_check(*c, r);
    auto& credit = st.st.ledger[from];
    if (o == check_outcome::passed) {
      ++st.st.passed;
      ++credit.checks_passed;
      credit.verified_flops += 2 * transcript_checker::work_of(r);
      if (asked.recheck && !asked.overdue) {
        ++st.st.misses_rejected;
        std::cerr << st.ctx.names(st.ctx.self) << ": " << st.ctx.names(from) << " answered the re-check of step " << r.step
                  << " correctly; the miss claim is ignored\n";
      }
      return;
    }
    ++st.st.failed;
    ++credit.checks_failed;
    st.st.caught.emplace_back(from, r.step);
    std::cerr << st.ctx.names(st.ctx.self) << ": " << st.ctx.names(from) << " failed the check of step " << r.step << " layer "
              << r.layer << " (" << to_string(o) << ")\n";
    st.evidence_seen.emplace(from, r.step, r.layer);
    quarantine(from, "failed a check this peer ran");
    evidence_msg ev{st.ctx.self, from, r.step, r.layer, static_cast<uint8_t>(o),
                    std::vector<std::byte>(f.begin(), f.end())};
    std::vector<std::byte> out;
    encode_evidence(ev, out);
    st.st.evidence_sent += to_other_verifiers(from, std::move(out));
  };

  auto on_evidence = [self, quarantine, run_check](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& r = st.reply_in;
    if (decode_evidence(f, st.s.max_frame_bytes, st.evidence_in, &r) != frame_error::none ||
        st.evidence_in.accuser != from) {
      ++st.st.frames_rejected;
      return;
    }
    ++st.st.evidence_received;
    const uint32_t prover = st.evidence_in.prover;
    if (prover == st.ctx.self || st.quarantined.count(prover)) return;
    if (!st.evidence_seen.emplace(prover, r.step, r.layer).second) return;
    const transcript_commit* c = st.find_commit(prover, r.step);
    if (!c) {
      ++st.st.evidence_unverifiable;  // we hold no commitment of that step to hold it to
      return;
    }
    check_outcome o = run_check(*c, r);
    // Tensors that do not hash to the commitment WE hold say nothing about
    // the prover (forged, or it committed differently to the accuser); nor
    // do shapes our model refuses before hashing.
    if (o == check_outcome::hash_mismatch || o == check_outcome::bad_shape) {
      ++st.st.evidence_rejected;
      std::cerr << st.ctx.names(st.ctx.self) << ": evidence from " << st.ctx.names(from) << " against "
                << st.ctx.names(prover) << " does not hash to the commitment this peer holds; ignored\n";
      return;
    }
    if (o == check_outcome::passed) {
      ++st.st.evidence_rejected;
      std::cerr << st.ctx.names(st.ctx.self) << ": evidence from " << st.ctx.names(from) << " against " << st.ctx.names(prover)
                << " re-checked as honest work; ignored\n";
      return;
    }
    ++st.st.evidence_confirmed;
    ++st.st.ledger[prover].checks_failed;
    quarantine(prover, "evidence re-checked by this peer");
  };

  // Segment scheme (segment_verifier.hpp).
  // A failed segment: quarantine, and, when it failed our own replay of the
  // prover's reply, relay that reply verbatim (reply_frame) to the prover's
  // other verifiers, which act on it only after their own re-check.
  auto segment_failed = [self, quarantine, to_other_verifiers](const segment_verifier::verdict& v,
                                                 std::span<const std::byte> reply_frame) {
    auto& st = self->state;
    ++st.st.segments_failed;
    ++st.st.failed;
    ++st.st.ledger[v.prover].checks_failed;
    st.st.caught.emplace_back(v.prover, v.first_bad_step ? v.first_bad_step : v.start_step + 1);
    std::cerr << st.ctx.names(st.ctx.self) << ": " << st.ctx.names(v.prover) << " failed the replay of its steps "
              << v.start_step + 1 << " to " << v.end_step << ": " << v.why;
    if (v.first_bad_step) std::cerr << "; its state first differs after step " << v.first_bad_step;
    std::cerr << "\n";
    quarantine(v.prover, "failed a segment replay this peer ran");
    if (reply_frame.empty()) return;
    st.segment_evidence_settled.emplace(v.prover, v.start_step);
    std::vector<std::byte> out;
    encode_segment_evidence({st.ctx.self, v.prover, v.start_step, {reply_frame.begin(), reply_frame.end()}}, out);
    st.st.evidence_sent += to_other_verifiers(v.prover, std::move(out));
  };
  auto on_segment_commit = [self, send, track_segment, segment_failed, quarantine](uint32_t from,
                                                                                 std::span<const std::byte> f) {
    auto& st = self->state;
    if (!st.segments || decode_segment_commit(f, st.s.max_frame_bytes, st.seg_commit_in) != frame_error::none ||
        st.seg_commit_in.prover != from) {
      ++st.st.frames_rejected;
      return;
    }
    if (st.quarantined.count(from) || !st.is_neighbour(from)) return;
    // A prover sends each commitment again with its next one (so that one
    // lost frame leaves no gap): the copy of one held changes nothing.
    if (const auto* h = st.segments->held(from, st.seg_commit_in.start_step);
        h && !h->implied && h->c == st.seg_commit_in) {
      ++st.st.segment_commits_repeated;
      return;
    }
    ++st.st.segment_commits_received;
    // Its segments would not replay here bit for bit, honest or not: never
    // mixed unverified, and no accusation either (both sides do the same).
    if (st.seg_commit_in.fingerprint != st.s.fingerprint) {
      std::cerr << st.ctx.names(st.ctx.self) << ": " << st.ctx.names(from) << " states replay fingerprint "
                << to_string(st.seg_commit_in.fingerprint) << ", ours is " << to_string(st.s.fingerprint)
                << ": its segments cannot be replayed here\n";
      // It may not have heard ours yet (we may not have committed): a
      // commitment-shaped notice stating ours makes it refuse us too, so
      // neither keeps mixing the other's last estimate. Never held: it is
      // refused for its fingerprint before anything else.
      std::vector<std::byte> notice;
      encode_segment_commit({st.ctx.self, 0, 1, {}, {}, {}, st.s.fingerprint}, notice);
      send(from, std::move(notice));
      return quarantine(from, "replay fingerprint unlike ours", quarantine_cause::replay_mismatch);
    }
    if (const std::string why = st.refusal(from, st.seg_commit_in); !why.empty()) {
      ++st.st.segment_commits_refused;
      if (st.refused_for_load(from, st.seg_commit_in)) st.segments->passed_over(from, st.seg_commit_in);
      if (st.refusal_logged.insert(from).second)
        std::cerr << st.ctx.names(st.ctx.self) << ": refusing " << st.ctx.names(from)
                  << "'s segment commitments (the first: steps " << st.seg_commit_in.start_step + 1 << " to "
                  << st.seg_commit_in.end_step << "): " << why << "; counted, not logged again\n";
      return;
    }
    auto out = st.segments->on_commit(from, st.seg_commit_in, st.rng, st.next_nonce);
    if (out.kind == segment_verifier::commit_outcome::held || out.kind == segment_verifier::commit_outcome::new_chain)
      st.paced(from, st.seg_commit_in);
    switch (out.kind) {
      case segment_verifier::commit_outcome::stale:
        ++st.st.segment_frames_stale;  // an earlier incarnation's, arriving late: not held
        return;
      case segment_verifier::commit_outcome::broken: return segment_failed(out.broken_chain, {});
      case segment_verifier::commit_outcome::new_chain: {
        // A restart (segment_verifier.hpp, "Chains and restarts"): the
        // earlier incarnation's open challenges are still counted.
        ++st.st.segment_chains_restarted;
        size_t open = 0;
        for (uint64_t nonce : out.retired)
          if (auto it = st.pending.find(nonce); it != st.pending.end()) {
            it->second.retired = true;
            open += !it->second.overdue;
          }
        // Challenges abandoned when membership dropped it: it was restarting.
        uint32_t misses = 0;
        if (auto d = st.departed.find(from); d != st.departed.end()) {
          for (const auto& c : d->second) {
            if (c.seen_at_send - c.seq >= st.s.keep_segments) continue;  // excused by retention, as any
            --st.st.challenges_abandoned;
            ++st.st.challenges_missed;
            if (c.recheck) --st.st.misses_ignored, ++st.st.misses_confirmed;
            misses = ++st.st.misses_by_prover[from];
            ++open;
          }
          st.departed.erase(d);
        }
        std::cerr << st.ctx.names(st.ctx.self) << ": " << st.ctx.names(from) << " restarted (incarnation "
                  << out.previous_incarnation << " -> " << st.seg_commit_in.incarnation
                  << "): a new chain of segments from step " << st.seg_commit_in.start_step << "; " << open
                  << " challenge(s) of its earlier incarnation still count\n";
        if (misses >= st.s.max_misses)
          return quarantine(from, "left challenges unanswered", quarantine_cause::missed_answers);
        break;
      }
      case segment_verifier::commit_outcome::held:
        st.departed.erase(from);  // back in the same incarnation: no restart; they stay abandoned
        break;
    }
    // Gaps (segment_verifier.hpp): one missing segment is challenged as
    // implied; a longer one cannot be and costs a miss, as a silence would.
    if (out.implied_challenge) {
      ++st.st.segment_gaps_implied;
      track_segment(*out.implied_challenge, st.segments->held(from, out.implied_challenge->start_step)->seq, false);
    }
    if (out.gap_to > out.gap_from) {
      ++st.st.segment_gaps;
      const uint32_t n = ++st.st.misses_by_prover[from];
      std::cerr << st.ctx.names(st.ctx.self) << ": " << st.ctx.names(from) << " committed no segments for its steps "
                << out.gap_from + 1 << " to " << out.gap_to << " (a gap of more than one segment: counted as a miss, "
                << n << " of " << st.s.max_misses << " misses)\n";
      if (n >= st.s.max_misses) {
        if (out.challenge) st.segments->withdraw(out.challenge->nonce);
        return quarantine(from, "left segments uncommitted", quarantine_cause::missed_answers);
      }
    }
    if (out.challenge) track_segment(*out.challenge, st.segments->commits_seen(from), false);
  };
  auto on_segment_request = [self, send](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& rq = st.seg_request_in;
    if (!st.segments || decode_segment_request(f, st.s.max_frame_bytes, rq) != frame_error::none ||
        rq.verifier != from || rq.prover != st.ctx.self) {
      ++st.st.frames_rejected;
      return;
    }
    if (st.s.silent && rq.start_step + 1 >= st.s.silent_from) {
      ++st.st.requests_withheld;
      return;
    }
    std::vector<std::byte> out;
    try {
      if (!st.segments->answer(rq, out)) {
        // Dropped for keep_segments newer commitments (sent before this
        // answer): said, with our latest end step, so that the verifier
        // excuses it once those reach it. Never committed: silence.
        ++st.st.segment_requests_unavailable;
        if (st.own_end > rq.start_step) {
          encode_segment_unavailable({st.ctx.self, rq.start_step, rq.nonce, st.own_end}, out);
          send(from, std::move(out));
        }
        return;
      }
    } catch (const boundary_store_error& e) {
      // Our own boundary store failed us: no reply rather than a wrong one,
      // and said, since the verifier will count the silence as a miss.
      ++st.st.segment_requests_unavailable;
      std::cerr << st.ctx.names(st.ctx.self) << ": cannot answer " << st.ctx.names(from) << "'s challenge of steps "
                << rq.start_step + 1 << "-: " << e.what() << "\n";
      return;
    }
    // A frame over the limit would be cut off by the receiver's transport
    // (and its link reset): left unanswered instead, and said.
    if (out.size() > st.s.max_frame_bytes) {
      ++st.st.segment_requests_unavailable;
      std::cerr << st.ctx.names(st.ctx.self) << ": the reply to " << st.ctx.names(from) << "'s challenge of steps "
                << rq.start_step + 1 << "- is " << out.size() << " bytes, over net.max_frame_bytes = "
                << st.s.max_frame_bytes << "; not sent\n";
      return;
    }
    ++st.st.segment_requests_answered;
    st.st.segment_reply_bytes_max = std::max<uint64_t>(st.st.segment_reply_bytes_max, out.size());
    send(from, std::move(out));
  };
  // An attacker (forge_segment_evidence): relays an honest reply it checked
  // with one byte of its records changed, as evidence.
  auto forge_evidence = [self, to_other_verifiers](segment_reply_msg&& r) {
    auto& st = self->state;
    if (!r.records.frames.empty())
      r.records.frames[r.records.frames.size() / 2] ^= std::byte{1};
    else if (!r.records.events.empty())
      ++r.records.events.back().step;
    const uint32_t prover = r.prover;
    segment_evidence_msg ev{st.ctx.self, prover, r.start_step, reply_frame_of(std::move(r))};
    std::vector<std::byte> out;
    encode_segment_evidence(ev, out);
    st.st.evidence_sent += to_other_verifiers(prover, std::move(out));
  };
  // Sends waiting segment checks to the replay actor (segment_replay_actor.hpp)
  // while fewer than max_segment_checks_out are out; on_done runs on this
  // actor with the verdict, after the check's time is counted.
  st.pump_checks = [self]() {
    auto& st = self->state;
    while (st.checks_out < max_segment_checks_out && !st.checks_waiting.empty()) {
      auto w = std::move(st.checks_waiting.front());
      st.checks_waiting.pop_front();
      ++st.checks_out;
      const uint32_t prover = w.job.commit.prover;
      const bool own = !w.job.relayed;
      auto settle = [self, prover, own]() {
        auto& st = self->state;
        --st.checks_out;
        if (own) {
          if (auto it = st.own_checks_open.find(prover); it != st.own_checks_open.end() && --it->second == 0)
            st.own_checks_open.erase(it);
        }
      };
      self->request(st.replays, caf::infinite, segcheck_atom::value, std::make_shared<segment_check>(std::move(w.job)))
          .then(
              [self, settle, on_done = std::move(w.on_done)](const segment_check_done& d) {
                auto& st = self->state;
                settle();
                st.st.segment_replay_seconds += d.seconds;
                st.st.check_seconds += d.seconds;
                on_done(d.verdict, d.job);
                st.pump_checks();
              },
              [self, settle](caf::error& e) {
                auto& st = self->state;
                settle();
                std::cerr << st.ctx.names(st.ctx.self) << ": a segment check ended without a verdict: "
                          << self->system().render(e) << "\n";
                st.pump_checks();
              });
    }
  };
  // Queues a segment check: the reply to our own challenge always (it waits
  // for a slot; its prover's open challenges bound how many wait), relayed
  // evidence only while fewer than half the slots are taken and no check
  // waits. False: not queued (relayed evidence, dropped).
  auto check_segment = [self](segment_check&& job,
                              std::function<void(const segment_verdict&, std::shared_ptr<segment_check>)> on_done) {
    auto& st = self->state;
    if (job.relayed && (st.checks_out >= max_segment_checks_out / 2 || !st.checks_waiting.empty())) {
      ++st.st.segment_checks_dropped;
      std::cerr << st.ctx.names(st.ctx.self) << ": " << st.checks_out + st.checks_waiting.size()
                << " segment checks are out or waiting; the evidence against " << st.ctx.names(job.commit.prover)
                << " (its segment from step " << job.commit.start_step << ") is not replayed\n";
      return false;
    }
    if (!job.relayed) {
      ++st.own_checks_open[job.commit.prover];
      if (st.checks_out >= max_segment_checks_out) ++st.st.segment_checks_waited;
    }
    st.checks_waiting.push_back({std::move(job), std::move(on_done)});
    st.st.segment_checks_waiting_max =
        std::max<uint64_t>(st.st.segment_checks_waiting_max,
                           st.checks_out >= max_segment_checks_out ? st.checks_waiting.size() : 0);
    st.pump_checks();
    return true;
  };
  // Relayed segment evidence (segment_verifier::on_evidence): acted on only
  // if it hashes to the commitment this peer holds and this peer's own
  // replay fails. Bounded work: the frame within max_frame_bytes, one
  // attempt per relayer and segment, none once the segment is settled, and
  // at most half the segment checks out at once.
  auto on_segment_evidence = [self, quarantine, check_segment](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& ev = st.seg_evidence_in;
    if (!st.segments || decode_segment_evidence(f, st.s.max_frame_bytes, ev) != frame_error::none ||
        ev.accuser != from) {
      ++st.st.frames_rejected;
      return;
    }
    ++st.st.evidence_received;
    const uint32_t prover = ev.prover;
    const uint64_t start = ev.start_step;
    if (prover == st.ctx.self || prover == from || st.quarantined.count(prover)) return;
    if (!st.segments->held(prover, start)) {
      ++st.st.evidence_unverifiable;  // we hold no commitment of that segment to hold it to
      return;
    }
    if (st.segment_evidence_settled.count({prover, start}) ||
        !st.segment_evidence_tried.emplace(from, prover, start).second)
      return;
    auto reject = [self, from, prover, start](const char* why) {
      auto& st = self->state;
      ++st.st.evidence_rejected;
      std::cerr << st.ctx.names(st.ctx.self) << ": segment evidence from " << st.ctx.names(from) << " against "
                << st.ctx.names(prover) << " (its segment from step " << start << ") " << why << "; ignored\n";
    };
    auto& r = st.seg_reply_in;
    if (decode_segment_reply(ev.reply, st.s.max_frame_bytes, r) != frame_error::none || r.prover != prover ||
        r.start_step != start) {
      ev = {};
      r = {};
      return reject("holds no reply of that prover and segment");
    }
    ev = {};
    auto job = st.segments->on_evidence(std::move(r));
    r = {};
    if (!job) {
      ++st.st.evidence_unverifiable;
      return;
    }
    // Not replayed for want of a slot: another relayer may still try.
    const bool sent = check_segment(std::move(*job), [self, quarantine, reject, from, prover,
                                                      start](const segment_verdict& v, std::shared_ptr<segment_check>) {
      auto& st = self->state;
      if (st.quarantined.count(prover)) return;  // settled meanwhile (our own replay, other evidence)
      switch (v.kind) {
        case segment_verdict::mismatch:
          return reject(
              "does not hash to the commitment this peer holds (forged, or the prover committed otherwise)");
        case segment_verdict::passed:
          st.segment_evidence_settled.emplace(prover, start);
          return reject("replayed here to its committed end (a false accusation)");
        case segment_verdict::failed:
          st.segment_evidence_settled.emplace(prover, start);
          ++st.st.evidence_confirmed;
          ++st.st.ledger[prover].checks_failed;
          std::cerr << st.ctx.names(st.ctx.self) << ": segment evidence from " << st.ctx.names(from) << " against "
                    << st.ctx.names(prover) << " re-checked: " << v.why << "\n";
          return quarantine(prover, "segment evidence re-checked by this peer");
        default: ++st.st.evidence_unverifiable;
      }
    });
    if (!sent) st.segment_evidence_tried.erase({from, prover, start});
  };

  // The reply to one of our segment challenges counts as answered when it
  // arrives (the deadline is the prover's; the replay's time is ours), and
  // is judged when the replay actor's verdict comes back. A verdict on a
  // prover quarantined meanwhile changes nothing; one on a prover that left
  // or restarted (forgotten by segment_verifier) still stands: it concerns
  // a segment the prover committed to and answered for.
  auto on_segment_reply = [self, segment_failed, forge_evidence, count_answer, check_segment](
                              uint32_t from, std::span<const std::byte> frame) {
    auto& st = self->state;
    auto& r = st.seg_reply_in;
    if (!st.segments || decode_segment_reply(frame, st.s.max_frame_bytes, r) != frame_error::none ||
        r.prover != from) {
      ++st.st.frames_rejected;
      r = {};
      return;
    }
    auto it = st.pending.find(r.nonce);
    if (it == st.pending.end() && r.nonce < st.next_nonce) {
      ++st.st.replies_duplicate;  // the answer to a request we sent twice, or a replay: already settled
      r = {};
      return;
    }
    if (it == st.pending.end() || !it->second.segment || it->second.prover != from || it->second.step != r.start_step) {
      ++st.st.frames_rejected;  // unasked for
      r = {};
      return;
    }
    if (it->second.retired) {  // the prover restarted since we asked: not an answer of the one asked
      ++st.st.segment_frames_stale;
      r = {};
      return;
    }
    const auto asked = it->second;
    st.pending.erase(it);
    if (st.quarantined.count(from)) {
      r = {};
      return;
    }
    auto job = st.segments->on_reply(from, std::move(r));
    r = {};  // a boundary state's worth of memory, not kept between replies
    if (!job) {  // its commitment is no longer held: nothing to check
      if (!asked.overdue) ++st.st.challenges_abandoned;
      return;
    }
    count_answer(asked);
    // The frame is not held through the replay: a failed reply is relayed
    // re-encoded from the job handed back (the same content, which is what
    // the other verifiers hold to their commitments).
    job->give_back = st.s.forge_segment_evidence ? segment_check::always : segment_check::when_failed;
    check_segment(std::move(*job), [self, segment_failed, forge_evidence, asked,
                                    from](const segment_verdict& v, std::shared_ptr<segment_check> done) {
      auto& st = self->state;
      if (st.quarantined.count(from)) return;
      ++st.st.replies_checked;
      if (v.kind == segment_verdict::failed)
        return segment_failed(v, done ? reply_frame_of(std::move(done->reply)) : std::vector<std::byte>{});
      if (st.s.forge_segment_evidence && done) forge_evidence(std::move(done->reply));
      ++st.st.segments_passed;
      ++st.st.passed;
      auto& credit = st.st.ledger[from];
      ++credit.checks_passed;
      credit.verified_flops += v.flops;
      if (asked.recheck && !asked.overdue) {
        ++st.st.misses_rejected;
        std::cerr << st.ctx.names(st.ctx.self) << ": " << st.ctx.names(from)
                  << " answered the re-check of its segment from step " << v.start_step
                  << " correctly; the miss claim is ignored\n";
      }
    });
  };

  // A prover's "unavailable" answer to our segment challenge: answered, not
  // yet excused. Excused once the commitments it dropped the segment for
  // have reached us (now, or by the deadline); a miss at the deadline
  // otherwise, as a silence would be (sweep).
  auto on_segment_unavailable = [self](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& m = st.seg_unavailable_in;
    if (!st.segments || decode_segment_unavailable(f, st.s.max_frame_bytes, m) != frame_error::none ||
        m.prover != from) {
      ++st.st.frames_rejected;
      return;
    }
    auto it = st.pending.find(m.nonce);
    if (it == st.pending.end() && m.nonce < st.next_nonce) {
      ++st.st.replies_duplicate;
      return;
    }
    if (it == st.pending.end() || !it->second.segment || it->second.prover != from || it->second.step != m.start_step) {
      ++st.st.frames_rejected;  // unasked for
      return;
    }
    auto& c = it->second;
    if (c.retired) {
      ++st.st.segment_frames_stale;
      return;
    }
    ++st.st.segment_unavailable_answers;
    if (c.overdue) return;  // judged at its deadline already
    c.unavailable = true;
    if (!st.dropped_as_promised(c)) return;  // its newer commitments may still come, until the deadline
    ++st.st.challenges_expired;
    if (c.recheck) ++st.st.misses_ignored;
    st.segments->withdraw(it->first);
    st.pending.erase(it);
  };

  auto on_task = [self, send](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& t = st.task_in;
    if (decode_matmul_task(f, st.s.max_frame_bytes, t) != frame_error::none || t.requester != from) {
      ++st.st.frames_rejected;
      return;
    }
    matmul_result res{st.ctx.self, t.task, t.m, t.n, std::vector<float>(size_t{t.m} * t.n)};
    if (st.s.matmul_cheat == compute_cheat::skip_product) {
      for (auto& v : res.c) v = static_cast<float>(st.rng.normal());
    } else {
      if (st.products)
        st.products->multiply(t.m, t.n, t.k, t.a.data(), t.b.data(), res.c.data());
      else
        gemm(false, false, t.m, t.n, t.k, 1.f, t.a.data(), t.b.data(), 0.f, res.c.data());
      if (st.s.matmul_cheat == compute_cheat::perturb) {
        const size_t row = st.rng.below(t.m);
        double n2 = 0;
        for (uint32_t j = 0; j < t.n; ++j) n2 += double{res.c[row * t.n + j]} * res.c[row * t.n + j];
        res.c[row * t.n + st.rng.below(t.n)] += static_cast<float>(st.s.matmul_cheat_eps * std::sqrt(n2));
      }
    }
    ++st.st.tasks_served;
    std::vector<std::byte> out;
    encode_matmul_result(res, out);
    send(from, std::move(out));
  };

  auto on_result = [self, quarantine](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& r = st.result_in;
    if (decode_matmul_result(f, st.s.max_frame_bytes, r) != frame_error::none || r.worker != from) {
      ++st.st.frames_rejected;
      return;
    }
    auto it = st.tasks.find(r.task);
    if (it == st.tasks.end() || it->second.worker != from) {
      ++st.st.frames_rejected;
      return;
    }
    auto w = std::move(it->second);
    st.tasks.erase(it);
    const matmul_job& j = *w.job;
    const auto t0 = clock_type::now();
    bool ok = r.m == j.m && r.n == j.n &&
              st.fv->check(false, false, j.m, j.n, j.k, j.a.data(), j.b.data(), nullptr, r.c.data(),
                           st.s.offload_rounds > 0 ? st.s.offload_rounds : st.s.rounds, st.rng).ok;
    st.st.check_seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
    matmul_outcome out{ok, from, {}};
    auto& credit = st.st.ledger[from];
    if (ok) {
      ++st.st.offloads_verified;
      ++credit.checks_passed;
      credit.verified_flops += 2.0 * j.m * j.n * j.k;
      out.c = std::move(r.c);
    } else {
      ++st.st.offloads_rejected;
      ++credit.checks_failed;
      quarantine(from, "wrong answer to an offloaded product");
      out.c.assign(size_t{j.m} * j.n, 0.f);
      gemm(false, false, j.m, j.n, j.k, 1.f, j.a.data(), j.b.data(), 0.f, out.c.data());
    }
    w.rp.deliver(std::move(out));
  };

  return {
      [self, send, sweep](vcommit_atom, const wire_frame& w) {
        auto& st = self->state;
        sweep(st.now());
        if (!w.bytes) return;
        for (uint32_t to : st.ctx.neighbours) {
          ++st.st.commits_sent;
          send(to, *w.bytes);
        }
      },
      [self](segcommit_atom, const std::shared_ptr<const segment>& seg) {
        auto& st = self->state;
        if (!st.segments || !seg) return;
        std::vector<std::byte> out;
        auto c = st.segments->commit(seg);
        st.own_end = std::max(st.own_end, c.end_step);
        c.fingerprint = st.s.fingerprint;
        c.incarnation = st.s.incarnation;
        encode_segment_commit(c, out);
        auto bytes = std::make_shared<const std::vector<std::byte>>(std::move(out));
        // The previous commitment goes again, just before this one: a
        // verifier that lost it continues its chain from the copy instead of
        // finding a gap (two lost in a row: one segment missing, implied and
        // challenged; only three in a row leave a longer gap, a miss).
        for (uint32_t to : st.ctx.neighbours) {
          if (st.last_commit) self->send(st.transport, send_atom::value, st.ctx.self, to, wire_frame{st.last_commit});
          ++st.st.segment_commits_sent;
          self->send(st.transport, send_atom::value, st.ctx.self, to, wire_frame{bytes});
        }
        st.last_commit = std::move(bytes);
      },
      [self, on_commit, on_request, on_reply, on_evidence, on_claim, on_task, on_result, sweep, on_segment_commit,
       on_segment_request, on_segment_reply, on_segment_evidence, on_segment_unavailable](
          deliver_atom, uint32_t from, const wire_frame& w) {
        if (!w.bytes) return;
        sweep(self->state.now());  // deadlines first: a reply after its deadline is late
        auto type = peek_type(*w.bytes);
        if (!type) {
          ++self->state.st.frames_rejected;
          return;
        }
        switch (*type) {
          case message_type::transcript_commit: on_commit(from, *w.bytes); break;
          case message_type::tensor_request: on_request(from, *w.bytes); break;
          case message_type::tensor_reply: on_reply(from, *w.bytes); break;
          case message_type::evidence: on_evidence(from, *w.bytes); break;
          case message_type::matmul_task: on_task(from, *w.bytes); break;
          case message_type::matmul_result: on_result(from, *w.bytes); break;
          case message_type::miss_claim: on_claim(from, *w.bytes); break;
          case message_type::segment_commit: on_segment_commit(from, *w.bytes); break;
          case message_type::segment_request: on_segment_request(from, *w.bytes); break;
          case message_type::segment_reply: on_segment_reply(from, *w.bytes); break;
          case message_type::segment_evidence: on_segment_evidence(from, *w.bytes); break;
          case message_type::segment_unavailable: on_segment_unavailable(from, *w.bytes); break;
          default: ++self->state.st.frames_rejected;
        }
      },
      [self, abandon](nbrs_atom, const std::vector<uint32_t>& ids, const std::vector<uint64_t>& /*incarnations*/) {
        auto& st = self->state;
        // A neighbour's new incarnation here is not what starts a new chain
        // of its segments: membership's also rises when a live peer refutes
        // a suspicion. A restarted prover states its new incarnation in its
        // commitments (segment_verifier.hpp, "Chains and restarts").
        st.ctx.neighbours.clear();
        for (uint32_t id : ids)
          if (!st.quarantined.count(id)) st.ctx.neighbours.push_back(id);
        // A prover that left (membership declared it dead) is not charged.
        std::set<uint32_t> gone;
        for (const auto& [nonce, c] : st.pending)
          if (!st.is_neighbour(c.prover)) gone.insert(c.prover);
        for (uint32_t p : gone) abandon(p);
      },
      [self, sweep](deadline_atom) { sweep(self->state.now()); },
      [self, send](offload_atom, uint32_t worker,
                   const std::shared_ptr<const matmul_job>& job) -> caf::result<matmul_outcome> {
        auto& st = self->state;
        auto rp = self->make_response_promise<matmul_outcome>();
        if (!job || job->a.size() != size_t{job->m} * job->k || job->b.size() != size_t{job->k} * job->n) {
          rp.deliver(caf::make_error(caf::sec::invalid_argument));
          return rp;
        }
        const uint64_t id = st.next_task++;
        ++st.st.offloads;
        st.tasks.emplace(id, verifier_state::waiting_task{rp, job, worker});
        std::vector<std::byte> out;
        encode_matmul_task({st.ctx.self, id, job->m, job->n, job->k, job->a, job->b}, out);
        send(worker, std::move(out));
        return rp;
      },
      [self, sweep](stats_atom) -> verifier_stats {
        sweep(self->state.now());
        return self->state.st;
      },
  };
}

}  // namespace

verifier_actor spawn_verifier(caf::actor_system& sys, verifier_context ctx, verifier_settings s,
                              transport_actor transport, gossip_actor gossip) {
  return sys.spawn(verifier_behavior, std::move(ctx), s, std::move(transport), std::move(gossip));
}

reputation reputation_of(const verifier_stats& s, const reputation_weights& w) {
  reputation r(w);
  for (const auto& [peer, c] : s.ledger) r.add(peer, peer_evidence{c.checks_passed, c.checks_failed, 0, c.verified_flops});
  for (const auto& [peer, n] : s.misses_by_prover) r.missed(peer, n);
  return r;
}

}  // namespace murmur
