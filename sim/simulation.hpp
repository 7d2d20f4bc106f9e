// run_simulation: many peers in one process on a virtual clock.
// All actors run under CAF's deterministic test scheduler; the driver pops
// events in (time, kind, seq) order: a peer's cycle (mix, one step, publish;
// it costs step time x the peer's speed factor) or a frame's delivery. Same
// config and seed, same metrics.jsonl, byte for byte. Verification's
// segment checks may run on a second thread (sim/check_worker.hpp); their
// verdicts take effect at virtual times fixed in advance, so that holds.
// Writes into out_dir: config.toml, metrics.jsonl, summary.json, timing.json,
// curve.tsv (mean accuracy per evaluation, for plots) and model.safetensors
// (the final model, sim_summary::final_model; also after an interruption).
//
// Memory per peer, in parameter-sized buffers (P floats), for a peer that
// trains on the host with SGD and momentum (the default configs):
//   1  its parameters x (the model; gossip mixes into them),
//   1  the momentum (Adam: 2, first and second moments),
//   1  x_hat_self, its public estimate (actors/gossip_state.hpp),
//   d  x_hat_j, its estimate of each of its d neighbours (ring: d = 2;
//      the default gossip.robust = clipped_gossip weighs each by its own
//      distance ||x_hat_j - x_hat_self||, so each is kept; only robust =
//      none could keep the one sum of them instead, not done),
// so 3 + d (ring: 5), and the segment log's received frames (verification
// on). Not per peer: the gradients and the activations. Peers take turns
// on the one simulation thread and a step is one message, whole (a
// gradient is written by backward and read by the optimizer step right
// after; a layer's output and input gradient live from its forward to its
// backward), so all host peers share one gradient buffer
// (Sequential::share_gradients) and one set of per-step buffers: the
// batch, the layers' outputs and input gradients (trainer::
// share_activations; about 0.6 MB for the MLP at batch 64). Not with
// offload, whose steps wait for other actors. The dataset, the test
// set and the shards' index lists are shared read-only; segment boundaries
// go to an unlinked file (actors/boundary_store.hpp), not memory.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/link_budget.hpp"
#include "actors/reputation.hpp"
#include "run/final_model.hpp"
#include "run/run_config.hpp"
#include "run/run_progress.hpp"
#include "run/verification_choice.hpp"
#include "tensor/backend.hpp"

namespace murmur {

// Step transcripts and their checks, over all peers (verify.rate > 0).
struct verification_summary {
  bool enabled = false;
  uint64_t commits = 0, challenges = 0, checks_passed = 0, checks_failed = 0;
  uint64_t evidence_sent = 0, evidence_confirmed = 0, evidence_rejected = 0, evidence_unverifiable = 0;
  uint64_t frames_rejected = 0;
  double verified_gflop = 0;
  // Deadlines (verifier_actor.hpp): challenges = completed + missed +
  // expired + abandoned + in flight; late replies are also missed.
  uint64_t challenges_completed = 0, challenges_missed = 0, challenges_late = 0, challenges_expired = 0,
           challenges_abandoned = 0;
  uint64_t misses_announced = 0, miss_claims_received = 0, misses_confirmed = 0, misses_rejected = 0,
           misses_ignored = 0;
  double deadline_s = 0, max_answer_s = 0;  // the deadline, and the slowest in-time answer
  uint64_t keep_steps = 0;
  double transcript_mb = 0;                 // one peer's retained transcripts
  uint64_t segment_steps = 0;               // verify.scheme = segment: K (then keep_steps and transcript_mb do not apply)
  double boundary_store_mb = 0;             // segment: the boundary store file of one prover, on disk (estimate;
                                            // in memory a boundary costs nothing between boundaries)
  // verify.scheme = segment: commitments sent, challenges, replays passed
  // and failed (also in checks_*), wall time replaying.
  uint64_t segment_commits = 0, segments_challenged = 0, segments_passed = 0, segments_failed = 0;
  double segment_replay_seconds = 0;
  double segment_check_wait_seconds = 0;  // the simulation blocked on its check thread (wall)
  // Own replies that waited for a replay slot, relayed evidence dropped,
  // commitments refused by the flood bound, "unavailable" answers received.
  uint64_t segment_checks_waited = 0, segment_checks_dropped = 0, segment_commits_refused = 0,
           segment_unavailable_answers = 0;
  std::map<uint32_t, uint64_t> misses_by_prover;  // misses observed, summed over verifiers
  // Wall time: steps (without commitments), committing, checking.
  double step_seconds = 0, commit_seconds = 0, check_seconds = 0;
  // Per peer caught cheating: the first step at which a verifier caught it.
  std::map<uint32_t, uint64_t> first_caught_step;
  // Every verifier's evidence about every peer, combined (combine_testimony):
  // summary.json's "rewards" (docs/trust.md, "Reputation").
  reputation rewards;
};

// How well the honest peers found the attackers. An attacker is detected
// once every honest peer that had it as a neighbour has quarantined it (at
// the latest of their steps); an honest peer is a false positive if any
// honest peer quarantined it. Ratios are NaN when undefined (no attackers
// and nothing flagged). Steps to quarantine count from attack.start_step.
struct detection_summary {
  uint64_t tp = 0, fp = 0, fn = 0;
  double precision = 0, recall = 0, f1 = 0;
  uint64_t honest_quarantined = 0;  // quarantines of honest peers by honest peers
  double steps_to_quarantine_median = 0, steps_to_quarantine_p95 = 0;  // NaN if none detected
};

// A pipeline run (pipeline.stages > 1): schedule efficiency, activation
// memory, and the take-over timeline when a stage died.
struct stage_summary {
  uint16_t replica = 0, stage = 0;
  uint32_t node = 0;                 // the node hosting it at the end
  uint32_t machine = 0;              // that node's machine (pipeline.placement)
  size_t layer_begin = 0, layer_end = 0;
  double busy_s = 0;                 // modelled compute
  size_t peak_in_flight = 0;         // micro-batches between F and B
  double peak_activation_mb = 0;     // peak_in_flight x activations of one micro-batch
  uint64_t steps = 0, rejected = 0, stale = 0;
  uint64_t gossip_bytes_sent = 0;    // hybrid runs: this stage's gossip with the other replicas
};
struct takeover_summary {
  bool happened = false;
  uint16_t replica = 0, stage = 0;
  uint32_t new_node = 0;
  uint64_t crash_step = 0, resume_step = 0;
  double crash_s = -1, takeover_s = -1, resumed_s = -1, caught_up_s = -1;  // virtual times
  double detection_s = 0, time_to_resume_s = 0, time_to_catch_up_s = 0;
  uint64_t lost_steps = 0;           // steps computed again (checkpoint to crash)
  uint64_t lost_microbatches = 0;    // in flight at the crash
};
struct pipeline_summary {
  bool enabled = false;
  uint32_t stages = 1, replicas = 1, microbatches = 1, spares = 0;
  std::string schedule;
  double makespan_s = 0, efficiency = 0, bound = 0, samples_per_s = 0;
  std::string placement;             // pipeline.placement
  // One batch: predicted by run/stage_placement.hpp for this layout and for
  // stage s on node s with the index cut (pipeline.split or balanced), and
  // simulated (makespan / steps).
  double predicted_batch_s = 0, predicted_index_batch_s = 0, simulated_batch_s = 0;
  std::vector<stage_summary> per_stage;
  takeover_summary takeover;
  std::vector<std::string> errors;   // pipeline_event::error texts
};

// Offloaded products (offload.*; docs/trust.md, Offload): per offloading
// peer, what its helper computed and what the checks found, and when the
// peer finished its steps (virtual time).
struct offload_peer_summary {
  uint32_t peer = 0;
  uint64_t steps = 0;
  double finished_s = 0, steps_per_s = 0;
  uint64_t offloaded = 0, verified = 0, rejected = 0, local = 0;
  double verified_gflop = 0, local_gflop = 0, check_gflop = 0, wire_s = 0, helper_s = 0;
  double helper_credit_gflop = 0;  // this peer's ledger: the helper's verified work
  bool helper_trusted = true;      // false once an answer failed (it computes locally since)
};
struct offload_summary {
  bool enabled = false;
  uint32_t helper = 0;
  uint64_t tasks_served = 0;       // by the helper
  std::vector<offload_peer_summary> peers;
};

// A peer's links (sim.link_*; run/link_model.hpp) and the bytes they
// carried in this process (a resumed run counts from its resume).
struct link_summary {
  std::string cls;  // class, "file", or "" (uniform)
  double up_mbps = 0, down_mbps = 0, access_ms = 0;  // 0 Mbit/s = unlimited
  uint64_t bytes_sent = 0, bytes_received = 0;
};

// Per traffic class (protocols/traffic_class.hpp), the frames delivered in
// this process and their time from send to arrival (virtual s).
struct traffic_delay {
  std::string cls;
  uint64_t frames = 0;
  double mean_s = 0, max_s = 0;
};

struct sim_summary {
  pipeline_summary pipeline;
  std::vector<traffic_delay> traffic;  // summary.json "traffic": per class
  std::vector<link_summary> links;  // per peer, only when sim.link_* are set
  // Per peer, its links' send periods and frames (gossip.link_period_max > 1 only; summary.json "link_sends").
  std::vector<std::vector<link_send>> link_sends;
  offload_summary offload;
  double final_test_accuracy = 0, min_test_accuracy = 0, max_test_accuracy = 0;
  double final_test_loss = 0, consensus_distance = 0;
  uint64_t bytes_sent_total = 0, msgs_sent_total = 0, msgs_lost = 0, rejected = 0;
  double dense_allreduce_bytes = 0;
  uint64_t steps = 0;  // per peer (mean)
  int64_t params = 0;
  double virtual_time_s = 0, wall_time_s = 0;
  double samples_per_s = 0;  // training samples over all peers per virtual second
  verification_summary verification;
  verification_choice verify;  // what verify.rate and verify.scheme resolved to, or why it is off
  std::map<std::string, uint64_t> quarantines_by_cause;  // by honest peers (statistical, evidence, missed_answers)
  std::vector<uint32_t> attackers;
  double honest_test_accuracy = 0;   // mean over honest peers
  detection_summary detection;
  double detect_overhead_pct = 0;    // detection wall time / the peers' cycle wall time (mix, step, publish)
  bool interrupted = false;          // ended early by the stop flag (SIGINT/SIGTERM)
  // Each peer's device ("cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"; pipeline: each stage node's).
  std::vector<std::string> devices;
  // out_dir/model.safetensors. Data parallel: the mean of the honest peers'
  // parameters (the consensus gossip drives them to; all peers' when every
  // peer attacks). Pipeline: replica 0's stages, concatenated (the first
  // replica whose stages are all hosted, after a crash).
  final_model_info final_model;
};

// resume_dir: continue from the checkpoints in resume_dir/checkpoints
// (written by a run with checkpoint.every > 0: stage-R-S.ckpt of a pipeline,
// peer-N.ckpt of a data-parallel run); "" = a fresh start. A checkpoint
// that is missing, damaged or not from this run's setup is refused with
// checkpoint_error naming the file, before anything runs.
// stop (may be null): once it is non-zero (main sets it on SIGINT/SIGTERM)
// the run ends after the event at hand: metrics.jsonl and curve.tsv hold
// every evaluation made (each line is flushed as written), summary.json
// the partial run with "interrupted": true, and a data-parallel run writes
// every peer's checkpoint then, so that resume_dir = out_dir continues it
// (a pipeline run resumes from its last checkpoint.every checkpoint).
// cores: how many cores the run may use (0: the process's CPU affinity).
// With 2 or more, verification's segment checks run on a thread beside the
// simulation's (sim/check_worker.hpp); the results are the same either way.
sim_summary run_simulation(const RunConfig& cfg, const std::string& out_dir,
                           const std::function<void(const run_progress&)>& on_progress = {},
                           const std::string& resume_dir = "", const std::atomic<int>* stop = nullptr,
                           size_t cores = 0);

// The pipeline simulation (pipeline.stages > 1); run_simulation calls it.
// stage_backend (tests): every stage trains on a backend it makes
// (make_cpu_backend), through the path train.device = cuda takes on a GPU.
using stage_backend_factory = std::function<std::unique_ptr<compute_backend>()>;
sim_summary run_pipeline_simulation(const RunConfig& cfg, const std::string& out_dir,
                                    const std::function<void(const run_progress&)>& on_progress,
                                    const std::string& resume_dir, const std::atomic<int>* stop = nullptr,
                                    const stage_backend_factory& stage_backend = {});

}  // namespace murmur
