// A peer = a shard actor (training) + a gossip actor (averaging), sharing
// one model. Used alike by the simulation and by LAN peer processes.
#pragma once
#include <memory>

#include "actors/gossip_actor.hpp"
#include "actors/shard_actor.hpp"

namespace murmur {

struct peer_handles {
  std::shared_ptr<trainer> train;  // read it only while the peer's actors are idle
  gossip_actor gossip;
  shard_actor shard;
};

peer_handles spawn_peer(caf::actor_system& sys, const peer_settings& s,
                        std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
                        std::shared_ptr<const Dataset> test, transport_actor transport);

}  // namespace murmur
