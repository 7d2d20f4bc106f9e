// offload_setup: who hands its products to whom (offload.* keys), resolved
// against the run's peers, and each peer's part in it. Same mapping for
// simulated peers and `murmur peer` processes (docs/trust.md, Offload).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/peer.hpp"
#include "run/run_config.hpp"

namespace murmur {

struct offload_setup {
  bool on = false;
  uint32_t helper = 0;
  std::vector<uint32_t> offloaders;  // sorted, without the helper
  bool offloads(uint32_t peer) const;
};

// A comma-separated list of peer indices below peer_count ("" = none);
// ConfigError naming the key otherwise.
std::vector<uint32_t> peer_index_list(const std::string& key, const std::string& text, uint32_t peer_count);

// labels: the authorized_peers labels by index (murmur peer; empty in the
// simulator). step_costs: each peer's modelled step cost (the simulator;
// null in murmur peer, which refuses offload.peers = "slowest": a process
// cannot know it is the slowest). ConfigError, one line, for a helper that
// is no peer of the run, an offloader out of range, or a peer offloading
// to itself.
offload_setup offload_setup_of(const RunConfig& c, uint32_t peer_count, const std::vector<std::string>& labels,
                               const std::vector<double>* step_costs);

// Peer `id`'s part: nullopt when offload is off; else every peer answers
// products, and the offloaders also get a plan. timeout_s: how long an
// offloader waits for an answer (0 = until it comes).
std::optional<peer_offload> peer_offload_of(const RunConfig& c, const offload_setup& o, uint32_t id, uint64_t seed,
                                            double timeout_s);

}  // namespace murmur
