// gossip_actor: one peer's gossip (see gossip_state.hpp for the algorithm).
// It touches the shared model's parameters only inside mix and publish,
// which the shard actor requests and waits for; frames that arrive in
// between only update neighbour estimates.
#pragma once
#include <memory>

#include "actors/messages.hpp"

namespace murmur {

class trainer;
class segment_recorder;

gossip_actor spawn_gossip(caf::actor_system& sys, const peer_settings& s,
                          std::shared_ptr<Sequential> model, transport_actor transport);
// A data-parallel peer's gossip, over its trainer's parameters: where the
// trainer steps on a backend (a GPU) and the gossip settings allow it
// (gossip_state::backend_unsupported), gossip runs in backend mode on a
// stream of its own and only frames cross to the host; otherwise on the
// host mirror, synced at each mix and publish.
// With `segments` (verify.scheme = segment), every gossip state change is
// recorded into it, and its first segment opens here.
gossip_actor spawn_gossip(caf::actor_system& sys, const peer_settings& s, std::shared_ptr<trainer> train,
                          transport_actor transport, std::shared_ptr<segment_recorder> segments = nullptr);

}  // namespace murmur
