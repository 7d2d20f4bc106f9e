// run_pipeline_host: with pipeline.stages > 1, a `murmur peer`
// process is node peer.index of a pipeline: a stage host (node r * S + s:
// stage s of replica r) or a spare (node R * S + j) that holds the stages' checkpoints and takes
// over a stage whose heartbeats stop (actors/stage_actor.hpp). The same
// stage actor as `murmur sim`, with ZeroMQ (CurveZMQ) underneath instead of
// the simulated network, and the wall clock instead of the virtual one.
//
// Layout (static; no --join, no membership protocol): machine i is the
// i-th key line of peer.authorized_peers, counting from 0 and skipping
// comment and blank lines, and the process with peer.index = i. Lines
// 0 .. N-1 (N = stages * replicas + spares) must each carry that machine's
// tcp://HOST:PORT; later lines, if any, may connect but hold no node (their
// frames are dropped and counted). peer.count must be N, and this
// process's own key (peer.keys) must be the one on line peer.index. Node n
// (stage s of replica r is r * S + s; spares follow) runs on machine
// plan.machine_of[n] (run/pipeline_plan.hpp): n itself with
// pipeline.placement = index; with auto the layout every process computes
// alike from the config (declared speeds and links) and the model. Frames,
// checkpoints and take-overs name nodes and stages, never machines. Every
// node reads the data set (a spare may take over stage 0, which draws the
// batches).
//
// Start: with placement = index the layout is checked and the port bound
// before the data loads, so a mistake or a port in use (std::runtime_error
// naming the endpoint) is reported at once (with auto the data loads first:
// the layout needs the model's layer costs); it prints the layout (split,
// peer.index of every stage, predicted ms per batch of it and of the index
// layout), the same line in every process; pipeline frames that come while it loads are held for
// the stage actor (gossip frames, hybrid only, are dropped until its gossip
// actor exists: summary.json's gossip_frames_before_start, not rejections).
// Interrupted while loading: 128 + the signal, nothing written but config.toml.
//
// A process ends
//   0  when its stage has done all steps (a spare: when every stage it
//      watches has reported all steps done, or it took one over and finished
//      it), after handing its last frames to ZeroMQ and lingering (up to 2 s)
//      until they are out: the next stage needs the final gradients;
//   1  when its stage failed or was taken over while it still ran, or when
//      nothing moved (no step done, no heartbeat heard) for
//      5 s + 10 x (peer.heartbeat_ms + peer.suspect_ms + peer.dead_ms);
//   128 + the signal on SIGINT/SIGTERM (interrupted: 130, 143), after the
//      step in progress, with summary.json marked interrupted and its
//      stage's checkpoint at the last step done (pipeline nodes do not
//      --resume; a spare takes over from the checkpoints it holds).
// It writes OUT/summary.json (node, role, replica, stage, steps, final loss,
// take-over / roll-back events with wall times, frames rejected, the
// layout: placement, split, stage_machines, predicted_batch_s,
// predicted_index_batch_s, and batch_s, its stage's measured time per batch, ...),
// OUT/events.jsonl, OUT/checkpoints/stage-R-S.ckpt (every checkpoint.every
// steps and once more at the end: the final parameters), and prints plain
// log lines: progress every train.eval_every steps (default: 20 per run),
// take-over, roll-back, resumed, error, each with its unix_ms (--quiet
// drops the progress lines), each starting "node N", or "node N (LABEL)"
// where its authorized_peers line has a label.
// Hybrid (pipeline.replicas = R > 1): node r * S + s hosts stage s of
// replica r (replica r trains on shard r) and gossips with stage s of the
// neighbouring replicas (gossip.topology over the replicas) at every step
// boundary, as in `murmur sim`; a spare that takes a stage over gossips in
// its place. summary.json counts the gossip (gossip_bytes_sent, ...).
// Not supported (refused with a message): pipeline.crash_stage (kill the
// process instead), gossip.mode = delta.
#pragma once
#include <atomic>
#include <string>

#include "run/run_config.hpp"

namespace murmur {

struct pipeline_host_options {
  std::string listen;  // tcp://ADDR:PORT this node binds
  std::string out;     // run directory
  bool quiet = false;  // no progress lines
};

// Returns the process exit code above; configuration errors throw ConfigError.
int run_pipeline_host(const RunConfig& c, const pipeline_host_options& o, const std::atomic<int>& stop);

}  // namespace murmur
