// gossip_actor: one peer's gossip (see gossip_state.hpp for the algorithm).
// It touches the shared model's parameters only inside mix and publish,
// which the shard actor requests and waits for; frames that arrive in
// between only update neighbour estimates.
#pragma once
#include <memory>

#include "actors/messages.hpp"

namespace murmur {

gossip_actor spawn_gossip(caf::actor_system& sys, const peer_settings& s,
                          std::shared_ptr<Sequential> model, transport_actor transport);

}  // namespace murmur
