// The settings of one peer's actors, from a run config: the same mapping for
// simulated peers and for `murmur peer` processes.
#pragma once
#include <vector>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "actors/peer.hpp"
#include "actors/peer_settings.hpp"
#include "actors/step_transcript.hpp"
#include "run/run_config.hpp"
#include "run/verify_timing.hpp"

namespace murmur {

gossip_mode gossip_mode_of(const RunConfig& c);
// data.crop_padding / data.flip, with the run-wide augmentation seed.
augment_settings augment_of(const RunConfig& c);
robust_rule robust_rule_of(const RunConfig& c);
// peer_count is how many shards the data is cut into (sim.peers in the
// simulation, peer.count for a LAN peer).
peer_settings peer_settings_from_config(const RunConfig& c, uint32_t id, uint32_t peer_count,
                                        std::vector<uint32_t> neighbours, int64_t total_steps);
// The compute cheat a peer's settings make it commit (none for honest peers).
cheat_settings cheat_of(const peer_settings& s);
// Verification of peer s.id when verify.rate > 0, else nullopt: shards are
// every peer's samples (a verifier checks a prover's own), evidence about a
// prover goes to neighbours_of(prover), seed draws the challenges, timing
// gives the deadline and retention, now_s the clock deadlines run on.
// verify.scheme = segment: the prover's boundary states go to a
// boundary_store in the temporary directory ($TMPDIR, else /tmp), a file
// with no name that lives as long as the peer.
std::optional<peer_verification> peer_verification_from_config(
    const RunConfig& c, const peer_settings& s, const std::vector<std::vector<int64_t>>& shards,
    std::function<std::vector<uint32_t>(uint32_t)> neighbours_of, uint64_t seed, const verify_timing& timing,
    std::function<double()> now_s);
// The same with the shards shared (the simulator: one copy for all its
// peers' verifiers, not one each, which is O(N^2) in memory and set-up).
std::optional<peer_verification> peer_verification_from_config(
    const RunConfig& c, const peer_settings& s, std::shared_ptr<const std::vector<std::vector<int64_t>>> shards,
    std::function<std::vector<uint32_t>(uint32_t)> neighbours_of, uint64_t seed, const verify_timing& timing,
    std::function<double()> now_s);

}  // namespace murmur
