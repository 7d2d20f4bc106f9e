#include "actors/peer.hpp"

namespace murmur {

peer_handles spawn_peer(caf::actor_system& sys, const peer_settings& s,
                        std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
                        std::shared_ptr<const Dataset> test, transport_actor transport) {
  peer_handles h;
  h.train = std::make_shared<trainer>(s.train, s.model, std::move(train), std::move(shard), std::move(test), s.attack);
  h.gossip = spawn_gossip(sys, s, h.train->model(), std::move(transport));
  h.shard = spawn_shard(sys, h.train, s.train.gossip_every, h.gossip);
  return h;
}

}  // namespace murmur
