// The settings of one peer's actors, from a run config: the same mapping for
// simulated peers and for `murmur peer` processes.
#pragma once
#include <vector>

#include "actors/peer_settings.hpp"
#include "actors/step_transcript.hpp"
#include "sim/run_config.hpp"

namespace murmur {

gossip_mode gossip_mode_of(const RunConfig& c);
robust_rule robust_rule_of(const RunConfig& c);
// peer_count is how many shards the data is cut into (sim.peers in the
// simulation, peer.count for a LAN peer).
peer_settings peer_settings_from_config(const RunConfig& c, uint32_t id, uint32_t peer_count,
                                        std::vector<uint32_t> neighbours, int64_t total_steps);
// The compute cheat a peer's settings make it commit (none for honest peers).
cheat_settings cheat_of(const peer_settings& s);

}  // namespace murmur
