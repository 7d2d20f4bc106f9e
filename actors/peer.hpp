// A peer = a shard actor (training) + a gossip actor (averaging), sharing
// one model. Used alike by the simulation and by LAN peer processes.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/gossip_actor.hpp"
#include "actors/segment_check_runner.hpp"
#include "actors/shard_actor.hpp"

namespace murmur {

struct peer_handles {
  std::shared_ptr<trainer> train;  // read it only while the peer's actors are idle
  gossip_actor gossip;
  shard_actor shard;
  verifier_actor verifier;         // invalid when verification and offload are off
  std::shared_ptr<offload_step> offload;  // this peer's offloaded steps (null: it does not offload)
};

// Verification of one peer (verifier_actor.hpp): on when given.
struct peer_verification {
  verifier_settings settings;
  size_t keep_steps = 8;  // own step transcripts kept for verifiers
  std::function<std::vector<uint32_t>(uint32_t)> neighbours_of;
  std::function<std::vector<int64_t>(uint32_t)> shard_of;
  cheat_settings cheat;                // this peer's compute cheat (attackers)
  std::vector<int64_t> replay_shard;   // whose batches a replay cheat uses
  std::function<double()> now_s;       // the verifier's clock (null: steady clock)
  // verify.scheme = segment (settings.segment_steps > 0): the neighbours'
  // honest replays and a step's FLOPs (verifier_context). Honest peers then
  // record no step transcripts; a cheater keeps two, only for its cheat.
  std::function<std::unique_ptr<segment_replay>(uint32_t)> replay_of;
  double step_flops = 0;
  std::shared_ptr<segment_check_runner> check_runner;  // where its checks run (null: its replay actor)
  // verify.scheme = segment: the directory of this peer's boundary_store
  // (its own boundary states, on disk until challenged); "" keeps them in
  // memory.
  std::string boundary_dir;
};

// Offload (offload_step.hpp) in a run where some peer offloads: every peer
// gets a verifier (it may be asked to compute products, and the offloading
// peer checks answers with it), even with verification off; `plan` is set
// on the peers that offload. The helper's cheat (tests, attacks) answers
// offloaded products wrongly (verifier_settings::matmul_cheat).
struct peer_offload {
  std::optional<offload_plan> plan;
  int rounds = 8;  // Freivalds rounds on each answer
  compute_cheat cheat = compute_cheat::none;
  double cheat_eps = 1e-3;
  uint64_t seed = 0;  // the verifier's random stream when verification is off
  size_t max_frame_bytes = 64u << 20;
};

// `prepare`, when given, runs on the new trainer before the gossip actor is
// spawned (a resumed run restores its checkpoint there), so the gossip state
// starts from the parameters the peer will train on.
peer_handles spawn_peer(caf::actor_system& sys, const peer_settings& s,
                        std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
                        std::shared_ptr<const Dataset> test, transport_actor transport,
                        const peer_verification* verification = nullptr,
                        const std::function<void(trainer&)>& prepare = {},
                        const peer_offload* offload = nullptr);

}  // namespace murmur
