#include "actors/peer.hpp"

#include "actors/segment_recorder.hpp"

namespace murmur {

namespace {

// A peer that trains on a backend checks (and answers offloaded products)
// on it too, on a stream of its own (the verifier actor runs beside the
// trainer, as the gossip actor does).
std::shared_ptr<compute_backend> checking_backend(trainer& t) {
  if (!t.backend()) return nullptr;
  return t.backend()->another_stream();
}

}  // namespace

peer_handles spawn_peer(caf::actor_system& sys, const peer_settings& s,
                        std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
                        std::shared_ptr<const Dataset> test, transport_actor transport,
                        const peer_verification* v, const std::function<void(trainer&)>& prepare,
                        const peer_offload* off) {
  peer_handles h;
  auto data = train;
  h.train = std::make_shared<trainer>(s.train, s.model, std::move(train), std::move(shard), std::move(test), s.attack);
  if (prepare) prepare(*h.train);
  const bool segmented = v && v->settings.segment_steps > 0;
  std::shared_ptr<segment_recorder> segments;
  // Per-step state digests (a boundary hash every step, 3-4 steps' worth of
  // work) answer a bisection only once a segment failed: in the simulation
  // the cheaters keep them (an honest segment replays and needs none; a
  // real prover would recompute them by replaying its own segment).
  // One store (one unlinked file) for our own boundaries and the start
  // states our segment checks keep there while they replay them.
  auto store = segmented && !v->boundary_dir.empty() ? std::make_shared<boundary_store>(v->boundary_dir) : nullptr;
  if (segmented)
    segments = std::make_shared<segment_recorder>(v->settings.segment_steps, v->cheat.kind != compute_cheat::none,
                                                  store);
  h.gossip = spawn_gossip(sys, s, h.train, transport, segments);
  if (v) {
    auto& model = *h.train->model();
    std::shared_ptr<step_transcript_log> log;
    if (!segmented || v->cheat.kind != compute_cheat::none) {
      log = std::make_shared<step_transcript_log>(s.id, model, segmented ? 2 : v->keep_steps);
      h.train->enable_transcripts(log, v->cheat, v->replay_shard, v->settings.seed ^ (0x63686561ULL + s.id));
    }
    verifier_context ctx{s.id, s.neighbours, v->neighbours_of, v->shard_of, data, segmented ? nullptr : log,
                         committed_layers(model), v->now_s, s.names, checking_backend(*h.train)};
    ctx.replay_of = v->replay_of;
    ctx.step_flops = v->step_flops;
    ctx.check_runner = v->check_runner;
    ctx.replay_spill = store;
    verifier_settings vs = v->settings;
    if (off) {
      vs.offload_rounds = off->rounds;
      vs.matmul_cheat = off->cheat;
      vs.matmul_cheat_eps = off->cheat_eps;
    }
    h.verifier = spawn_verifier(sys, std::move(ctx), vs, transport, h.gossip);
  } else if (off) {
    // Offload only: no step transcripts, no challenges; answers and checks products.
    verifier_settings vs;
    vs.rate = 0;
    vs.rounds = off->rounds;
    vs.offload_rounds = off->rounds;
    vs.seed = off->seed;
    vs.max_frame_bytes = off->max_frame_bytes;
    vs.matmul_cheat = off->cheat;
    vs.matmul_cheat_eps = off->cheat_eps;
    verifier_context ctx{s.id, s.neighbours, {}, {}, data, nullptr, committed_layers(*h.train->model()), {},
                         s.names, checking_backend(*h.train)};
    h.verifier = spawn_verifier(sys, std::move(ctx), vs, transport, h.gossip);
  }
  if (off && off->plan) h.offload = std::make_shared<offload_step>(h.train, *off->plan);
  h.shard = spawn_shard(sys, h.train, s.train.gossip_every, h.gossip, h.verifier, h.offload, segments,
                        s.gossip.publish_first);
  return h;
}

}  // namespace murmur
