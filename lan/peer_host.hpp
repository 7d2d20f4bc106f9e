// run_peer_host: one `murmur peer` process on a LAN machine, the
// real-network counterpart of sim/simulation.hpp. The same shard and gossip
// actors as the simulation, with ZeroMQ (CurveZMQ) underneath, the wall
// clock instead of the virtual one, and a membership actor for joining,
// failure detection and state transfer (a peer with --join contacts first
// pulls the current parameters from live members).
//
// With pipeline.stages > 1 the process is a pipeline node instead
// (lan/pipeline_host.hpp; --join is ignored there, with a warning).
//
// Start (lan/peer_rendezvous.hpp): a --join endpoint missing from the
// allowlist is a ConfigError, a port in use or a contact where nothing
// listens within peer.start_timeout_ms a std::runtime_error naming it, all
// before the data loads; then it trains only once peer.min_peers are live
// (peer.on_start_timeout decides what the timeout does), pulling the state
// from the peers present when it joined (unless resumed, see below).
// Interrupted while waiting: 128 + the signal, nothing written but config.toml.
//
// Data-parallel: trains its shard (peer.index of peer.count) until
// train.epochs are done, run.stop_after steps are (outcome "stopped"), or
// stop turns non-zero (SIGINT/SIGTERM: checkpoint, then it leaves the
// membership gracefully; outcome "interrupted"), and writes into out:
// config.toml, metrics.jsonl (one line per evaluation, flushed), summary.json
// and, every checkpoint.every steps and at a stop signal,
// checkpoints/peer-N.ckpt (lan/peer_checkpoint.hpp). resume: restart from
// that checkpoint in that run directory (no state transfer from donors: the
// checkpoint's parameters, optimizer state and step belong together;
// metrics.jsonl is appended to, counters continue). Prints its start line,
// the state transfer, progress (unless quiet) and a closing line to stdout.
// Returns the process exit code: 0, or 128 + the signal when interrupted;
// configuration errors throw ConfigError, a bad checkpoint checkpoint_error.
#pragma once
#include <atomic>
#include <string>
#include <vector>

#include "run/run_config.hpp"

namespace murmur {

struct peer_host_options {
  std::string listen;             // tcp://ADDR:PORT this process binds (":*" picks a port)
  std::string out;                // run directory
  std::vector<std::string> join;  // contacts: tcp://HOST:PORT of live peers
  bool quiet = false;             // no progress lines
  std::string resume;             // a run directory whose checkpoints/peer-N.ckpt to continue ("" = fresh)
};

// stop: the SIGINT/SIGTERM number once one came, else 0 (main owns it).
int run_peer_host(const RunConfig& c, const peer_host_options& o, const std::atomic<int>& stop);

}  // namespace murmur
