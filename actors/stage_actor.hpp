// stage_actor: one peer of a pipeline cluster. It either hosts a stage of a
// pipeline replica (a pipeline_stage, driven op by op), or stands by as a
// spare that holds the stages' checkpoints and takes over a stage that
// stops sending heartbeats.
//
//   transport --deliver(from, frame)--> stage: activations, gradients,
//       checkpoints, heartbeats, take-overs (other frames are counted, not used)
//   stage --wake(node, delay, tag)--> clock --wake(tag)--> stage, `delay`
//       seconds later: after an op's modelled cost (the simulation's virtual
//       clock) or at once (a real machine has already spent the time), and
//       for heartbeat ticks
//   stage --pevent(event)--> observer: steps done, crash, take-over, roll-back
//
// Take-over: each stage checkpoints at step 0 and every checkpoint_every
// steps, keeps its last three checkpoints and sends each to every spare.
// Spare j watches the stages whose index (replica * S + stage) mod spares is
// j; after dead_ticks heartbeat periods without a heartbeat from one, it
// loads that stage's latest checkpoint (checksum checked), bumps the
// replica's generation and tells the replica's other stages, which roll back
// to their own checkpoint of the same step; the micro-batches that were in
// flight, and the steps since that checkpoint, are computed again.
// A spare that has taken a stage no longer watches others.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "actors/pipeline_stage.hpp"

namespace murmur {

using wake_atom = caf::atom_constant<caf::atom("wake")>;
using pevent_atom = caf::atom_constant<caf::atom("pevent")>;
using start_atom = caf::atom_constant<caf::atom("start")>;

enum class wake_tag : uint8_t { op_done = 0, tick = 1 };

struct pipeline_event {
  enum kind_t : uint8_t { step_done, crashed, takeover, rollback, resumed, error } kind = step_done;
  uint16_t replica = 0, stage = 0;
  uint32_t node = 0;
  uint64_t step = 0;        // step_done/resumed: steps done; takeover/rollback: the step resumed from;
                            // crashed: the step in progress
  uint64_t lost_steps = 0;  // rollback/takeover: steps done before, minus the step resumed from
  std::string what;         // error: what went wrong
};
// The event's name as both hosts write it to events.jsonl.
const char* to_string(pipeline_event::kind_t k);

using clock_actor = caf::typed_actor<caf::reacts_to<wake_atom, uint32_t /*node*/, double /*delay_s*/, uint8_t>>;
using pipeline_observer = caf::typed_actor<caf::reacts_to<pevent_atom, pipeline_event>>;

using stage_actor = caf::typed_actor<caf::reacts_to<deliver_atom, uint32_t /*from*/, wire_frame>,
                                     caf::reacts_to<wake_atom, uint8_t>,
                                     caf::reacts_to<start_atom>>;

struct stage_node_settings {
  uint32_t node = 0;
  uint16_t stages = 1, replicas = 1, spares = 0;
  uint64_t seed = 0;                  // recorded in checkpoints
  int64_t checkpoint_every = 0;       // 0: only the step-0 checkpoint (needed to take over at all)
  std::string checkpoint_dir;         // "" = keep checkpoints in memory (and at the spares) only
  double heartbeat_s = 0.25;
  int64_t dead_ticks = 12;            // heartbeat periods of silence before a spare takes over
  uint64_t crash_step = 0;            // fault injection: die halfway through this step (0 = never)
  uint64_t total_steps = 0;           // a spare stops watching a stage that has done them
  std::vector<uint32_t> gossip_neighbours;  // nodes of this stage in the replicas we gossip with
  size_t max_frame_bytes = 64u << 20;
};
// Node numbering: stage s of replica r is node r * stages + s; spare j is
// node replicas * stages + j.
inline uint32_t stage_node(uint16_t replica, uint16_t stage, uint16_t stages) {
  return uint32_t{replica} * stages + stage;
}

// What the host reads between events (the simulation's evaluations): the
// stage this node hosts now (null for a spare that has taken nothing).
struct stage_node_view {
  std::shared_ptr<pipeline_stage> stage;
  gossip_actor gossip;             // this node's gossip, also one made at a take-over
  uint64_t frames_rejected = 0;
};

// Hybrid runs: the gossip actor of a stage a spare has taken over (replica,
// stage, the spare's node, the stage's master parameters); an empty function
// leaves such a stage without gossip.
using gossip_factory =
    std::function<gossip_actor(uint16_t, uint16_t, uint32_t, std::shared_ptr<Sequential>)>;

// `stage` null: a spare; make_stage builds the stage (replica, stage) it
// takes over (without its parameters: those come from the checkpoint).
// gossip (may be invalid): stage s of the other replicas, mixed into the
// master parameters at every step boundary (publish, then mix). A take-over
// is announced to stage s of the other replicas too: their gossip swaps the
// dead node for the new host (which gets a full copy first).
stage_actor spawn_stage_node(caf::actor_system& sys, const stage_node_settings& s,
                             std::shared_ptr<pipeline_stage> stage,
                             std::function<std::shared_ptr<pipeline_stage>(uint16_t, uint16_t)> make_stage,
                             transport_actor transport, clock_actor clock, pipeline_observer observer,
                             gossip_actor gossip, std::shared_ptr<stage_node_view> view,
                             gossip_factory make_gossip = {});

}  // namespace murmur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::pipeline_event)
