// segment_replay: the verifier's side of a segment commitment
// (actors/segment_log.hpp). From a segment's start boundary and its records
// it re-runs the segment's steps on a fresh, honest trainer of the prover's
// settings and a gossip state of the prover's gossip settings, applying the
// recorded gossip calls (and neighbour lists) in their recorded order. On
// the same build and kernel path (run/replay_fingerprint.hpp) an honest
// prover's segment replays bit for bit: the end state's
// digest equals the committed next boundary's, and each step's regenerated
// transcript (step_transcript_log's tensors) hashes to what the prover
// committed for that step under the per-step scheme.
//
// A compute cheat anywhere in the segment makes the end digest differ;
// first_differing_step() then bisects the per-step state digests (the
// prover's claims against the replay's) to the first step whose state
// differs, whose honest transcript the replay regenerates.
//
// Throws std::runtime_error naming the step when the records cannot be
// replayed (a recorded frame is rejected, steps out of order, a start
// boundary of another step), std::invalid_argument when the boundary does
// not fit these settings (trainer::restore's message).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "actors/segment_log.hpp"
#include "actors/step_transcript.hpp"
#include "actors/trainer.hpp"

namespace murmur {

class segment_replay {
 public:
  // The prover's train settings, model, shard and gossip settings (every
  // peer knows them), without its attack: the replay is honest.
  // transcripts: record each replayed step's transcript (as the prover's
  // step_transcript_log does), kept for the last step replayed.
  segment_replay(const train_settings& ts, const std::string& model_spec, std::shared_ptr<const Dataset> train,
                 std::vector<int64_t> shard, std::shared_ptr<const Dataset> test, uint32_t prover,
                 std::vector<uint32_t> neighbours, const gossip_settings& gs, bool transcripts);
  ~segment_replay();

  struct options {
    bool step_digests = false;  // hash the whole state after every step
    uint64_t stop_after = 0;    // stop after this step (0: the segment's end)
  };
  struct result {
    uint64_t first_step = 0, last_step = 0;      // the steps replayed
    digest end{};                                 // the state after last_step
    std::vector<digest> step_digests;             // after each step, when asked
    std::vector<transcript_commit> transcripts;   // each step's, with transcripts on
  };
  result run(const segment_boundary& start, const segment_records& records, const options& o);
  // run in two halves: restore sets the trainer and gossip state from the
  // start boundary (after which the caller may let the boundary go), and
  // replay runs the records from it (once per restore). restore is
  // restore_trainer then restore_gossip: a caller may let the boundary's
  // checkpoint go in between (the gossip state is made only then).
  void restore(const segment_boundary& start);
  void restore_trainer(const checkpoint& start);
  void restore_gossip(const gossip_state::replay_state& start);
  result replay(const segment_records& records, const options& o);
  // A log's segment, its start boundary and records in memory or (a log
  // with a boundary_store) read back from the store as a segment_reply
  // carries them (boundary_store_error when that fails).
  result run(const segment& s, const options& o);

  // With transcripts on: the last replayed step's tensors (reply()).
  const step_transcript_log& transcript_log() const;

 private:
  std::unique_ptr<trainer> trainer_;
  std::unique_ptr<gossip_state> gossip_;
  std::shared_ptr<step_transcript_log> log_;
  tree_digest hash_;
  checkpoint scratch_trainer_;
  gossip_state::replay_state scratch_gossip_;
  std::vector<uint32_t> ids_;            // a recorded neighbour list, decoded
  std::vector<uint64_t> incarnations_;
  uint64_t restored_step_ = 0;  // the start boundary's step, from restore
  bool gossip_restored_ = false;  // both halves restored since the last replay
  uint32_t prover_ = 0;           // the gossip state's making, deferred
  std::vector<uint32_t> neighbours_;
  gossip_settings gs_;
  digest state_digest();
};

// The first step (first_step + i) whose state digest differs between a
// prover's claims and a replay's, by bisection (log2 of the length
// comparisons: once two runs' states differ they stay different); 0 when
// they agree throughout. The spans must have the same length.
uint64_t first_differing_step(uint64_t first_step, std::span<const digest> claimed, std::span<const digest> replayed);

}  // namespace murmur
