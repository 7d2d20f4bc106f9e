// segment_check: the expensive part of checking one segment reply
// (docs/trust.md "Amortised commitments"), as a job that runs apart from
// the bookkeeping (segment_verifier.hpp decides what to check and makes the
// job; actors/segment_replay_actor.hpp runs it off the verifier actor).
//
// A job holds the commitment the verifier held when the reply came and the
// reply itself, moved in. segment_checker::run holds the reply to the
// commitment: the start state must hash to the committed start boundary,
// the records to the committed records digest; then the segment is replayed
// from that state with those records (segment_replay) and the end state
// must hash to the committed end boundary. Any of these failing, records
// committed to but inconsistent (segment_records_inconsistency), or records
// that do not replay, is a failed segment. For the report, a failure names
// the first step whose state differs, bisecting the prover's per-step
// digests against a second replay's (0 where the prover sent none that
// fit). A relayed reply (evidence) that does not hash to the commitment is
// a mismatch instead: it says nothing about the prover. An implied
// commitment (one the prover never sent) binds no records: their digest is
// not compared, the rest is checked alike.
//
// run touches nothing but the checker and the job: it may run on any actor.
// Given a spill store (boundary_store.hpp), the checker keeps a job's start
// state there rather than in memory while it replays: once the replay has
// restored it, the start state is written to the store and let go (a
// boundary state's worth of memory less through the replay, which a verifier
// holds besides its own training), and read back (checked) only where it is
// needed again: for the bisection of a failed segment and in a job handed
// back (give_back), so a job handed back is as it came. A start state that cannot
// be written stays in memory; one that cannot be read back leaves a failed
// verdict without its first bad step and the job not handed back (never).
// The verdicts are those of a checker without a store.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "actors/boundary_store.hpp"
#include "actors/segment_messages.hpp"
#include "actors/segment_replay.hpp"
#include "tensor/blake3.hpp"

namespace murmur {

struct segment_verdict {
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

struct segment_check {
  segment_commit_msg commit;  // the commitment held when the reply came
  segment_reply_msg reply;
  bool relayed = false;       // evidence another verifier relayed, not our own challenge's reply
  bool implied = false;       // commit is implied (segment_verifier.hpp, "Gaps"): records not bound
  // Whether whoever runs the job hands it back with the verdict (never: it
  // is dropped as soon as the verdict is known). A verifier that relays a
  // failed reply as evidence re-encodes it from the job it gets back
  // (when_failed), rather than holding the reply's frame through the
  // replay: a boundary state's worth of memory per check.
  enum give_back_t : uint8_t { never, when_failed, always } give_back = never;
};

class segment_checker {
 public:
  // The prover's replay (its settings, shard, neighbours; honest), made for
  // each check and dropped after it (a trainer and a gossip state per
  // neighbour held between checks would cost more memory than the
  // construction costs time).
  using replay_factory = std::function<std::unique_ptr<segment_replay>(uint32_t prover)>;
  segment_checker(replay_factory replay_of, double step_flops, std::shared_ptr<boundary_store> spill = nullptr);

  // With a spill store, the job's start state is in memory again on return
  // only where the job is to be handed back (a failed verdict, or
  // give_back = always); otherwise it may be gone (the job is dropped).
  segment_verdict run(segment_check& job);

 private:
  std::shared_ptr<const boundary_store::entry> spill(const segment_boundary& start, const digest& committed);
  replay_factory replay_of_;
  double step_flops_;
  std::shared_ptr<boundary_store> spill_;
  byte_pieces pieces_;   // a start state's bytes, referring to its vectors, for the store
  blake3_builder hash_;  // segment_records_digest
};

}  // namespace murmur
