#include "sim/simulation.hpp"

#include <iostream>
#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "actors/peer.hpp"
#include "actors/segment_replay.hpp"
#include "protocols/checkpoint_file.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/traffic_class.hpp"
#include "protocols/verify_messages.hpp"
#include "actors/topology.hpp"
#include "run/stage_placement.hpp"
#include "run/attack_plan.hpp"
#include "run/config_schema.hpp"
#include "sim/detection_score.hpp"
#include "run/json_text.hpp"
#include "run/malloc_arena.hpp"
#include "run/rewards_json.hpp"
#include "run/key_usage.hpp"
#include "run/link_tau.hpp"
#include "model_io/model_source.hpp"
#include "run/initial_model.hpp"
#include "run/offload_setup.hpp"
#include "run/peer_device.hpp"
#include "run/peer_settings_from_config.hpp"
#include "run/run_data.hpp"
#include "run/segment_replay_factory.hpp"
#include "run/sweep_runner.hpp"
#include "sim/check_worker.hpp"
#include "sim/ring_allreduce.hpp"
#include "sim/sim_network.hpp"
#include "run/verification_choice.hpp"
#include "run/verify_timing.hpp"
#include "tensor/gemm.hpp"

namespace murmur {

namespace {

// curve.tsv (gnuplot's input, not JSON): six significant digits, nan as is.
std::string tsv_number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// One peer's state at an evaluation.
struct peer_eval {
  eval_report train;
  gossip_counters gossip;
  double consensus = 0;  // ||x_i - mean||_2
};

void write_metrics_line(std::ostream& os, double t, uint32_t peer, int64_t steps_per_epoch, const peer_eval& e,
                        bool attacker) {
  const auto& r = e.train;
  const auto& g = e.gossip;
  os << "{\"t\":" << json_number(t) << ",\"peer\":" << peer << ",\"step\":" << r.steps
     << ",\"epoch\":" << json_number(static_cast<double>(r.steps) / static_cast<double>(steps_per_epoch))
     << ",\"train_loss\":" << json_number(r.train_loss) << ",\"test_loss\":" << json_number(r.test_loss)
     << ",\"test_acc\":" << json_number(r.test_accuracy) << ",\"bytes_sent\":" << g.bytes_sent
     << ",\"msgs_sent\":" << g.msgs_sent << ",\"bytes_recv\":" << g.bytes_received
     << ",\"msgs_recv\":" << g.msgs_received << ",\"silent_rounds\":" << g.silent_rounds
     << ",\"busy_rounds\":" << g.busy_rounds << ",\"rejected\":" << g.rejected_total()
     << ",\"attacker\":" << (attacker ? "true" : "false") << ",\"quarantines\":" << g.quarantines.size()
     << ",\"consensus_dist\":" << json_number(e.consensus) << "}\n";
}

std::vector<traffic_delay> traffic_delays(const network_stats& n) {
  std::vector<traffic_delay> out;
  for (size_t k = 0; k < n.delay_by_class.size(); ++k) {
    const auto& d = n.delay_by_class[k];
    out.push_back({std::string(to_string(static_cast<traffic_class>(k))), d.frames,
                   d.frames ? d.sum_s / static_cast<double>(d.frames) : 0.0, d.max_s});
  }
  return out;
}

void write_summary(const std::string& dir, const RunConfig& c, const sim_summary& s) {
  std::ofstream js(dir + "/summary.json");
  js << "{\n  \"final_test_accuracy\": " << json_number(s.final_test_accuracy)
     << ",\n  \"min_test_accuracy\": " << json_number(s.min_test_accuracy)
     << ",\n  \"final_test_loss\": " << json_number(s.final_test_loss)
     << ",\n  \"consensus_distance\": " << json_number(s.consensus_distance)
     << ",\n  \"bytes_sent_total\": " << s.bytes_sent_total
     << ",\n  \"dense_allreduce_bytes\": " << static_cast<uint64_t>(s.dense_allreduce_bytes)
     << ",\n  \"compression_vs_allreduce\": "
     << json_number(s.bytes_sent_total ? s.dense_allreduce_bytes / static_cast<double>(s.bytes_sent_total) : 0.0)
     << ",\n  \"msgs_sent_total\": " << s.msgs_sent_total << ",\n  \"msgs_lost\": " << s.msgs_lost
     << ",\n  \"frames_rejected\": " << s.rejected << ",\n  \"peers\": " << c.peers
     << ",\n  \"params\": " << s.params << ",\n  \"steps\": " << s.steps
     << ",\n  \"virtual_time_s\": " << json_number(s.virtual_time_s) << ",\n  \"wall_time_s\": " << json_number(s.wall_time_s)
     << ",\n  \"samples_per_s\": " << json_number(s.samples_per_s)
     << ",\n  \"interrupted\": " << (s.interrupted ? "true" : "false");
  // Where the peers trained (pipeline runs: every stage node); "device" names the one they share.
  std::vector<std::string> distinct;
  for (const auto& d : s.devices)
    if (std::find(distinct.begin(), distinct.end(), d) == distinct.end()) distinct.push_back(d);
  if (!s.links.empty()) {
    js << ",\n  \"links\": [";
    for (size_t i = 0; i < s.links.size(); ++i) {
      const auto& l = s.links[i];
      js << (i ? ",\n    " : "\n    ") << "{\"peer\": " << i << ", \"class\": " << json_string(l.cls)
         << ", \"up_mbps\": " << json_number(l.up_mbps) << ", \"down_mbps\": " << json_number(l.down_mbps)
         << ", \"access_ms\": " << json_number(l.access_ms) << ", \"bytes_sent\": " << l.bytes_sent
         << ", \"bytes_received\": " << l.bytes_received << "}";
    }
    js << "]";
  }
  if (!s.link_sends.empty()) {
    // Per peer, each link: its send period as last planned, the frames sent on it and
    // the peer's published rounds (rounds / frames: the mean period).
    js << ",\n  \"link_sends\": [";
    for (size_t i = 0; i < s.link_sends.size(); ++i) {
      js << (i ? ",\n    " : "\n    ") << "{\"peer\": " << i << ", \"links\": [";
      for (size_t j = 0; j < s.link_sends[i].size(); ++j) {
        const auto& l = s.link_sends[i][j];
        js << (j ? ", " : "") << "{\"to\": " << l.peer << ", \"period\": " << l.period << ", \"frames\": " << l.frames
           << ", \"rounds\": " << l.rounds << "}";
      }
      js << "]}";
    }
    js << "]";
  }
  if (!s.traffic.empty()) {
    js << ",\n  \"traffic\": {";
    for (size_t i = 0; i < s.traffic.size(); ++i) {
      const auto& t = s.traffic[i];
      js << (i ? ", " : "") << json_string(t.cls) << ": {\"frames\": " << t.frames
         << ", \"mean_ms\": " << json_number(t.mean_s * 1000.0) << ", \"max_ms\": " << json_number(t.max_s * 1000.0) << "}";
    }
    js << "}";
  }
  js << ",\n  \"verify\": " << s.verify.json();
  js << ",\n  \"device\": " << json_string(distinct.size() == 1 ? distinct[0] : distinct.empty() ? "" : "mixed")
     << ",\n  \"devices\": [";
  for (size_t i = 0; i < s.devices.size(); ++i) js << (i ? ", " : "") << json_string(s.devices[i]);
  js << "]";
  if (s.verification.enabled) {
    const auto& v = s.verification;
    js << ",\n  \"verification\": {\"commits\": " << v.commits << ", \"challenges\": " << v.challenges
       << ", \"checks_passed\": " << v.checks_passed << ", \"checks_failed\": " << v.checks_failed
       << ", \"evidence_sent\": " << v.evidence_sent << ", \"evidence_confirmed\": " << v.evidence_confirmed
       << ", \"evidence_rejected\": " << v.evidence_rejected << ", \"evidence_unverifiable\": "
       << v.evidence_unverifiable << ", \"frames_rejected\": " << v.frames_rejected << ", \"verified_gflop\": "
       << json_number(v.verified_gflop) << ", \"commit_overhead_pct\": "
       << json_number(v.step_seconds > 0 ? 100 * v.commit_seconds / v.step_seconds : 0) << ", \"check_overhead_pct\": "
       << json_number(v.step_seconds > 0 ? 100 * v.check_seconds / v.step_seconds : 0)
       << ",\n    \"challenges_completed\": " << v.challenges_completed << ", \"challenges_missed\": "
       << v.challenges_missed << ", \"challenges_late\": " << v.challenges_late << ", \"challenges_expired\": "
       << v.challenges_expired << ", \"challenges_abandoned\": " << v.challenges_abandoned
       << ", \"misses_announced\": " << v.misses_announced << ", \"miss_claims_received\": " << v.miss_claims_received
       << ", \"misses_confirmed\": " << v.misses_confirmed << ", \"misses_rejected\": " << v.misses_rejected
       << ", \"misses_ignored\": " << v.misses_ignored << ",\n    \"deadline_ms\": " << json_number(1000 * v.deadline_s)
       << ", \"max_answer_ms\": " << json_number(1000 * v.max_answer_s);
    // The segment scheme keeps no per-step transcripts: its retention is the
    // boundary states in each prover's boundary store, on disk.
    if (v.segment_steps > 0)
      js << ", \"segment_steps\": " << v.segment_steps << ", \"boundary_store_mb_per_peer\": "
         << json_number(v.boundary_store_mb);
    else
      js << ", \"keep_steps\": " << v.keep_steps << ", \"transcript_mb_per_peer\": " << json_number(v.transcript_mb);
    js << ",\n    \"segment_commits\": "
       << v.segment_commits << ", \"segments_challenged\": " << v.segments_challenged << ", \"segments_passed\": "
       << v.segments_passed << ", \"segments_failed\": " << v.segments_failed << ", \"segment_replay_s\": "
       << json_number(v.segment_replay_seconds) << ", \"segment_check_wait_s\": "
       << json_number(v.segment_check_wait_seconds) << ", \"segment_checks_waited\": " << v.segment_checks_waited
       << ", \"segment_checks_dropped\": " << v.segment_checks_dropped << ", \"segment_commits_refused\": "
       << v.segment_commits_refused << ", \"segment_unavailable_answers\": " << v.segment_unavailable_answers
       << ", \"misses_by_prover\": {";
    bool first = true;
    for (auto& [peer, n] : v.misses_by_prover) {
      js << (first ? "" : ", ") << '"' << peer << "\": " << n;
      first = false;
    }
    js << "}, \"first_caught_step\": {";
    first = true;
    for (auto& [peer, step] : v.first_caught_step) {
      js << (first ? "" : ", ") << '"' << peer << "\": " << step;
      first = false;
    }
    js << "}}";
    std::vector<uint32_t> all(static_cast<size_t>(c.peers));
    for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    js << ",\n  \"rewards\": " << rewards_json(v.rewards, all);
  }
  if (s.offload.enabled) {
    const auto& o = s.offload;
    js << ",\n  \"offload\": {\"helper\": " << o.helper << ", \"tasks_served\": " << o.tasks_served << ", \"peers\": [";
    for (size_t i = 0; i < o.peers.size(); ++i) {
      const auto& q = o.peers[i];
      js << (i ? ", " : "") << "{\"peer\": " << q.peer << ", \"steps\": " << q.steps
         << ", \"finished_s\": " << json_number(q.finished_s) << ", \"steps_per_s\": " << json_number(q.steps_per_s)
         << ", \"offloaded\": " << q.offloaded << ", \"verified\": " << q.verified << ", \"rejected\": " << q.rejected
         << ", \"local\": " << q.local << ", \"verified_gflop\": " << json_number(q.verified_gflop)
         << ", \"local_gflop\": " << json_number(q.local_gflop) << ", \"check_gflop\": " << json_number(q.check_gflop)
         << ", \"wire_s\": " << json_number(q.wire_s) << ", \"helper_s\": " << json_number(q.helper_s)
         << ", \"helper_credit_gflop\": " << json_number(q.helper_credit_gflop)
         << ", \"helper_trusted\": " << (q.helper_trusted ? "true" : "false") << "}";
    }
    js << "]}";
  }
  if (s.pipeline.enabled) {
    const auto& p = s.pipeline;
    js << ",\n  \"pipeline\": {\"stages\": " << p.stages << ", \"replicas\": " << p.replicas
       << ", \"microbatches\": " << p.microbatches << ", \"schedule\": " << json_string(p.schedule) << ", \"spares\": " << p.spares
       << ", \"makespan_s\": " << json_number(p.makespan_s) << ", \"efficiency\": " << json_number(p.efficiency)
       << ", \"bound\": " << json_number(p.bound) << ", \"samples_per_s\": " << json_number(p.samples_per_s)
       << ", \"placement\": " << json_string(p.placement) << ", \"predicted_batch_s\": " << json_number(p.predicted_batch_s)
       << ", \"predicted_index_batch_s\": " << json_number(p.predicted_index_batch_s)
       << ", \"simulated_batch_s\": " << json_number(p.simulated_batch_s) << ",\n    \"per_stage\": [";
    for (size_t i = 0; i < p.per_stage.size(); ++i) {
      const auto& q = p.per_stage[i];
      js << (i ? ",\n      " : "\n      ") << "{\"replica\": " << q.replica << ", \"stage\": " << q.stage
         << ", \"node\": " << q.node << ", \"machine\": " << q.machine << ", \"layers\": [" << q.layer_begin << ", " << q.layer_end
         << "], \"busy_s\": " << json_number(q.busy_s) << ", \"peak_in_flight\": " << q.peak_in_flight
         << ", \"peak_activation_mb\": " << json_number(q.peak_activation_mb) << ", \"steps\": " << q.steps
         << ", \"rejected\": " << q.rejected << ", \"stale\": " << q.stale
         << ", \"gossip_bytes_sent\": " << q.gossip_bytes_sent << "}";
    }
    const auto& t = p.takeover;
    js << "],\n    \"takeover\": {\"happened\": " << (t.happened ? "true" : "false") << ", \"replica\": " << t.replica
       << ", \"stage\": " << t.stage << ", \"new_node\": " << t.new_node << ", \"crash_step\": " << t.crash_step
       << ", \"resume_step\": " << t.resume_step << ", \"crash_s\": " << json_number(t.crash_s) << ", \"takeover_s\": "
       << json_number(t.takeover_s) << ", \"resumed_s\": " << json_number(t.resumed_s) << ", \"caught_up_s\": " << json_number(t.caught_up_s)
       << ", \"detection_s\": " << json_number(t.detection_s) << ", \"time_to_resume_s\": " << json_number(t.time_to_resume_s)
       << ", \"time_to_catch_up_s\": " << json_number(t.time_to_catch_up_s) << ", \"lost_steps\": " << t.lost_steps
       << ", \"lost_microbatches\": " << t.lost_microbatches << "},\n    \"errors\": [";
    for (size_t i = 0; i < p.errors.size(); ++i) js << (i ? ", " : "") << json_string(p.errors[i]);
    js << "]}";
  }
  // Detection: undefined ratios are NaN, written as null.
  const auto& d = s.detection;
  js << ",\n  \"attackers\": [";
  for (size_t i = 0; i < s.attackers.size(); ++i) js << (i ? ", " : "") << s.attackers[i];
  js << "],\n  \"honest_test_accuracy\": " << json_number(s.honest_test_accuracy) << ",\n  \"detection\": {\"tp\": " << d.tp
     << ", \"fp\": " << d.fp << ", \"fn\": " << d.fn << ", \"precision\": " << json_number(d.precision)
     << ", \"recall\": " << json_number(d.recall) << ", \"f1\": " << json_number(d.f1)
     << ", \"honest_quarantined\": " << d.honest_quarantined
     << ", \"steps_to_quarantine_median\": " << json_number(d.steps_to_quarantine_median)
     << ", \"steps_to_quarantine_p95\": " << json_number(d.steps_to_quarantine_p95)
     << "},\n  \"quarantines_by_cause\": {";
  for (const char* cause : {"statistical", "evidence", "missed_answers"}) {
    auto it = s.quarantines_by_cause.find(cause);
    js << (cause[0] == 's' ? "" : ", ") << '"' << cause << "\": " << (it == s.quarantines_by_cause.end() ? 0 : it->second);
  }
  js << "},\n  \"detect_overhead_pct\": " << json_number(s.detect_overhead_pct);
  js << ",\n  \"final_model\": " << final_model_json(s.final_model) << "\n}\n";
  std::ofstream(dir + "/timing.json") << "{\"wall_time_s\": " << json_number(s.wall_time_s) << ", \"steps_per_s\": "
                                      << json_number(static_cast<double>(s.steps) * static_cast<double>(c.peers) / s.wall_time_s)
                                      << ", \"detect_overhead_pct\": " << json_number(s.detect_overhead_pct) << "}\n";
}

caf::actor_system_config& testing_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  return cfg;
}

// Checkpoints and resume (checkpoint.every = K > 0, run.stop_after, --resume).
//
// Each peer's checkpoint is its own: right after a peer's cycle that ends
// step m*K, between events (the actors are idle, so its parameters can be
// read), the driver writes out_dir/checkpoints/peer-N.ckpt atomically:
// the trainer's state (trainer::make_checkpoint: parameters, optimizer
// state, steps, batch position, schedule length, train-loss mean), then two
// values of the driver's own: the virtual time of the peer's next cycle and
// the time of the next evaluation. Peers step at their own speeds
// (sim.speed_spread), as they would on separate machines, so nothing makes
// them wait for each other: checkpointing does not change the run.
//
// run.stop_after = S stops a peer once it has done S steps and the run once
// every peer has, as if killed then: no further checkpoint, and the final
// evaluation goes into summary.json only, not into metrics.jsonl or
// curve.tsv. Every peer's last checkpoint is then from the same step,
// floor(S/K)*K. A real kill can leave peers' checkpoints at different steps
// (a fast peer is ahead); that resumes too: each peer continues from its own
// step to its own total, at the virtual time it would have stepped next.
//
// Resume reads peer-0.ckpt .. peer-(n-1).ckpt and refuses (checkpoint_error
// naming the file) a missing, damaged or truncated one, one from another
// peer, seed, model, parameter count, optimizer or schedule length, and a
// checkpoint of a peer this run does not have; nothing runs then.
// Not in a checkpoint, so a resumed run starts them afresh: the gossip state
// (public estimates, rounds, error feedback, delta residuals), frames on the
// wire, the network's loss stream, counters (bytes, messages, rejected),
// detection history and quarantines, and verification state. Each peer's
// gossip state is rebuilt from its restored parameters: its own public
// estimate x_hat_self = x_i; its neighbours count as never heard from, so
// they take no part in mixing until their first frame arrives; and every
// peer resyncs (gossip_state::resync), so that first frame is a complete
// (dense) copy of its parameters and every neighbour's estimate of it is
// exact from then on. (Delta mode: the residual starts at zero from x_i.)
// Verification starts afresh with every peer: with verify.scheme = segment
// each peer's segment log opens after its resync, at its resumed step, so
// its first segment is shorter than K (it closes at the next multiple of
// K), and no verifier holds a commitment from before the stop.
// With one peer there is no gossip, and a resumed run is bit-identical to
// an uninterrupted one, metrics.jsonl and curve.tsv included (into which,
// as after any kill, the evaluations between the last checkpoint and the
// stop are written a second time, identically).
//
// SIGINT/SIGTERM (the stop flag) ends the run after the event being
// handled, whatever checkpoint.every: every peer's checkpoint is written
// then (each at its own step, with the time of its next cycle), the final
// evaluation goes into summary.json only (marked "interrupted"), so the
// resumed run's metrics.jsonl and curve.tsv continue the interrupted run's
// lines with nothing missing or repeated.
//
// Byte and message counters continue across a resume: a checkpoint carries
// its peer's gossip counters (bytes and messages sent and received) and the
// network's totals (messages and bytes sent, messages lost) when it was
// written; a resumed run adds them to its own counts. Peers' checkpoints
// can be from different moments (checkpoint.every, then a kill): the
// network's totals resume from the earliest (the smallest), an undercount
// of the frames sent between it and the kill, which the resumed run does not
// send again either.
constexpr size_t driver_extra = 9;  // after the trainer's: next cycle time, next evaluation time, counters
constexpr size_t driver_extra_v1 = 2;  // checkpoints from before the counters: they resume from zero

std::string peer_checkpoint_path(const std::string& dir, uint32_t peer) {
  return dir + "/checkpoints/peer-" + std::to_string(peer) + ".ckpt";
}

// Each peer's modelled step cost for a step of step_s seconds: times a
// speed factor (sim.speed_spread, then sim.slow_peers x sim.slow_factor).
std::vector<double> peer_step_costs(const RunConfig& c, uint32_t n, double step_s) {
  return machine_slowdowns(c, n, step_s);
}

// Who offloads, before the model is known (each peer's device depends on
// it): offload.peers = slowest compares the costs of a step of 1 s.
offload_setup sim_offload_setup(const RunConfig& c) {
  const uint32_t n = static_cast<uint32_t>(c.peers);
  const auto costs = peer_step_costs(c, n, 1.0);
  return offload_setup_of(c, n, {}, &costs);
}

// The discrete-event loop. Owns the actor system (deterministic test
// scheduler), the event queue the simulated network feeds, and the peers.
class driver {
 public:
  driver(const RunConfig& c, const std::string& out_dir, const run_data& data,
         const std::function<void(const run_progress&)>& on_progress, const std::string& resume_dir,
         const std::atomic<int>* stop, std::vector<resolved_device> devices, offload_setup off, size_t cores)
      : c_(c), out_dir_(out_dir), on_progress_(on_progress), n_(static_cast<uint32_t>(c.peers)), stop_(stop),
        devices_(std::move(devices)), devices_label_(devices_label(devices_)), off_(std::move(off)),
        sys_(testing_config(sys_cfg_)),
        sched_(dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())),
        self_(sys_),
        cores_(cores),
        allreduce_(c.mode == "allreduce") {
    // The synchronous baseline's rounds are the driver's, not the peers':
    // no checkpoint holds a round half done (validate_config refuses
    // checkpoint.every; an interruption's checkpoints cannot resume).
    if (allreduce_ && !resume_dir.empty())
      throw std::invalid_argument("--resume with gossip.mode = allreduce: the all-reduce baseline does not resume");
    plan_speeds(data);
    network_model nm;
    links_ = link_model::from_config(c, n_);
    nm.links = links_;
    nm.loss = c.loss;
    nm.ranked = c.uplink == "classes";
    // Frames made before the step (gossip.publish = before_step) can leave at once.
    frames_at_step_end_ = c.frames_leave == "step_end" && c.publish_at != "before_step";
    if (off_.on) nm.offload = &offload_q_;
    net_ = spawn_sim_network(sys_, queue_, nm, n_, Rng(c.seed).fork(7).next_u64(), net_stats_);
    try {
      spawn_peers(data, resume_dir);
    } catch (...) {
      // The actor system waits for every actor at destruction: stop the
      // ones already spawned, or a bad setting would hang instead of erring.
      stop_actors();
      throw;
    }
    for (auto t : total_steps_) all_steps_ += t;
    if (allreduce_) ring_.emplace(n_, dim_);
  }

  ~driver() { stop_actors(); }

  void stop_actors() {
    for (auto& p : peers_) {
      caf::anon_send_exit(p.shard, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(p.gossip, caf::exit_reason::user_shutdown);
      if (p.verifier) caf::anon_send_exit(p.verifier, caf::exit_reason::user_shutdown);
    }
    caf::anon_send_exit(net_, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  sim_summary run() {
    // A resumed run appends to the interrupted run's files.
    const auto mode = resumed_ ? std::ios::app : std::ios::trunc;
    metrics_.open(out_dir_ + "/metrics.jsonl", mode);
    curve_.open(out_dir_ + "/curve.tsv", mode);
    if (!resumed_) curve_ << "# virtual_s\tbytes_sent\tmean_test_acc\tmin_test_acc\tmean_train_loss\tconsensus\n";
    if (c_.checkpoint_every > 0) std::filesystem::create_directories(out_dir_ + "/checkpoints");
    for (uint32_t i = 0; i < n_; ++i)
      if (may_step(i)) schedule_cycle(i, next_cycle_[i]), ++round_expected_;
    // Evaluations happen at fixed virtual times, between events: every
    // eval_steps steps of the fastest peer, or all-reduce rounds.
    const int64_t eval_steps = c_.eval_every > 0 ? c_.eval_every : steps_per_epoch_[0];
    const double eval_interval = static_cast<double>(eval_steps) * (allreduce_ ? allreduce_round_s() : step_s_);
    if (!resumed_) next_eval_ = eval_interval;
    // gossip.mode = allreduce: an evaluation due when a round ends comes
    // after the round's average and before the next round's steps, which
    // start at that same time (round ends are sums of round times: slack).
    const double eval_slack = allreduce_ ? 1e-9 * eval_interval : 0.0;
    auto eval_due = [&] {
      const double t = queue_.next_time();
      if (t > next_eval_ + eval_slack) return true;
      return allreduce_ && queue_.next_kind() == sim_event::cycle && t >= next_eval_ - eval_slack;
    };
    double last_eval = -1, last_report = 0;
    bool last_eval_partial = false;  // on a subset of the test set (train.eval_subset)
    bool stopped = false;
    while (!queue_.empty()) {
      if (stop_ && stop_->load() != 0) {
        stopped = true;
        sum_.interrupted = true;
        break;
      }
      if (steps_sum_ < all_steps_ && eval_due()) {
        // train.eval_subset: the k-th evaluation's window starts at (k - 1) * subset.
        const auto k = static_cast<int64_t>(std::llround(next_eval_ / eval_interval));
        evaluate(next_eval_, true, std::max<int64_t>(0, k - 1) * c_.eval_subset, c_.eval_subset);
        last_eval = next_eval_;
        last_eval_partial = c_.eval_subset > 0 && c_.eval_subset < test_->size();
        next_eval_ += eval_interval;
        continue;
      }
      sim_event e = queue_.pop();
      if (e.kind != sim_event::check_ready) last_event_s_ = e.time;
      handle(e);
      if (e.kind != sim_event::cycle) continue;
      if (on_progress_ && wall_s() - last_report > 0.25) {
        last_report = wall_s();
        report(e.time, false);
      }
      // run.stop_after: every peer has done its steps; stop as if killed.
      if (c_.stop_after > 0 && steps_sum_ < all_steps_ && none_may_step()) {
        stopped = true;
        break;
      }
    }
    // The run ends with its last step or frame; checks still replaying
    // then (their verdicts are counted) do not lengthen it.
    sum_.virtual_time_s = checks_ ? last_event_s_ : queue_.now();
    if (sum_.interrupted) {
      std::filesystem::create_directories(out_dir_ + "/checkpoints");
      for (uint32_t i = 0; i < n_; ++i) write_peer_checkpoint(i, next_cycle_[i]);
    }
    // A stopped run's summary gets a final evaluation, but its files do not:
    // the resumed run's lines continue them as an uninterrupted run's would.
    // The summary's accuracies are always on the whole test set: after an
    // evaluation of a subset at this very time, once more (not recorded).
    if (last_eval < sum_.virtual_time_s || last_eval_partial)
      evaluate(sum_.virtual_time_s, !stopped && last_eval < sum_.virtual_time_s);
    write_final_model();
    sum_.bytes_sent_total = net_stats_.bytes_sent + net_base_.bytes_sent;
    sum_.msgs_sent_total = net_stats_.msgs_sent + net_base_.msgs_sent;
    sum_.msgs_lost = net_stats_.msgs_lost + net_base_.msgs_lost;
    sum_.traffic = traffic_delays(net_stats_);
    if (!links_.uniform()) {
      for (uint32_t i = 0; i < n_; ++i) {
        const auto& p = links_.peers()[i];
        sum_.links.push_back({p.cls, p.up_bps / 1e6, p.down_bps / 1e6, p.access_s * 1000.0,
                              i < net_stats_.peer_bytes_sent.size() ? net_stats_.peer_bytes_sent[i] : 0,
                              i < net_stats_.peer_bytes_received.size() ? net_stats_.peer_bytes_received[i] : 0});
      }
    }
    if (c_.link_period_max > 1)
      for (uint32_t i = 0; i < n_; ++i) sum_.link_sends.push_back(gossip_counters_of(i).link_sends);
    sum_.steps = static_cast<uint64_t>(steps_sum_ / n_);
    sum_.samples_per_s = sum_.virtual_time_s > 0 ? static_cast<double>(steps_sum_) * static_cast<double>(c_.batch) /
                                                       sum_.virtual_time_s
                                                 : 0;
    sum_.params = dim_;
    for (const auto& d : devices_) sum_.devices.push_back(d.label);
    collect_verification();
    collect_offload();
    // A ring all-reduce sends 2(n-1)/n of the gradient per peer per step.
    sum_.dense_allreduce_bytes =
        2.0 * (n_ - 1) * 4.0 * static_cast<double>(dim_) * static_cast<double>(sum_.steps);
    sum_.attackers = attackers_;
    std::vector<std::vector<quarantine_record>> quarantines;
    uint64_t detect_ns = 0;
    for (uint32_t i = 0; i < last_gossip_.size(); ++i) {
      const auto& g = last_gossip_[i];
      quarantines.push_back(g.quarantines);
      detect_ns += g.detect_ns;
      if (!is_attacker_[i])
        for (const auto& q : g.quarantines) ++sum_.quarantines_by_cause[std::string(to_string(q.cause))];
    }
    sum_.detection = score_detection(overlay_, attackers_, quarantines, static_cast<uint64_t>(c_.attack_start_step));
    sum_.detect_overhead_pct = cycle_ns_ ? 100.0 * static_cast<double>(detect_ns) / static_cast<double>(cycle_ns_) : 0.0;
    return sum_;
  }

  double wall_s() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0_).count(); }

 private:
  // A peer steps until its total, or until run.stop_after.
  bool may_step(uint32_t i) const {
    return done_[i] < total_steps_[i] && !(c_.stop_after > 0 && done_[i] >= c_.stop_after);
  }
  bool none_may_step() const {
    for (uint32_t i = 0; i < n_; ++i)
      if (may_step(i)) return false;
    return true;
  }

  // Reads peer i's checkpoint and checks what the trainer cannot (whose it
  // is, the seed, the driver's values); the trainer checks the rest.
  checkpoint read_peer_checkpoint(const std::string& dir, uint32_t i) {
    const std::string path = peer_checkpoint_path(dir, i);
    checkpoint ck = read_checkpoint_file(path);
    auto refuse = [&](const std::string& what) { throw checkpoint_error(path + ": " + what); };
    if (ck.kind != checkpoint_kind::peer) refuse("not a data-parallel peer's checkpoint (a pipeline stage's?)");
    if (ck.replica != i) refuse("the checkpoint of peer " + std::to_string(ck.replica) + ", not of peer " + std::to_string(i));
    if (ck.seed != c_.seed)
      refuse("written by a run with run.seed = " + std::to_string(ck.seed) + ", this run has " + std::to_string(c_.seed) +
             " (other shards, topology and speeds)");
    if (ck.extra.size() != trainer::checkpoint_extra + driver_extra &&
        ck.extra.size() != trainer::checkpoint_extra + driver_extra_v1)
      refuse(std::to_string(ck.extra.size()) + " extra values, a simulated peer's checkpoint has " +
             std::to_string(trainer::checkpoint_extra + driver_extra));
    for (size_t k = trainer::checkpoint_extra; k < trainer::checkpoint_extra + driver_extra_v1; ++k) {
      const double t = std::bit_cast<double>(ck.extra[k]);
      if (!std::isfinite(t) || t < 0) refuse("bad virtual time in the checkpoint");
    }
    return ck;
  }

  // Before anything is spawned: a checkpoint of a peer this run does not
  // have means the run is not the one that wrote them (sim.peers changed).
  void check_no_extra_peers(const std::string& dir) {
    std::error_code ec;
    std::optional<unsigned long> first;  // the lowest such peer, whatever the directory order
    for (const auto& f : std::filesystem::directory_iterator(dir + "/checkpoints", ec)) {
      const std::string name = f.path().filename().string();
      if (name.size() <= 10 || name.rfind("peer-", 0) != 0 || f.path().extension() != ".ckpt") continue;
      const std::string num = name.substr(5, name.size() - 10);
      if (num.find_first_not_of("0123456789") != std::string::npos || num.size() > 6 || (num.size() > 1 && num[0] == '0'))
        continue;  // not a name this driver writes
      const unsigned long p = std::stoul(num);
      if (p >= n_ && (!first || p < *first)) first = p;
    }
    if (first)
      throw checkpoint_error(peer_checkpoint_path(dir, static_cast<uint32_t>(*first)) + ": a checkpoint of peer " +
                             std::to_string(*first) + ", but this run has sim.peers = " + std::to_string(n_));
  }

  // Between events only: the peer's actors are idle then.
  void write_peer_checkpoint(uint32_t i, double next_cycle) {
    checkpoint ck = peers_[i].train->make_checkpoint(static_cast<uint16_t>(i), c_.seed);
    ck.extra.push_back(std::bit_cast<uint64_t>(next_cycle));
    ck.extra.push_back(std::bit_cast<uint64_t>(next_eval_));
    const gossip_counters g = gossip_counters_of(i);
    for (uint64_t v : {g.bytes_sent, g.msgs_sent, g.bytes_received, g.msgs_received,
                       net_stats_.msgs_sent + net_base_.msgs_sent, net_stats_.bytes_sent + net_base_.bytes_sent,
                       net_stats_.msgs_lost + net_base_.msgs_lost})
      ck.extra.push_back(v);
    write_checkpoint_file(peer_checkpoint_path(out_dir_, i), ck);
  }

  // Peer i's gossip counters, those of the run it resumed from included.
  gossip_counters gossip_counters_of(uint32_t i) {
    gossip_counters g;
    self_->send(peers_[i].gossip, stats_atom::value);
    sched_.run();
    self_->receive([&](gossip_counters& x) { g = std::move(x); },
                   caf::after(std::chrono::seconds(0)) >> [&] { no_answer(i, "its counters"); });
    add_counter_base(i, g);
    return g;
  }
  void add_counter_base(uint32_t i, gossip_counters& g) const {
    const gossip_counters& b = counter_base_[i];
    g.bytes_sent += b.bytes_sent;
    g.msgs_sent += b.msgs_sent;
    g.bytes_received += b.bytes_received;
    g.msgs_received += b.msgs_received;
  }

  void spawn_peers(const run_data& data, const std::string& resume_dir) {
    resumed_ = !resume_dir.empty();
    test_ = data.test;
    if (resumed_) check_no_extra_peers(resume_dir);
    const auto shards = c_.partition == "dirichlet"
                            ? shard_dirichlet(data.train->labels, data.train->num_classes, static_cast<int>(n_),
                                              c_.alpha, c_.seed)
                            : shard_iid(data.train->size(), static_cast<int>(n_), c_.seed);
    // Delta broadcast sends every peer's changes to every other peer.
    // Shared by every peer's neighbours_of below: a copy each would be O(N^2) (complete: O(N^3)).
    const auto shared_overlay = std::make_shared<const std::vector<std::vector<uint32_t>>>(run_overlay(c_, n_));
    const auto& overlay = *shared_overlay;
    overlay_ = overlay;
    if (c_.verify_rate > 0) {
      size_t degree = 0;
      for (const auto& nb : overlay) degree = std::max(degree, nb.size());
      // Virtual time: no scheduling jitter to allow for.
      timing_ = verify_timing_of(c_, *data.train, static_cast<uint32_t>(degree), n_, 0.0, 0.0);
      sum_.verification.deadline_s = timing_.deadline_s;
      sum_.verification.keep_steps = timing_.keep_steps;
      sum_.verification.transcript_mb = timing_.transcript_bytes * static_cast<double>(timing_.keep_steps) / 1e6;
      sum_.verification.segment_steps = timing_.segment_steps;
      // The store holds keep_segments + 2 boundaries (the kept segments'
      // starts, the open one's, one being replaced) and as many records.
      sum_.verification.boundary_store_mb =
          static_cast<double>(verifier_settings{}.keep_segments + 2) * timing_.boundary_bytes / 1e6;
    }
    // model.init_from: every peer starts from it (a resumed run from its checkpoints).
    const initial_params init =
        resumed_ ? nullptr : load_initial_parameters(c_, data.train->sample_shape(), data.train->num_classes);
    attackers_ = attacker_ids(c_, n_);
    is_attacker_.assign(n_, false);
    for (uint32_t a : attackers_) is_attacker_[a] = true;
    last_gossip_.assign(n_, gossip_counters{});
    // One factory for every verifier: its copies share the shards.
    segment_replay_maker replay_of;
    // gossip.link_tau_exponent: each peer's threshold from its links (run/link_tau.hpp).
    const auto link_taus = link_scaled_taus(c_.threshold, c_.link_tau_exponent, links_, overlay);
    std::shared_ptr<const std::vector<std::vector<int64_t>>> shared_shards;  // for verify.scheme = step's checks
    if (c_.verify_rate > 0) shared_shards = std::make_shared<const std::vector<std::vector<int64_t>>>(shards);
    for (uint32_t i = 0; i < n_; ++i) {
      steps_per_epoch_.push_back((static_cast<int64_t>(shards[i].size()) + c_.batch - 1) / c_.batch);
      total_steps_.push_back(
          std::max<int64_t>(1, std::llround(c_.epochs * static_cast<double>(steps_per_epoch_[i]))));
      // gossip.mode = allreduce: no neighbours, no gossip; the driver averages.
      auto settings =
          peer_settings_from_config(c_, i, n_, allreduce_ ? std::vector<uint32_t>{} : overlay[i], total_steps_[i]);
      if (c_.link_tau_exponent > 0) settings.gossip.threshold = link_taus[i];
      settings.train.device = devices_[i];
      auto v = peer_verification_from_config(
          c_, settings, shared_shards,
          [shared_overlay](uint32_t p) {
            return p < shared_overlay->size() ? (*shared_overlay)[p] : std::vector<uint32_t>{};
          },
          c_.seed,
          timing_, [this] { return queue_.now(); });
      if (v && v->settings.segment_steps > 0) {
        // Every peer knows every peer's settings, shard and neighbours in the
        // simulation: a verifier replays a neighbour as that neighbour.
        v->step_flops = step_flops_;
        if (!replay_of) replay_of = segment_replay_factory(c_, n_, overlay, shards, data.train, data.test);
        v->replay_of = replay_of;
        // Checks run beside the simulation when a core is spare, and take
        // effect when the verifier would have replayed them (start_check).
        if (!checks_) {
          // One malloc arena: the thread's replays reuse the simulation's
          // freed blocks rather than keep their own (run/malloc_arena.hpp).
          if (cores_ >= 2) use_one_malloc_arena();
          checks_ = std::make_unique<check_worker>(cores_ >= 2);
        }
        v->check_runner = std::make_shared<check_runner_of>(
            [this, i](uint64_t steps, std::function<void()> work, std::function<void()> ready) {
              start_check(i, steps, std::move(work), std::move(ready));
            });
      }
      std::function<void(trainer&)> restore;
      std::optional<checkpoint> ck;
      if (init) restore = [&init](trainer& t) { std::copy(init->begin(), init->end(), t.model()->params()); };
      if (resumed_) {
        ck = read_peer_checkpoint(resume_dir, i);
        restore = [&](trainer& t) {
          try {
            t.restore(*ck);
          } catch (const std::invalid_argument& e) {
            throw checkpoint_error(peer_checkpoint_path(resume_dir, i) + ": " + e.what());
          }
        };
      }
      const auto off = peer_offload_of(c_, off_, i, Rng(c_.seed).fork(500 + i).next_u64(), 0.0);
      peers_.push_back(spawn_peer(sys_, settings, data.train, shards[i], data.test, net_, v ? &*v : nullptr, restore,
                                  off ? &*off : nullptr));
      // One gradient buffer for every peer training on the host: the peers'
      // steps take turns on this thread, each whole (simulation.hpp). Not
      // with offload, where a step waits for products other actors compute.
      if (!off_.on) {
        const auto dim = static_cast<size_t>(peers_.back().train->synced_model().param_count());
        if (!grad_scratch_) grad_scratch_ = std::make_shared<std::vector<float>>(dim, 0.f);
        peers_.back().train->share_gradients(grad_scratch_);
        peers_.back().train->share_activations(*peers_.front().train);  // likewise the per-step buffers
      }
      done_.push_back(0);
      next_cycle_.push_back(0.0);
      counter_base_.emplace_back();
      if (ck && ck->extra.size() == trainer::checkpoint_extra + driver_extra) {
        const uint64_t* x = ck->extra.data() + trainer::checkpoint_extra + driver_extra_v1;
        auto& b = counter_base_.back();
        b.bytes_sent = x[0], b.msgs_sent = x[1], b.bytes_received = x[2], b.msgs_received = x[3];
        network_stats n;
        n.msgs_sent = x[4], n.bytes_sent = x[5], n.msgs_lost = x[6];
        if (i == 0 || n.bytes_sent < net_base_.bytes_sent) net_base_ = n;
      }
      if (ck) {
        // The gossip state was built from the restored parameters; the first
        // frame it publishes is a complete copy of them (see above).
        caf::anon_send(peers_.back().gossip, resync_atom::value);
        // Segments: the log opened at the restored step when the gossip actor
        // started, before the resync; it opens again after it, so that the
        // first segment starts from the state the peer then trains from (and
        // closes at the next multiple of K). Every verifier is new too: no
        // peer holds a commitment from before the stop to hold it against.
        if (v && v->settings.segment_steps > 0) caf::anon_send(peers_.back().gossip, segstart_atom::value);
        done_.back() = static_cast<int64_t>(ck->step);
        steps_sum_ += done_.back();
        next_cycle_.back() = std::bit_cast<double>(ck->extra[trainer::checkpoint_extra]);
        next_eval_ = std::max(next_eval_, std::bit_cast<double>(ck->extra[trainer::checkpoint_extra + 1]));
      }
    }
    dim_ = peers_[0].train->model()->param_count();
  }

  // Virtual cost of a step: given, or modelled from the model's FLOPs
  // (forward + backward ~ 3 forwards, 2 FLOPs per multiply-add); times
  // each peer's speed factor (peer_step_costs).
  void plan_speeds(const run_data& data) {
    const auto model = build_model(c_.model, data.train->sample_shape(), data.train->num_classes);
    step_flops_ = 6.0 * static_cast<double>(model->forward_flops()) * static_cast<double>(c_.batch);
    step_s_ = c_.step_ms > 0 ? c_.step_ms / 1000.0 : step_flops_ / (c_.gflops * 1e9);
    step_cost_ = peer_step_costs(c_, n_, step_s_);
    debt_s_.assign(n_, 0.0);
    off_stats_.assign(n_, offload_peer_summary{});
  }

  // Peer p's step after an offloaded one: the step's cost split by its
  // products' FLOPs, the part its helper computed at the helper's speed,
  // the Freivalds checks and the operands' transfers (wire_s). The helper
  // pays for the products it computed with a later next step of its own.
  double offloaded_step_cost(uint32_t p, double wire_s) {
    const offload_counters& o = peers_[p].offload->last();
    auto& q = off_stats_[p];
    q.wire_s += wire_s;
    q.offloaded += o.offloaded, q.verified += o.verified, q.rejected += o.rejected, q.local += o.local;
    q.verified_gflop += o.verified_flops / 1e9;
    q.local_gflop += (o.local_flops + o.rejected_flops) / 1e9;
    q.check_gflop += o.check_flops / 1e9;
    const double products = o.verified_flops + o.rejected_flops + o.local_flops;
    if (o.offloaded == 0 || products <= 0) return step_cost_[p];
    const uint32_t h = off_.helper;
    const double helper_s = (o.verified_flops + o.rejected_flops) * step_cost_[h] / step_flops_;
    debt_s_[h] += helper_s;
    q.helper_s += helper_s;
    return step_cost_[p] * (1.0 - o.verified_flops / products) + o.check_flops * step_cost_[p] / step_flops_ +
           helper_s + wire_s;
  }

  // out_dir/model.safetensors: what a DDP user calls the model, the mean
  // of the honest peers' parameters (gossip drives every peer towards it),
  // evaluated once more as itself. The actors are idle between events.
  void write_final_model() {
    auto model = build_model(c_.model, test_->sample_shape(), test_->num_classes);
    std::vector<double> mean(static_cast<size_t>(dim_), 0.0);
    uint32_t used = 0;
    for (int pass = 0; pass < 2 && used == 0; ++pass)  // every peer an attacker: all of them
      for (uint32_t i = 0; i < n_; ++i) {
        if (pass == 0 && is_attacker_[i]) continue;
        const float* x = peers_[i].train->synced_model().params();
        for (int64_t k = 0; k < dim_; ++k) mean[static_cast<size_t>(k)] += x[k];
        ++used;
      }
    for (int64_t k = 0; k < dim_; ++k) model->params()[k] = static_cast<float>(mean[static_cast<size_t>(k)] / used);
    const std::string who = used == n_ ? "the " + std::to_string(n_) + " peers'"
                                       : "the " + std::to_string(used) + " honest peers'";
    sum_.final_model = murmur::write_final_model(out_dir_ + "/" + run_model_file_name, c_, *model, *test_,
                                                 "murmur sim: mean of " + who + " parameters",
                                                 static_cast<uint64_t>(steps_sum_ / n_));
  }

  // A verifier's segment check: computed by the check worker (now, or on
  // its thread), used when the verifier, replaying at its own step rate,
  // would have finished: steps x its step time from now. At that event the
  // driver waits for the check if it is still running (check_worker.hpp).
  void start_check(uint32_t peer, uint64_t steps, std::function<void()> work, std::function<void()> ready) {
    const uint64_t id = checks_->submit(std::move(work));
    check_ready_.emplace(id, std::move(ready));
    sim_event e;
    // A commitment's span is the prover's word: at most verify.segment's bound counts.
    e.time = queue_.now() + static_cast<double>(std::min<uint64_t>(steps, 100000)) * step_cost_[peer];
    e.kind = sim_event::check_ready;
    e.peer = peer;
    e.check = id;
    queue_.push(std::move(e));
  }

  void schedule_cycle(uint32_t peer, double t) {
    sim_event e;
    e.time = t;
    e.kind = sim_event::cycle;
    e.peer = peer;
    queue_.push(std::move(e));
  }

  void handle(sim_event& e) {
    switch (e.kind) {
      case sim_event::deliver: {
        // Verification frames go to the verifier; everything else to gossip,
        // which checks and counts what it cannot use. The frame is moved on:
        // held here, a segment reply would live through the replay it starts.
        auto type = e.frame.bytes ? peek_type(*e.frame.bytes) : std::nullopt;
        // A segment reply (or relayed one) becomes a check that holds a
        // boundary state until it is replayed: decoded once the check
        // thread is idle, so that two are never held at once (as when the
        // checks run inline). It waits only when replies come together.
        if (checks_ && type && (*type == message_type::segment_reply || *type == message_type::segment_evidence))
          checks_->wait_idle();
        if (type && is_verify_message(*type) && peers_[e.peer].verifier)
          caf::anon_send(peers_[e.peer].verifier, deliver_atom::value, e.from, std::move(e.frame));
        else
          caf::anon_send(peers_[e.peer].gossip, deliver_atom::value, e.from, std::move(e.frame));
        sched_.run();
        break;
      }
      case sim_event::sent: {
        // Only gossip rounds wait for their frames to leave the uplink.
        auto type = e.frame.bytes ? peek_type(*e.frame.bytes) : std::nullopt;
        if (type && is_verify_message(*type)) break;
        caf::anon_send(peers_[e.peer].gossip, sent_atom::value, e.from);
        sched_.run();
        break;
      }
      case sim_event::wake: break;  // pipeline runs only
      case sim_event::check_ready: {
        checks_->wait(e.check);
        const auto it = check_ready_.find(e.check);
        std::function<void()> ready = std::move(it->second);
        check_ready_.erase(it);
        ready();
        sched_.run();
        break;
      }
      case sim_event::cycle: {
        const auto t0 = std::chrono::steady_clock::now();
        // sim.frames_leave = step_end: what this cycle publishes leaves once
        // its step's modelled time has passed (an offloading step's time is
        // known only after it: its frames leave at the start).
        if (frames_at_step_end_ && !peers_[e.peer].offload)
          queue_.set_send_delay(step_cost_[e.peer] + debt_s_[e.peer]);
        self_->send(peers_[e.peer].shard, cycle_atom::value);
        sched_.run();
        queue_.set_send_delay(0);
        bool answered = false;
        auto take_answer = [&] {
          self_->receive(
              [&](step_report& r) {
                loss_recent_ = steps_sum_ ? 0.98 * loss_recent_ + 0.02 * r.loss : r.loss;
                answered = true;
              },
              caf::after(std::chrono::seconds(0)) >> [] {});
        };
        take_answer();
        // An offloading step waits for its products: they are delivered at
        // once (sim_network.hpp) and their transfer time is charged below.
        double wire_s = 0;
        while (!answered && !offload_q_.empty()) {
          sim_event f = offload_q_.pop();
          wire_s += f.time;
          caf::anon_send(peers_[f.peer].verifier, deliver_atom::value, f.from, f.frame);
          sched_.run();
          take_answer();
        }
        if (!answered) no_answer(e.peer, "its step");
        cycle_ns_ += static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
        ++done_[e.peer];
        ++steps_sum_;
        double cost = peers_[e.peer].offload ? offloaded_step_cost(e.peer, wire_s) : step_cost_[e.peer];
        cost += debt_s_[e.peer];  // products this peer computed for others since its last step
        debt_s_[e.peer] = 0;
        const double next = e.time + cost;
        off_stats_[e.peer].finished_s = next;
        next_cycle_[e.peer] = next;
        if (c_.checkpoint_every > 0 && done_[e.peer] % c_.checkpoint_every == 0) write_peer_checkpoint(e.peer, next);
        if (allreduce_) arrive_at_allreduce(next);
        else if (may_step(e.peer)) schedule_cycle(e.peer, next);
        break;
      }
      case sim_event::reduce: finish_allreduce(e.time); break;
    }
  }

  // gossip.mode = allreduce (sim/ring_allreduce.hpp): a peer whose step is
  // done waits; once every peer of the round has stepped, the all-reduce
  // starts at the slowest one's finish and ends ring_->seconds later.
  void arrive_at_allreduce(double ready) {
    round_ready_ = std::max(round_ready_, ready);
    if (++round_arrived_ < round_expected_) return;
    sim_event r;
    r.time = round_ready_ + ring_->seconds(links_, round_ready_);
    r.kind = sim_event::reduce;
    queue_.push(std::move(r));
  }
  // The all-reduce is done: every peer holds the mean (all peers take
  // part, also one that has done its steps), and the next round starts.
  void finish_allreduce(double t) {
    std::vector<float*> params;
    for (auto& p : peers_) params.push_back(p.train->model()->params());
    ring_allreduce::average(params, dim_);
    for (uint32_t i = 0; i < n_; ++i) {
      const uint64_t b = ring_->bytes_sent(i);
      net_stats_.bytes_sent += b;
      net_stats_.msgs_sent += ring_->messages_per_peer();
      net_stats_.peer_bytes_sent[i] += b;
      net_stats_.peer_bytes_received[(i + 1) % n_] += b;
      ar_counts_[i].bytes_sent += b;
      ar_counts_[i].msgs_sent += ring_->messages_per_peer();
      ar_counts_[(i + 1) % n_].bytes_received += b;
      ar_counts_[(i + 1) % n_].msgs_received += ring_->messages_per_peer();
    }
    round_arrived_ = round_expected_ = 0;
    round_ready_ = t;
    for (uint32_t i = 0; i < n_; ++i)
      if (may_step(i)) schedule_cycle(i, t), next_cycle_[i] = t, ++round_expected_;
  }
  // A round at the start: the slowest peer's step, then the all-reduce.
  double allreduce_round_s() const {
    return *std::max_element(step_cost_.begin(), step_cost_.end()) + ring_->seconds(links_, 0.0);
  }

  void collect_verification() {
    auto& v = sum_.verification;
    v.enabled = c_.verify_rate > 0;
    if (checks_) v.segment_check_wait_seconds = checks_->waited_s();
    std::map<uint32_t, std::map<uint32_t, peer_evidence>> testimony;
    for (uint32_t i = 0; i < n_; ++i) {
      v.step_seconds += peers_[i].train->step_seconds();
      v.commit_seconds += peers_[i].train->commit_seconds();
      if (!peers_[i].verifier) continue;
      self_->send(peers_[i].verifier, stats_atom::value);
      sched_.run();
      self_->receive(
          [&](verifier_stats& s) {
            v.commits += s.commits_sent;
            v.challenges += s.challenges;
            v.checks_passed += s.passed;
            v.checks_failed += s.failed;
            v.segment_commits += s.segment_commits_sent;
            v.segments_challenged += s.segments_challenged;
            v.segments_passed += s.segments_passed;
            v.segments_failed += s.segments_failed;
            v.segment_replay_seconds += s.segment_replay_seconds;
            v.segment_checks_waited += s.segment_checks_waited;
            v.segment_checks_dropped += s.segment_checks_dropped;
            v.segment_commits_refused += s.segment_commits_refused;
            v.segment_unavailable_answers += s.segment_unavailable_answers;
            v.evidence_sent += s.evidence_sent;
            v.evidence_confirmed += s.evidence_confirmed;
            v.evidence_rejected += s.evidence_rejected;
            v.evidence_unverifiable += s.evidence_unverifiable;
            v.frames_rejected += s.frames_rejected;
            v.challenges_completed += s.challenges_completed;
            v.challenges_missed += s.challenges_missed;
            v.challenges_late += s.challenges_late;
            v.challenges_expired += s.challenges_expired;
            v.challenges_abandoned += s.challenges_abandoned;
            v.misses_announced += s.misses_announced;
            v.miss_claims_received += s.miss_claims_received;
            v.misses_confirmed += s.misses_confirmed;
            v.misses_rejected += s.misses_rejected;
            v.misses_ignored += s.misses_ignored;
            v.max_answer_s = std::max(v.max_answer_s, s.max_answer_s);
            for (auto& [peer, n] : s.misses_by_prover) v.misses_by_prover[peer] += n;
            v.check_seconds += s.check_seconds;
            for (auto& [peer, e] : s.ledger) v.verified_gflop += e.verified_flops / 1e9;
            testimony[i] = reputation_of(s).all();
            for (auto& [peer, step] : s.caught) {
              auto it = v.first_caught_step.find(peer);
              if (it == v.first_caught_step.end() || step < it->second) v.first_caught_step[peer] = step;
            }
          },
          caf::after(std::chrono::seconds(0)) >> [&] { no_answer(i, "verification statistics"); });
    }
    v.rewards = combine_testimony(testimony);
  }

  void collect_offload() {
    auto& o = sum_.offload;
    o.enabled = off_.on;
    if (!off_.on) return;
    o.helper = off_.helper;
    for (uint32_t i = 0; i < n_; ++i) {
      if (!peers_[i].verifier) continue;
      self_->send(peers_[i].verifier, stats_atom::value);
      sched_.run();
      self_->receive(
          [&](verifier_stats& s) {
            if (i == off_.helper) o.tasks_served = s.tasks_served;
            if (!peers_[i].offload) return;
            auto q = off_stats_[i];
            q.peer = i;
            q.steps = static_cast<uint64_t>(done_[i]);
            q.steps_per_s = q.finished_s > 0 ? static_cast<double>(q.steps) / q.finished_s : 0;
            auto it = s.ledger.find(off_.helper);
            q.helper_credit_gflop = it == s.ledger.end() ? 0 : it->second.verified_flops / 1e9;
            q.helper_trusted = peers_[i].offload->helper_trusted();
            o.peers.push_back(q);
          },
          caf::after(std::chrono::seconds(0)) >> [&] { no_answer(i, "offload statistics"); });
    }
  }

  [[noreturn]] static void no_answer(uint32_t peer, const char* what) {
    throw std::logic_error("simulation: peer " + std::to_string(peer) + " did not answer for " + what);
  }

  peer_eval evaluate_peer(uint32_t i, const std::vector<double>& mean, int64_t begin, int64_t count) {
    peer_eval pe;
    self_->send(peers_[i].shard, eval_atom::value, begin, count);
    self_->send(peers_[i].gossip, stats_atom::value);
    sched_.run();
    for (int k = 0; k < 2; ++k)
      self_->receive([&](eval_report& r) { pe.train = r; }, [&](gossip_counters& g) { pe.gossip = g; },
                     caf::after(std::chrono::seconds(0)) >> [&] { no_answer(i, "an evaluation"); });
    add_counter_base(i, pe.gossip);
    if (allreduce_) {  // the all-reduce's traffic, which the driver moves
      pe.gossip.bytes_sent += ar_counts_[i].bytes_sent;
      pe.gossip.msgs_sent += ar_counts_[i].msgs_sent;
      pe.gossip.bytes_received += ar_counts_[i].bytes_received;
      pe.gossip.msgs_received += ar_counts_[i].msgs_received;
    }
    // The actors are idle now, so reading the parameters is safe.
    const float* x = peers_[i].train->synced_model().params();
    double d2 = 0;
    for (int64_t k = 0; k < dim_; ++k) {
      double d = x[k] - mean[static_cast<size_t>(k)];
      d2 += d * d;
    }
    pe.consensus = std::sqrt(d2);
    return pe;
  }

  // Every peer on the test samples [begin, begin + count) (trainer::evaluate;
  // count 0: all of them).
  void evaluate(double t, bool record = true, int64_t begin = 0, int64_t count = 0) {
    std::vector<double>& mean = eval_mean_;  // kept: no allocation per evaluation
    mean.assign(static_cast<size_t>(dim_), 0.0);
    for (auto& p : peers_) {
      const float* x = p.train->synced_model().params();
      for (int64_t k = 0; k < dim_; ++k) mean[static_cast<size_t>(k)] += x[k];
    }
    for (auto& v : mean) v /= n_;
    double acc_sum = 0, acc_min = 1, loss_sum = 0, test_loss_sum = 0, cons_sum = 0, honest_acc = 0;
    uint32_t honest = 0;
    uint64_t bytes = 0, rejected = 0;
    for (uint32_t i = 0; i < n_; ++i) {
      peer_eval pe = evaluate_peer(i, mean, begin, count);
      if (record) {
        write_metrics_line(metrics_, t, i, steps_per_epoch_[i], pe, is_attacker_[i]);
        metrics_.flush();  // a kill -9 loses no evaluation already made
      }
      acc_sum += pe.train.test_accuracy;
      if (!is_attacker_[i]) honest_acc += pe.train.test_accuracy, ++honest;
      last_gossip_[i] = std::move(pe.gossip);
      acc_min = std::min(acc_min, static_cast<double>(pe.train.test_accuracy));
      loss_sum += pe.train.train_loss;
      test_loss_sum += pe.train.test_loss;
      cons_sum += pe.consensus;
      bytes += last_gossip_[i].bytes_sent;
      rejected += last_gossip_[i].rejected_total();
    }
    sum_.honest_test_accuracy = honest ? honest_acc / honest : 0.0;
    if (record)
      curve_ << tsv_number(t) << '\t' << bytes << '\t' << tsv_number(acc_sum / n_) << '\t' << tsv_number(acc_min)
             << '\t' << tsv_number(loss_sum / n_) << '\t' << tsv_number(cons_sum / n_) << std::endl;
    sum_.final_test_accuracy = acc_sum / n_;
    sum_.min_test_accuracy = acc_min;
    sum_.final_test_loss = test_loss_sum / n_;
    sum_.consensus_distance = cons_sum / n_;
    sum_.rejected = rejected;
    report(t, true);
  }

  void report(double t, bool evaluation) {
    if (!on_progress_) return;
    run_progress p;
    p.fraction = static_cast<double>(steps_sum_) / static_cast<double>(all_steps_);
    double ep = 0;
    for (uint32_t i = 0; i < n_; ++i) ep += static_cast<double>(done_[i]) / static_cast<double>(steps_per_epoch_[i]);
    p.epoch = ep / n_;
    p.steps = static_cast<uint64_t>(steps_sum_);
    p.loss = loss_recent_;
    p.accuracy = sum_.final_test_accuracy > 0 ? sum_.final_test_accuracy : -1;
    p.bytes_sent = net_stats_.bytes_sent + net_base_.bytes_sent;
    p.virtual_s = t;
    p.wall_s = wall_s();
    p.evaluation = evaluation;
    p.device = devices_label_;
    on_progress_(p);
  }

  const RunConfig& c_;
  const std::string out_dir_;
  const std::function<void(const run_progress&)>& on_progress_;
  const uint32_t n_;
  const std::atomic<int>* const stop_;  // SIGINT/SIGTERM once non-zero (may be null)
  const std::vector<resolved_device> devices_;  // each peer's (run/peer_device.hpp)
  const std::string devices_label_;
  const offload_setup off_;  // sim_offload_setup
  const std::chrono::steady_clock::time_point wall0_ = std::chrono::steady_clock::now();
  // Declared before the actor system: the network actor writes to both.
  event_queue queue_;
  bool frames_at_step_end_ = false;  // sim.frames_leave
  event_queue offload_q_;  // offloaded products in flight (sim_network.hpp)
  network_stats net_stats_;
  link_model links_;  // what the network was built from (summary.json's links)
  caf::actor_system_config sys_cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  caf::scoped_actor self_;
  // After the actor system: gone before it (ready holds an actor handle).
  const size_t cores_;  // the cores this run may use (check_worker's thread when >= 2)
  std::unique_ptr<check_worker> checks_;  // verification's segment checks (verify.scheme = segment)
  std::map<uint64_t, std::function<void()>> check_ready_;  // by check id: what makes its result usable
  double last_event_s_ = 0;  // the virtual time of the latest step or frame
  transport_actor net_;
  std::vector<peer_handles> peers_;
  std::vector<std::vector<uint32_t>> overlay_;
  std::vector<uint32_t> attackers_;
  std::vector<bool> is_attacker_;
  std::vector<gossip_counters> last_gossip_;  // each peer's counters at the latest evaluation
  uint64_t cycle_ns_ = 0;                     // wall time of the peers' cycles (mix, step, publish)
  std::vector<int64_t> steps_per_epoch_, total_steps_, done_;
  std::vector<double> step_cost_, next_cycle_;  // next_cycle_: each peer's next cycle (later than 0 when resumed)
  // Counters at the checkpoints this run resumed from (zero for a fresh one).
  std::vector<gossip_counters> counter_base_;
  network_stats net_base_;

  double next_eval_ = 0;
  std::vector<double> eval_mean_;  // evaluate()'s mean of the peers' parameters
  std::shared_ptr<std::vector<float>> grad_scratch_;  // the host peers' one gradient buffer
  bool resumed_ = false;
  double step_s_ = 0, loss_recent_ = 0;
  int64_t dim_ = 0, all_steps_ = 0, steps_sum_ = 0;
  std::ofstream metrics_, curve_;
  std::shared_ptr<const Dataset> test_;
  sim_summary sum_;
  verify_timing timing_;  // deadline and retention (verification on)
  double step_flops_ = 0;  // the modelled FLOPs of one step
  std::vector<double> debt_s_;  // each peer's compute for others, not yet charged to its steps
  std::vector<offload_peer_summary> off_stats_;
  // gossip.mode = allreduce: the ring, this round's peers (expected, done
  // stepping, the latest to finish) and each peer's all-reduce traffic.
  const bool allreduce_;
  std::optional<ring_allreduce> ring_;
  uint32_t round_expected_ = 0, round_arrived_ = 0;
  double round_ready_ = 0;
  std::vector<gossip_counters> ar_counts_ = std::vector<gossip_counters>(n_);
};

}  // namespace

sim_summary run_simulation(const RunConfig& requested, const std::string& out_dir,
                           const std::function<void(const run_progress&)>& on_progress,
                           const std::string& resume_dir, const std::atomic<int>* stop, size_t cores) {
  // murmur sim and sweep warn about unused keys; this refuses unapplied trust keys for every caller.
  check_key_usage(requested, run_host::sim, "the run config");
  // verify.rate = auto and verify.scheme = auto decided for this run; config.toml keeps them as asked.
  const verification_choice verify = choose_verification(requested);
  const RunConfig c = with_verification(requested, verify);
  if (c.stages > 1) {
    // Every node's device, before anything loads: train.device = cuda without a GPU ends here.
    const uint32_t nodes = static_cast<uint32_t>(c.stages * c.replicas + c.spares);
    std::vector<std::string> devices;
    for (uint32_t i = 0; i < nodes; ++i) devices.push_back(peer_device_of(c, i).label);
    sim_summary s = run_pipeline_simulation(requested, out_dir, on_progress, resume_dir, stop);
    s.devices = std::move(devices);
    s.verify = verify;
    write_summary(out_dir, c, s);
    return s;
  }
  if (c.replicas > 1 || c.spares > 0)
    throw std::invalid_argument("pipeline.replicas and pipeline.spares need pipeline.stages > 1 "
                                "(data parallelism alone: sim.peers)");
  const auto wall0 = std::chrono::steady_clock::now();
  // Every peer's device, before anything loads or is written: train.device = cuda without a GPU ends here.
  // Offloading peers train on the CPU (run/peer_device.hpp).
  offload_setup off = sim_offload_setup(c);
  std::vector<resolved_device> devices;
  for (uint32_t i = 0; i < static_cast<uint32_t>(c.peers); ++i) devices.push_back(peer_device_of(c, i, off.offloads(i)));
  set_blas_threads(1);  // one simulation thread; peers take turns on it
  std::filesystem::create_directories(out_dir);
  const run_data data = load_run_data(c, on_progress ? &std::cerr : nullptr);
  sim_summary s;
  {
    // The driver reads and checks the checkpoints of a resumed run: one it
    // refuses leaves the run directory as it was.
    driver d(c, out_dir, data, on_progress, resume_dir, stop, devices, std::move(off),
             cores > 0 ? cores : cores_given());
    std::ofstream(out_dir + "/config.toml") << to_toml(requested);
    s = d.run();
  }
  s.verify = verify;
  s.wall_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  write_summary(out_dir, c, s);
  return s;
}

}  // namespace murmur
