#include "actors/peer.hpp"

namespace murmur {

peer_handles spawn_peer(caf::actor_system& sys, const peer_settings& s,
                        std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
                        std::shared_ptr<const Dataset> test, transport_actor transport,
                        const peer_verification* v, const std::function<void(trainer&)>& prepare) {
  peer_handles h;
  auto data = train;
  h.train = std::make_shared<trainer>(s.train, s.model, std::move(train), std::move(shard), std::move(test), s.attack);
  if (prepare) prepare(*h.train);
  h.gossip = spawn_gossip(sys, s, h.train->model(), transport);
  if (v) {
    auto& model = *h.train->model();
    auto log = std::make_shared<step_transcript_log>(s.id, model, v->keep_steps);
    h.train->enable_transcripts(log, v->cheat, v->replay_shard, v->settings.seed ^ (0x63686561ULL + s.id));
    verifier_context ctx{s.id, s.neighbours, v->neighbours_of, v->shard_of, data, log, committed_layers(model), v->now_s,
                         s.names};
    h.verifier = spawn_verifier(sys, std::move(ctx), v->settings, transport, h.gossip);
  }
  h.shard = spawn_shard(sys, h.train, s.train.gossip_every, h.gossip, h.verifier);
  return h;
}

}  // namespace murmur
