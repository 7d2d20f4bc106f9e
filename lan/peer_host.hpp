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
// from the peers present when it joined. Interrupted while waiting: 130.
//
// Data-parallel: trains its shard (peer.index of peer.count) until
// train.epochs are done or stop turns true (SIGINT/SIGTERM: it leaves the
// membership gracefully), and writes into out: config.toml, metrics.jsonl
// (one line per evaluation) and summary.json. Prints its start line, the
// state transfer, progress (unless quiet) and a closing line to stdout.
// Returns the process exit code; configuration errors throw ConfigError.
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
};

int run_peer_host(const RunConfig& c, const peer_host_options& o, const std::atomic<bool>& stop);

}  // namespace murmur
