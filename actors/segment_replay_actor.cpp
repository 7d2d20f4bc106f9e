#include "actors/segment_replay_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>

namespace murmur {

namespace {

struct segment_replay_state {
  std::unique_ptr<segment_checker> checker;
  static inline const char* name = "segment_replay";
};

segment_replay_actor::behavior_type segment_replay_behavior(
    segment_replay_actor::stateful_pointer<segment_replay_state> self, segment_checker::replay_factory replay_of,
    double step_flops) {
  self->state.checker = std::make_unique<segment_checker>(std::move(replay_of), step_flops);
  return {
      [self](segcheck_atom, std::shared_ptr<segment_check>& job) -> segment_check_done {
        const auto t0 = std::chrono::steady_clock::now();
        segment_check_done done;
        if (job) {
          done.verdict = self->state.checker->run(*job);
          if (job->give_back == segment_check::always ||
              (job->give_back == segment_check::when_failed && done.verdict.kind == segment_verdict::failed))
            done.job = std::move(job);
          job.reset();  // a boundary state's worth of memory: gone before the verdict travels
        }
        done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return done;
      },
  };
}

}  // namespace

segment_replay_actor spawn_segment_replay_actor(caf::actor_system& sys, segment_checker::replay_factory replay_of,
                                                double step_flops) {
  return sys.spawn(segment_replay_behavior, std::move(replay_of), step_flops);
}

}  // namespace murmur
