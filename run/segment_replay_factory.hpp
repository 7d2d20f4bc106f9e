// segment_replay_factory: a verifier's replays of its neighbours'
// segments (verify.scheme = segment), built the same way by both hosts.
// Every peer of a run knows every peer's settings (the shared config with
// peer.index = p), shard and static overlay neighbours; the segment's start
// boundary then sets the neighbours the prover actually had. Replays run on
// the CPU, honest (no attack), and never record step transcripts.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "actors/segment_replay.hpp"
#include "run/run_config.hpp"
#include "tensor/dataset.hpp"

namespace murmur {

using segment_replay_maker = std::function<std::unique_ptr<segment_replay>(uint32_t prover)>;

// peers: how many shards the data is cut into (sim.peers, peer.count).
segment_replay_maker segment_replay_factory(const RunConfig& c, uint32_t peers,
                                            std::vector<std::vector<uint32_t>> overlay,
                                            std::vector<std::vector<int64_t>> shards,
                                            std::shared_ptr<const Dataset> train, std::shared_ptr<const Dataset> test);

}  // namespace murmur
