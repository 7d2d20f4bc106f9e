// verifier_actor: one peer's side of verification, over the same transport
// as gossip (simulated or ZeroMQ; it cannot tell which).
//
// As a prover: the shard actor hands it each step's commitment (vcommit);
// it sends it to the peer's neighbours (its verifiers) and answers their
// tensor requests from the step transcript log.
// As a verifier: for each commitment a neighbour sends, with probability
// `rate` (drawn after the commitment arrived) it asks for one random layer
// of that step and checks it (transcript_check.hpp). A pass credits the
// prover in the credit ledger with the work checked; a failure is evidence:
// this peer quarantines the prover (it checked itself) and sends the
// evidence (the prover's reply, verbatim) to the prover's other neighbours.
// Evidence received is acted on only after re-checking it: the tensors must
// hash to the commitment THIS peer received from the prover, and a fresh
// check with this peer's own random vectors must fail. Evidence that checks
// out as honest work is counted as a false accusation and ignored.
// Deadlines (docs/trust.md, "Unanswered challenges"): a challenge (ours, or
// a re-check) unanswered `deadline_s` after it was sent, by the clock the
// context gives, is a miss, unless the prover has since committed
// `keep_steps` further steps (it may have dropped the transcript, as it
// promised it could: the challenge expires, though a late answer is still
// checked) or left our neighbours (it is abandoned). A request still
// unanswered at half the deadline is sent once more (same nonce: a lost
// frame is not a miss), and silence counts only once the prover has moved
// on, moved_on_commits commitments since we asked (a stalled or starved
// prover is waited for, up to 8 deadlines, then abandoned unheld). A reply after the deadline is still checked, but the miss
// stands. Each miss of our own challenge is announced (miss_claim) to the
// prover's other verifiers; a receiver does not act on the claim: it
// challenges the prover for the same step itself, and counts a miss only if
// its own challenge goes unanswered too (an answer that checks out makes the
// claim a false accusation, ignored). max_misses misses this peer observed
// itself quarantine the prover (cause missed_answers). Deadlines are looked
// at whenever a frame or commitment arrives, on deadline_atom, and on stats.
// Accounting: challenges = challenges_completed + challenges_missed +
// challenges_expired + challenges_abandoned + those still in flight.
// Checks run on the peer's own compute backend when the context names one
// (a GPU peer checks on its GPU), with the host check's verdicts.
// Segment scheme (segment_steps = K > 0, verify.scheme = segment): instead
// of per-step commitments the shard actor hands it each closed segment of K
// steps (segcommit_atom); it sends the segment's commitment to the
// neighbours and answers their segment challenges. As a verifier it
// challenges each segment of a neighbour with probability
// segment_challenge_probability(rate, layers, K) and replays it
// (segment_verifier.hpp) on a replay actor of its own
// (segment_replay_actor.hpp, linked): this actor stays free to answer its
// own segment challenges while a replay runs. A reply counts as answered
// when it arrives; its verdict is acted on when it comes back (a prover
// quarantined meanwhile: ignored). At most 4 checks are out at once; a
// reply to our own challenge past that waits here, in order (never
// dropped), relayed evidence is dropped unless fewer than 2 are out and
// none waits (segment_checks_dropped). Flood bound: a prover's commitment
// is refused (segment_commits_refused) when it does not span one segment,
// when the prover has keep_segments + 4 of our challenges open (which
// bounds the replies waiting), or when it runs ahead of this peer's
// progress (docs/trust.md "Flood bound"). A pass credits the work replayed, a failure
// quarantines the prover as a failed check does. A commitment stating a
// replay fingerprint other than ours (settings.fingerprint) is not replayed:
// the prover is quarantined with cause replay_mismatch, logged with both
// fingerprints (no ledger entry: no accusation). Segment challenges have the
// deadlines, resends, misses, miss claims (naming the segment by its start
// step) and max_misses quarantine above, with two differences: a prover
// answers a request for a segment it dropped (after keep_segments newer
// commitments) with segment_unavailable, excused exactly when a commitment
// of its ending keep_segments segments after the one asked for has reached
// us by the deadline (a miss otherwise); a silence is excused only if the
// prover had committed keep_segments further segments when we asked
// (judged at the deadline, a silent prover would be excused whenever the
// deadline, which covers a start state's transfer, outlasts keep_segments
// segments), and a
// prover that stops committing is waited for without a time limit (a
// segment may span more than 8 deadlines), until it leaves. A prover whose
// commitment states a higher incarnation restarted: a new chain of its
// segments starts (segment_verifier.hpp, "Chains and restarts"), and the
// challenges of its earlier incarnation still open are counted at their
// deadline without waiting for it to move on (it cannot answer them, and
// an answer from the new incarnation is not taken); a restart is no way
// out of a challenge.
// Offloaded products: offload(worker, task) sends a matmul task to a worker,
// Freivalds-checks the answer, credits the worker and returns C; a wrong
// answer is evidence (the worker is quarantined) and the caller gets C
// computed locally instead, so a cheat never reaches the caller. A worker
// whose context names a backend (its peer trains on one, a GPU) computes
// the tasks it answers there (tensor/backend_matmul.hpp); otherwise with the
// host gemm. The checks of answers to our own tasks stay on the host.
#pragma once
#include <caf/fwd.hpp>
#include <functional>
#include <map>
#include <memory>

#include "actors/messages.hpp"
#include "actors/peer_names.hpp"
#include "actors/replay_fingerprint.hpp"
#include "actors/reputation.hpp"
#include "actors/segment_check_runner.hpp"
#include "actors/step_transcript.hpp"
#include "tensor/backend.hpp"

namespace murmur {

using vcommit_atom = caf::atom_constant<caf::atom("vcommit")>;
using offload_atom = caf::atom_constant<caf::atom("offload")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using segcommit_atom = caf::atom_constant<caf::atom("segcommit")>;

struct segment;
class segment_replay;
class boundary_store;

struct verifier_settings {
  double rate = 0.05;          // probability of challenging one step of one neighbour
  int rounds = 8;              // Freivalds rounds per product
  size_t keep_commits = 4096;  // commitments kept per prover (for late evidence)
  uint64_t seed = 0;
  size_t max_frame_bytes = 64u << 20;
  double matmul_cheat_eps = 0; // a worker that cheats on offloaded products (tests, attackers)
  compute_cheat matmul_cheat = compute_cheat::none;
  int offload_rounds = 0;      // Freivalds rounds on each offloaded answer; 0 = rounds
  double deadline_s = 1.0;     // a challenge unanswered this long is a miss
  size_t keep_steps = 8;       // the retention every prover promises (verify.keep_steps)
  uint32_t max_misses = 3;     // misses observed here that quarantine a prover
  uint32_t moved_on_commits = 3;  // commitments since a challenge before its silence counts
  bool silent = false;         // never answers challenges (attackers)...
  uint64_t silent_from = 1;    // ...of steps from this one on
  augment_settings augment;    // how provers augment their batches (rebuilding X)
  uint64_t segment_steps = 0;  // verify.scheme = segment: K steps per segment (0: per-step scheme)
  size_t keep_segments = 2;    // own closed segments kept for challenges (a boundary state each)
  // This process's (actors/replay_fingerprint.hpp): stated in our segment
  // commitments; a prover that states another is not replayed here but
  // quarantined (cause replay_mismatch), so it is never mixed unverified.
  replay_fingerprint fingerprint{};
  // This peer's incarnation when it started (membership's; 0 in the
  // simulator), stated in our segment commitments: a restart states a
  // higher one, which starts a new chain at our verifiers.
  uint64_t incarnation = 0;
  bool forge_segment_evidence = false;  // relays each honest segment reply it checked, tampered (attackers)
  // A segment challenge's deadline: deadline_s for records of
  // segment_records_cap bytes or more (the bound verify_timing assumed),
  // down to segment_deadline_min_s for none, in proportion to the records'
  // size the prover announced in its commitment (a prover that overstates it
  // only gets up to deadline_s). 0: deadline_s for every segment challenge.
  double segment_deadline_min_s = 0;
  double segment_records_cap = 0;
};

// Per-peer credit: work verified correct, and evidence against it.
struct credit_entry {
  uint64_t checks_passed = 0, checks_failed = 0;
  double verified_flops = 0;
};

struct verifier_stats {
  uint64_t commits_sent = 0, commits_received = 0, challenges = 0, replies_checked = 0, passed = 0, failed = 0;
  uint64_t requests_answered = 0, requests_unavailable = 0, frames_rejected = 0;
  uint64_t evidence_sent = 0, evidence_received = 0, evidence_confirmed = 0, evidence_rejected = 0,
           evidence_unverifiable = 0;
  uint64_t offloads = 0, offloads_verified = 0, offloads_rejected = 0, tasks_served = 0;
  // Deadlines: our challenges (re-checks included) answered and checked in
  // time, unanswered by the deadline, answered late (also missed), excused
  // (the prover committed keep_steps steps since), dropped (prover left or
  // quarantined); requests we left unanswered on purpose (silent attackers).
  uint64_t challenges_completed = 0, challenges_missed = 0, challenges_late = 0, challenges_expired = 0,
           challenges_abandoned = 0, requests_withheld = 0;
  // Requests sent a second time at half the deadline; answers to a request
  // already settled (the second of two, or a replay), ignored.
  uint64_t requests_resent = 0, replies_duplicate = 0;
  // Miss claims: sent (one per receiver), received, confirmed by our own
  // re-check, rejected (the prover answered it correctly), ignored (prover
  // left, or no commitment or retention to re-check against).
  uint64_t misses_announced = 0, miss_claims_received = 0, misses_confirmed = 0, misses_rejected = 0,
           misses_ignored = 0;
  double max_answer_s = 0;                  // slowest in-time answer seen (deadline head-room)
  std::map<uint32_t, uint32_t> misses_by_prover;  // misses this peer observed itself
  double check_seconds = 0;                 // wall time spent checking (replies, evidence, offloads)
  std::map<uint32_t, credit_entry> ledger;  // by peer
  // (prover, prover step) of each step this peer caught cheating itself
  // (segments: the first step whose replayed state differs, else the
  // segment's first step)
  std::vector<std::pair<uint32_t, uint64_t>> caught;
  // Segment scheme: commitments sent and received, challenges sent,
  // replays passed and failed (also counted in passed/failed), requests
  // answered and not (segment no longer kept, or its reply over
  // max_frame_bytes), the largest reply sent, wall time in replays (on the
  // replay actor), relayed evidence not replayed because the replay actor
  // had as many checks out as this actor lets evidence have (a reply to our
  // own challenge is never dropped: it waits).
  uint64_t segment_commits_sent = 0, segment_commits_received = 0, segments_challenged = 0, segments_passed = 0,
           segments_failed = 0, segment_requests_answered = 0, segment_requests_unavailable = 0,
           segment_reply_bytes_max = 0, segment_checks_dropped = 0;
  // Replies to our own challenges that waited for a slot on the replay
  // actor (never dropped), and the most that waited at once.
  uint64_t segment_checks_waited = 0, segment_checks_waiting_max = 0;
  // Flood bound: commitments refused (their prover had as many of our
  // challenges open as it may, or its commitment ran ahead of any honest
  // pace, or did not span one segment), not held nor challenged.
  uint64_t segment_commits_refused = 0;
  // Copies of a commitment already held: each is sent again with the
  // prover's next one (verifier_actor.cpp), so this counts the repeats that
  // found their original; the rest stood in for a lost frame.
  uint64_t segment_commits_repeated = 0;
  // "Unavailable" answers to our segment challenges (the prover dropped
  // the segment; excused ones are also counted in challenges_expired).
  uint64_t segment_unavailable_answers = 0;
  // Restarts: new chains opened by a neighbour's higher incarnation, and
  // frames refused as an earlier incarnation's (late commitments) or as a
  // later one's answer to an earlier one's challenge.
  uint64_t segment_chains_restarted = 0, segment_frames_stale = 0;
  // Gaps in a neighbour's chain (segment_verifier.hpp, "Gaps"): one missing
  // segment challenged as an implied commitment, and longer gaps, each
  // counted as a miss (in misses_by_prover).
  uint64_t segment_gaps_implied = 0, segment_gaps = 0;
  double segment_replay_seconds = 0;
};

// This peer's evidence about each peer it verified (ledger and the misses
// it observed itself), as a reputation (actors/reputation.hpp).
reputation reputation_of(const verifier_stats& s, const reputation_weights& w = {});

// An offloaded product: C = A B, A m x k, B k x n, row-major.
struct matmul_job {
  uint32_t m = 0, n = 0, k = 0;
  std::vector<float> a, b;
};
struct matmul_outcome {
  bool verified = false;  // the worker's answer passed; false: computed locally
  uint32_t worker = 0;
  std::vector<float> c;
};

using verifier_actor = caf::typed_actor<
    caf::reacts_to<vcommit_atom, wire_frame>,
    caf::reacts_to<segcommit_atom, std::shared_ptr<const segment>>,
    caf::reacts_to<deliver_atom, uint32_t /*from*/, wire_frame>,
    caf::reacts_to<nbrs_atom, std::vector<uint32_t>, std::vector<uint64_t>>,
    caf::reacts_to<deadline_atom>,
    caf::replies_to<offload_atom, uint32_t /*worker*/, std::shared_ptr<const matmul_job>>::with<matmul_outcome>,
    caf::replies_to<stats_atom>::with<verifier_stats>>;

struct verifier_context {
  uint32_t self = 0;
  std::vector<uint32_t> neighbours;                 // who gets our commitments, whom we check
  std::function<std::vector<uint32_t>(uint32_t)> neighbours_of;  // where evidence about a prover goes
  std::function<std::vector<int64_t>(uint32_t)> shard_of;        // a peer's sample indices
  std::shared_ptr<const Dataset> data;
  std::shared_ptr<step_transcript_log> log;         // our own steps (null: we commit nothing)
  std::vector<committed_layer> layers;              // of the shared model
  std::function<double()> now_s;                    // the clock deadlines run on (null: steady clock)
  peer_names names;                                 // how logs name peers
  // Where this peer runs its Freivalds checks (transcripts and offloaded
  // products) and computes the matmul tasks it answers: its trainer's device
  // on a stream of its own (compute_backend::another_stream), used by this
  // actor only. Null: the host.
  std::shared_ptr<compute_backend> backend = nullptr;
  // Segment scheme: a neighbour's honest replay (its settings, shard and
  // neighbours), and the FLOPs of one training step (credit for a replay).
  std::function<std::unique_ptr<segment_replay>(uint32_t)> replay_of = nullptr;
  double step_flops = 0;
  // Where the segment checks run (segment_check_runner.hpp); null: on this
  // verifier's replay actor.
  std::shared_ptr<segment_check_runner> check_runner = nullptr;
  // Where the segment checks keep a reply's start state while they replay
  // it (segment_check.hpp); null: in memory.
  std::shared_ptr<boundary_store> replay_spill = nullptr;
};

verifier_actor spawn_verifier(caf::actor_system& sys, verifier_context ctx, verifier_settings s,
                              transport_actor transport, gossip_actor gossip);

}  // namespace murmur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::verifier_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::matmul_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const murmur::matmul_job>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const murmur::segment>)
