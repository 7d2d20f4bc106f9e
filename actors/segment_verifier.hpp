// segment_verifier: both sides of segment verification (verify.scheme =
// segment, docs/trust.md "Amortised commitments"), without the transport:
// the verifier actor hands it decoded frames and acts on what it returns.
//
// As a prover it keeps its last closed segments (segment_log's, shared) and
// answers a challenge of one with its start boundary, records and per-step
// digests (segment_messages.hpp). Kept segments share the log's storage: a
// boundary in the log's boundary_store costs a slot of its file, not memory.
// As a verifier, for each segment commitment of a neighbour it draws a
// challenge with probability q = segment_challenge_probability(rate, L, K)
// (drawn after the commitment arrived). A reply (or relayed evidence) that
// fits a held commitment becomes a segment_check job (segment_check.hpp:
// the commitment and the reply, moved in), which the caller runs wherever
// it likes (actors/segment_replay_actor.hpp, off the verifier actor): the
// replay takes seconds, and this class keeps no state the job touches.
// In the simulation only cheaters record per-step digests (they cost a
// boundary hash a step); an honest prover's segment replays and needs none,
// and a real one accused would recompute them by replaying itself.
//
// Chains and restarts. A prover's commitments form a chain: each segment
// starts where its previous one ended (a commitment whose start digest is
// not the previous one's end fails). A chain belongs to one incarnation of
// the prover (the commitment states it: membership's incarnation when the
// prover started, wall-clock ms at start on a LAN). A commitment stating a
// higher incarnation than the chain's is a restarted prover (murmur peer
// --resume: its state from its own checkpoint, its earlier segments gone):
// it starts a new chain wherever it starts, even before the last committed
// end, and only such a commitment may go back. The earlier chain's
// commitments are dropped (a new segment may start at the same step) and
// its challenges still open are returned to the caller, which counts them
// as it would have (a miss at the deadline, unless excused by retention):
// a restart is no way out of a challenge, and an answer from the new
// incarnation cannot be one. A commitment from a lower incarnation than the
// chain's (a late frame of an earlier life) is refused and not held; one
// of the same incarnation that starts before the chain's last end fails
// (only a restart may go back).
//
// Gaps (issue 14). A commitment of the same incarnation that starts after
// the chain's last end leaves segments uncommitted here (a lost frame, or a
// prover withholding the commitment of a segment it cheated in). One
// missing segment, the previous commitment held: its boundaries are known
// (the previous end, this one's start), so an implied commitment of it is
// held (records not bound: its records_bytes is 0) and challenged always,
// whatever q: a withheld commitment must not lower the catch rate. Its
// reply is checked as any other but for the records digest. Relayed
// evidence is never held to an implied commitment (a relayer could forge
// the records). A longer gap cannot be pinned (its intermediate boundaries
// are unknown): it is reported to the caller, which counts it as a miss.
// Segments the caller refused (passed_over) are not the prover's gap.
//
// Assumption: prover and verifier compute bit for bit alike, so an honest
// segment replays exactly: one process in the simulator; on a LAN the
// verifier actor replays only provers that state its own replay
// fingerprint (actors/replay_fingerprint.hpp) and refuses the others.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/segment_messages.hpp"
#include "actors/segment_check.hpp"
#include "tensor/rng.hpp"

namespace murmur {

// Per verifier and segment, so that a cheat in any one step is caught with
// at least today's per-step probability p = 1 - (1 - rate/L)^d by the d
// verifiers together: q = 1 - (1 - rate/L)^K. Then for m >= 1 cheating
// steps in a segment, 1 - (1-q)^d = 1 - (1 - rate/L)^(dK) >=
// 1 - (1 - rate/L)^(dm) = 1 - (1-p)^m, today's chance of catching at least
// one of them (one challenge of the segment catches all of them).
double segment_challenge_probability(double rate, size_t layers, uint64_t steps_per_segment);

class segment_verifier {
 public:
  segment_verifier(uint32_t self, double q, size_t keep_segments);
  ~segment_verifier();

  // Prover: keeps s (the oldest beyond keep_segments dropped) and returns
  // its commitment.
  segment_commit_msg commit(std::shared_ptr<const segment> s);
  // Prover: the reply to a challenge; false when the segment is not kept.
  // A segment whose start boundary is in a boundary_store is read back from
  // it (boundary_store_error when that fails: no reply is made).
  bool answer(const segment_request_msg& rq, std::vector<std::byte>& out) const;

  using verdict = segment_verdict;
  // What on_commit made of a commitment (see "Chains and restarts" above).
  struct commit_outcome {
    // held: it continues its prover's chain (or is the first heard);
    // new_chain: a higher incarnation's first, held as a new chain's start;
    // stale: a lower incarnation's, not held; broken: the chain breaks (a
    // failed verdict, not held).
    enum kind_t : uint8_t { held, new_chain, stale, broken } kind = held;
    std::optional<segment_request_msg> challenge;  // held, new_chain: drawn (with `nonce`, or `nonce` + 1
                                                   // after an implied one)
    // held: the implied commitment of the one segment missing before this
    // one, always challenged (with `nonce`).
    std::optional<segment_request_msg> implied_challenge;
    // held: steps [gap_from, gap_to) have more than one segment uncommitted
    // here, or one whose previous commitment is not held (gap_to 0: none).
    uint64_t gap_from = 0, gap_to = 0;
    verdict broken_chain;                          // broken: failed, saying where
    std::vector<uint64_t> retired;                 // new_chain: the earlier chain's open challenges (nonces)
    uint64_t previous_incarnation = 0;             // new_chain: the earlier chain's
  };
  // Verifier: holds the commitment; a request (with `nonce`, the caller's:
  // its deadlines are the caller's; nonce + 1 is used too when a gap is
  // implied) to send when challenged.
  commit_outcome on_commit(uint32_t from, const segment_commit_msg& c, Rng& rng, uint64_t nonce);
  // Verifier: a commitment the caller refused for its own load: not held,
  // and a gap it falls in is no gap of the prover's (neither implied nor
  // reported): the rest of that gap may be lost frames behind it.
  void passed_over(uint32_t from, const segment_commit_msg& c);
  // A commitment held, with how many of its prover's had arrived when it
  // did (this one included), and whether this verifier challenged it.
  // implied: not received but inferred from its neighbours in the chain
  // (see "Gaps"): its records are not bound.
  struct held_commit {
    segment_commit_msg c;
    uint64_t seq = 0;
    bool challenged = false;
    bool implied = false;
  };
  const held_commit* held(uint32_t prover, uint64_t start_step) const;
  // Commitments received from the prover so far (0: none).
  uint64_t commits_seen(uint32_t prover) const;
  // Verifier: challenges a held segment once more (a re-check of another
  // verifier's miss claim); nullopt when it is not held.
  std::optional<segment_request_msg> challenge(uint32_t prover, uint64_t start_step, uint64_t nonce);
  // Verifier: the check of the reply to one of our challenges, r moved in
  // (nullopt: not one we asked for, or no commitment held for it; r is
  // left as it was).
  std::optional<segment_check> on_reply(uint32_t from, segment_reply_msg&& r);
  // Verifier: the re-check of a reply another verifier relayed as
  // evidence, r moved in: it must hash to the commitment THIS verifier
  // holds (verdict mismatch otherwise; nullopt when it holds none or only
  // an implied one), and
  // this verifier's own replay of it must fail. A relayer's word counts
  // for nothing.
  std::optional<segment_check> on_evidence(segment_reply_msg&& r);
  // Verifier: stops waiting for the reply to this challenge.
  void withdraw(uint64_t nonce);
  // Verifier: no longer checks this prover (quarantined): its commitments,
  // chain and open challenges are dropped.
  void forget(uint32_t prover);

 private:
  uint32_t self_;
  double q_;
  size_t keep_;
  std::deque<std::shared_ptr<const segment>> kept_;
  std::map<uint32_t, std::map<uint64_t, held_commit>> commits_;  // by prover, by start step
  std::map<uint32_t, uint64_t> seen_;                           // by prover, every incarnation's
  struct chain {
    uint64_t incarnation = 0;
    uint64_t last_end = 0;  // the latest end step held in it
    uint64_t passed_over_end = 0;  // the latest end step passed over (refused by the caller)
  };
  std::map<uint32_t, chain> chains_;  // by prover
  struct asked {
    uint32_t prover;
    uint64_t start_step;
  };
  std::map<uint64_t, asked> pending_;  // by nonce
};

}  // namespace murmur
