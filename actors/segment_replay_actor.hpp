// segment_replay_actor: runs one verifier actor's segment checks
// (segment_check.hpp: hash the reply against the held commitment, replay,
// on failure the bisection replay) off that actor. A replay takes seconds
// on a loaded machine; on the verifier actor it held up the answers to its
// own segment challenges, and honest provers were charged misses.
//
// Each request is one job (the commitment and the reply, moved in); the
// answer is the verdict and the wall time the check took. Jobs run one at a
// time in arrival order: the mailbox is the queue, and the verifier actor
// bounds how many it has out (verifier_actor.cpp). The actor keeps no state
// of the verifier's; the verifier keeps all bookkeeping (deadlines, ledger,
// quarantine, evidence) and acts on the verdict when it comes back.
// Given a segment_check_runner, the actor hands each check to it instead
// of running it, and answers when the runner says the result is ready
// (segready); the verdict is the same, only where and when it is computed
// differs.
#pragma once
#include <caf/fwd.hpp>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "actors/segment_check.hpp"
#include "actors/segment_check_runner.hpp"

namespace murmur {

using segcheck_atom = caf::atom_constant<caf::atom("segcheck")>;
using segready_atom = caf::atom_constant<caf::atom("segready")>;

struct segment_check_done {
  segment_verdict verdict;
  double seconds = 0;  // wall time of the check (hashing and replays)
  std::shared_ptr<segment_check> job;  // handed back as its give_back asks; null otherwise
  std::string error;  // at a runner, the check threw this (the request gets it as an error)
};

using segment_replay_actor = caf::typed_actor<
    caf::replies_to<segcheck_atom, std::shared_ptr<segment_check>>::with<segment_check_done>,
    // From the runner's ready: check `id` has its result in done.
    caf::reacts_to<segready_atom, uint64_t /*id*/, std::shared_ptr<segment_check_done>>>;

// The checker (segment_checker) is made with these, on the actor. runner:
// where checks run (null: on this actor, as they come); spill: where the
// checker keeps a start state during its replay (segment_check.hpp; null:
// in memory).
segment_replay_actor spawn_segment_replay_actor(caf::actor_system& sys, segment_checker::replay_factory replay_of,
                                                double step_flops,
                                                std::shared_ptr<segment_check_runner> runner = nullptr,
                                                std::shared_ptr<boundary_store> spill = nullptr);

}  // namespace murmur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(murmur::segment_check_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<murmur::segment_check_done>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<murmur::segment_check>)
