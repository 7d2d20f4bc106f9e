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
// (drawn after the commitment arrived). A reply is held to the commitment:
// the start state must hash to the committed start boundary, the records to
// the committed records digest; then the segment is replayed from that
// state with those records (segment_replay) and the end state must hash to
// the committed end boundary. Any of these failing, or records that do not
// replay, is a failed segment: evidence. For the report, a failure names
// the first step whose state differs, bisecting the prover's per-step
// digests against a second replay's (0 where the prover sent none that
// fit). In the simulation only cheaters record per-step digests (they cost
// a boundary hash a step); an honest prover's segment replays and needs
// none, and a real one accused would recompute them by replaying itself.
//
// Assumption: prover and verifier compute bit for bit alike, so an honest
// segment replays exactly: one process in the simulator; on a LAN the
// verifier actor replays only provers that state its own replay
// fingerprint (actors/replay_fingerprint.hpp) and refuses the others.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "actors/segment_messages.hpp"
#include "actors/segment_replay.hpp"
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
  // The prover's replay (its settings, shard, neighbours; honest), made for
  // each challenge and dropped after it (a trainer and a gossip state per
  // neighbour held between challenges would cost more memory than the
  // construction costs time).
  using replay_factory = std::function<std::unique_ptr<segment_replay>(uint32_t prover)>;
  segment_verifier(uint32_t self, double q, size_t keep_segments, replay_factory replay_of, double step_flops);
  ~segment_verifier();

  // Prover: keeps s (the oldest beyond keep_segments dropped) and returns
  // its commitment.
  segment_commit_msg commit(std::shared_ptr<const segment> s);
  // Prover: the reply to a challenge; false when the segment is not kept.
  // A segment whose start boundary is in a boundary_store is read back from
  // it (boundary_store_error when that fails: no reply is made).
  bool answer(const segment_request_msg& rq, std::vector<std::byte>& out) const;

  struct verdict {
    // mismatch: relayed evidence whose start state or records do not hash
    // to the commitment this verifier holds (forged, or the prover
    // equivocated): nothing is known about the prover.
    enum kind_t : uint8_t { none, passed, failed, mismatch } kind = none;
    uint32_t prover = 0;
    uint64_t start_step = 0, end_step = 0;
    uint64_t first_bad_step = 0;  // failed: the first step whose state differs (0: unknown)
    double flops = 0;             // passed: the work replayed
    std::string why;              // failed: what did not hold
  };
  // Verifier: holds the commitment; a request (with `nonce`, the caller's:
  // its deadlines are the caller's) to send when challenged. A commitment
  // whose start is not the previous one's end fails (verdict).
  std::optional<segment_request_msg> on_commit(uint32_t from, const segment_commit_msg& c, Rng& rng, uint64_t nonce,
                                               verdict& broken_chain);
  // A commitment held, with how many of its prover's had arrived when it
  // did (this one included), and whether this verifier challenged it.
  struct held_commit {
    segment_commit_msg c;
    uint64_t seq = 0;
    bool challenged = false;
  };
  const held_commit* held(uint32_t prover, uint64_t start_step) const;
  // Commitments received from the prover so far (0: none).
  uint64_t commits_seen(uint32_t prover) const;
  // Verifier: challenges a held segment once more (a re-check of another
  // verifier's miss claim); nullopt when it is not held.
  std::optional<segment_request_msg> challenge(uint32_t prover, uint64_t start_step, uint64_t nonce);
  // Verifier: checks the reply to one of our challenges (kind none: not
  // one we asked for, or no commitment held for it).
  verdict on_reply(uint32_t from, const segment_reply_msg& r);
  // Verifier: re-checks a reply another verifier relayed as evidence: it
  // must hash to the commitment THIS verifier holds (kind mismatch
  // otherwise; none when it holds none), and this verifier's own replay of
  // it must fail. A relayer's word counts for nothing.
  verdict on_evidence(const segment_reply_msg& r);
  // Verifier: stops waiting for the reply to this challenge.
  void withdraw(uint64_t nonce);
  // Verifier: no longer checks this prover (quarantined or gone).
  void forget(uint32_t prover);

 private:
  verdict check(const segment_commit_msg& c, const segment_reply_msg& r, bool relayed);
  uint32_t self_;
  double q_;
  size_t keep_;
  replay_factory replay_of_;
  double step_flops_;
  std::deque<std::shared_ptr<const segment>> kept_;
  std::map<uint32_t, std::map<uint64_t, held_commit>> commits_;  // by prover, by start step
  std::map<uint32_t, uint64_t> seen_;                           // by prover
  struct asked {
    uint32_t prover;
    uint64_t start_step;
  };
  std::map<uint64_t, asked> pending_;  // by nonce
  digest_builder hash_;
};

}  // namespace murmur
