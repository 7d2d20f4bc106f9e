// The typed interfaces of a peer's actors and the messages between them.
// CAF 0.17 spellings (atom(), replies_to<>::with<>) are kept to this file.
//
//   driver --cycle--> shard --mix/publish--> gossip --send--> transport
//   transport --deliver(from, frame)--> gossip (of the destination peer)
//   transport --sent(to)--> gossip (of the sender, once the frame has left
//   its uplink: the gossip actor publishes again only when nothing of its
//   own is still queued, so traffic adapts to the bandwidth it has)
//
// The transport is whatever carries frames between peers: the simulated
// network (sim/) or ZeroMQ sockets; the actors cannot tell which.
#pragma once
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "actors/gossip_state.hpp"
#include "actors/trainer.hpp"

namespace murmur {

using cycle_atom = caf::atom_constant<caf::atom("cycle")>;
using eval_atom = caf::atom_constant<caf::atom("eval")>;
using mix_atom = caf::atom_constant<caf::atom("mix")>;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using send_atom = caf::atom_constant<caf::atom("send")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using sent_atom = caf::atom_constant<caf::atom("sent")>;
using nbrs_atom = caf::atom_constant<caf::atom("nbrs")>;
using resync_atom = caf::atom_constant<caf::atom("resync")>;
using segstart_atom = caf::atom_constant<caf::atom("segstart")>;
using state_atom = caf::atom_constant<caf::atom("state")>;
using install_atom = caf::atom_constant<caf::atom("install")>;
using quarantine_atom = caf::atom_constant<caf::atom("quarantine")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;

// One serialized frame, shared (not copied) by every receiver of a round.
struct wire_frame {
  std::shared_ptr<const std::vector<std::byte>> bytes;
};

// Result of one cycle of a shard: step number reached and its batch loss.
struct step_report {
  uint64_t step = 0;
  float loss = 0;
  bool published = false;
};

// A range of a peer's parameters and the step they are from (state transfer).
struct state_slice {
  uint64_t step = 0;
  uint32_t dim = 0, offset = 0;
  std::vector<float> values;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_slice& x) {
  return f(caf::meta::type_name("state_slice"), x.step, x.dim, x.offset, x.values);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_report& x) {
  return f(caf::meta::type_name("step_report"), x.step, x.loss, x.published);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, eval_report& x) {
  return f(caf::meta::type_name("eval_report"), x.test_loss, x.test_accuracy, x.train_loss, x.steps);
}

using transport_actor =
    caf::typed_actor<caf::reacts_to<send_atom, uint32_t /*from*/, uint32_t /*to*/, wire_frame>>;

using gossip_actor = caf::typed_actor<
    caf::replies_to<mix_atom>::with<bool>,
    caf::replies_to<publish_atom, uint64_t /*step*/>::with<bool>,
    // A mix, then a publish at `step` (gossip.publish = before_step): one
    // pass where the state allows it (gossip_state::mix_publish).
    caf::replies_to<mix_atom, uint64_t /*step*/>::with<bool>,
    caf::reacts_to<deliver_atom, uint32_t /*from*/, wire_frame>,
    caf::reacts_to<sent_atom, uint32_t /*to*/>,
    caf::reacts_to<nbrs_atom, std::vector<uint32_t>, std::vector<uint64_t> /*incarnations*/>,
    caf::reacts_to<resync_atom>,
    // verify.scheme = segment: opens the segment log afresh at the current
    // state (true), e.g. after a state install before training; false
    // without a log. Only while the trainer is idle.
    caf::replies_to<segstart_atom>::with<bool>,
    caf::reacts_to<quarantine_atom, uint32_t /*peer*/, uint8_t /*quarantine_cause*/>,
    // The watcher hears (quarantine_atom, peer, cause) for every quarantine
    // from now on, whoever decided it (verifier, detector), and for those
    // already made.
    caf::reacts_to<watch_atom, caf::actor /*watcher*/>,
    caf::replies_to<stats_atom>::with<gossip_counters>>;

using shard_actor = caf::typed_actor<
    caf::replies_to<cycle_atom>::with<step_report>,
    caf::replies_to<eval_atom>::with<eval_report>,
    caf::replies_to<eval_atom, int64_t, int64_t>::with<eval_report>,  // test samples [begin, begin + count)
    caf::replies_to<state_atom, uint32_t /*offset*/, uint32_t /*length*/>::with<state_slice>,
    caf::replies_to<install_atom, state_slice>::with<bool>>;

}  // namespace murmur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::wire_frame)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::gossip_counters)
