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
// Offloaded products: offload(worker, task) sends a matmul task to a worker,
// Freivalds-checks the answer, credits the worker and returns C; a wrong
// answer is evidence (the worker is quarantined) and the caller gets C
// computed locally instead, so a cheat never reaches the caller.
#pragma once
#include <caf/fwd.hpp>
#include <functional>
#include <map>
#include <memory>

#include "actors/messages.hpp"
#include "actors/step_transcript.hpp"

namespace murmur {

using vcommit_atom = caf::atom_constant<caf::atom("vcommit")>;
using offload_atom = caf::atom_constant<caf::atom("offload")>;

struct verifier_settings {
  double rate = 0.05;          // probability of challenging one step of one neighbour
  int rounds = 8;              // Freivalds rounds per product
  size_t keep_commits = 4096;  // commitments kept per prover (for late evidence)
  uint64_t seed = 0;
  size_t max_frame_bytes = 64u << 20;
  double matmul_cheat_eps = 0; // a worker that cheats on offloaded products (tests, attackers)
  compute_cheat matmul_cheat = compute_cheat::none;
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
  double check_seconds = 0;                 // wall time spent checking (replies, evidence, offloads)
  std::map<uint32_t, credit_entry> ledger;  // by peer
  // (prover, prover step) of each step this peer caught cheating itself
  std::vector<std::pair<uint32_t, uint64_t>> caught;
};

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
    caf::reacts_to<deliver_atom, uint32_t /*from*/, wire_frame>,
    caf::reacts_to<nbrs_atom, std::vector<uint32_t>, std::vector<uint64_t>>,
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
};

verifier_actor spawn_verifier(caf::actor_system& sys, verifier_context ctx, verifier_settings s,
                              transport_actor transport, gossip_actor gossip);

}  // namespace murmur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::verifier_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::matmul_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const murmur::matmul_job>)
