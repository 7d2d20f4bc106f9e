// segment_check_runner: where a verifier's segment checks run, when not on
// its replay actor (segment_replay_actor.hpp). A check replays a whole
// segment (K training steps); on a host with a core to spare that work can
// run beside the training instead of in its way. The simulator, whose
// event loop is one thread, gives its verifiers a runner with one worker
// thread (sim/check_worker.hpp); a LAN peer needs none (its replay actor
// already runs on a scheduler thread of its own).
//
// The contract, for the replay actor that calls start:
//  - work is the check; it touches only what it holds (segment_check.hpp:
//    "run touches nothing but the checker") and may run on another thread,
//    at any time after start; the runner runs one work at a time, in the
//    order started, so one checker is never used by two threads at once;
//  - ready is called exactly once per start, after work has returned, on
//    a thread from which actor messages may be sent (the host's choice of
//    when: the simulator calls it at a virtual time fixed by `steps`, so a
//    verdict takes effect at the same point of a run however fast the
//    check ran, and a run stays deterministic);
//  - a runner destroyed with work pending may drop it without calling ready
//    (the actors are shutting down).
#pragma once
#include <cstdint>
#include <functional>

namespace murmur {

class segment_check_runner {
 public:
  virtual ~segment_check_runner() = default;
  // steps: how many training steps the check replays (hosts that model
  // time charge it); work: the check; ready: see above.
  virtual void start(uint64_t steps, std::function<void()> work, std::function<void()> ready) = 0;
};

}  // namespace murmur
