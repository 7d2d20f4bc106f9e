// shard_actor: trains one peer's model on its data shard. Each `cycle` is
// one local step, bracketed by the gossip rounds: every K = gossip_every
// steps it first asks the gossip actor to mix what has arrived, then steps,
// then asks it to publish (publish_first: publishes, then steps). It answers the cycle only when all of that is
// done, so whoever drives it (a simulation clock or a real-time loop)
// decides when the next step happens.
#pragma once
#include <memory>

#include "actors/messages.hpp"
#include "actors/offload_step.hpp"
#include "actors/verifier_actor.hpp"

namespace murmur {
class segment_recorder;
}

namespace murmur {

// With a verifier, each step's commitment (trainer::last_commit) goes to it
// right after the step, before the gossip round.
// With `offload` (which must drive the same trainer, and needs the
// verifier), the step runs through it: each product it yields is sent to
// the helper through the verifier (offload_atom) and the step waits for the
// outcome (synchronous offload). Evaluations and installs that arrive while
// a step is under way are answered once it is done.
// With `segments` (verify.scheme = segment) no per-step commitment is sent:
// each step is recorded into it instead, and each segment it closes goes to
// the verifier (segcommit_atom) as this peer's commitment.
// publish_first (gossip.overlap): the publish comes before the step (mix,
// publish, step), so the frames can travel while the step computes; they
// carry the mixed parameters without this step's update, under the step
// number the publish after it would have had. The commitment still follows the step.
shard_actor spawn_shard(caf::actor_system& sys, std::shared_ptr<trainer> t, int64_t gossip_every,
                        gossip_actor gossip, verifier_actor verifier = {},
                        std::shared_ptr<offload_step> offload = nullptr,
                        std::shared_ptr<segment_recorder> segments = nullptr, bool publish_first = false);

}  // namespace murmur
