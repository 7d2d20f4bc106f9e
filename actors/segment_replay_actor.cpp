#include "actors/segment_replay_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <exception>
#include <map>

namespace murmur {

namespace {

// The check itself: the verdict, the job handed back when asked, the time.
segment_check_done run_check(segment_checker& checker, std::shared_ptr<segment_check> job) {
  const auto t0 = std::chrono::steady_clock::now();
  segment_check_done done;
  if (job) {
    done.verdict = checker.run(*job);
    if (job->give_back == segment_check::always ||
        (job->give_back == segment_check::when_failed && done.verdict.kind == segment_verdict::failed))
      done.job = std::move(job);
    job.reset();  // a boundary state's worth of memory: gone before the verdict travels
  }
  done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return done;
}

struct segment_replay_state {
  // Shared with the runner's work: a check still running when this actor
  // is gone keeps its checker.
  std::shared_ptr<segment_checker> checker;
  std::shared_ptr<segment_check_runner> runner;
  uint64_t next_id = 0;
  std::map<uint64_t, caf::typed_response_promise<segment_check_done>> waiting;  // at the runner
  static inline const char* name = "segment_replay";
};

segment_replay_actor::behavior_type segment_replay_behavior(
    segment_replay_actor::stateful_pointer<segment_replay_state> self, segment_checker::replay_factory replay_of,
    double step_flops, std::shared_ptr<segment_check_runner> runner, std::shared_ptr<boundary_store> spill) {
  self->state.checker = std::make_shared<segment_checker>(std::move(replay_of), step_flops, std::move(spill));
  self->state.runner = std::move(runner);
  return {
      [self](segcheck_atom, std::shared_ptr<segment_check>& job) -> caf::result<segment_check_done> {
        auto& st = self->state;
        if (!st.runner) return run_check(*st.checker, std::move(job));
        const uint64_t id = st.next_id++;
        st.waiting.emplace(id, self->make_response_promise<segment_check_done>());
        const uint64_t steps = job ? job->commit.end_step - std::min(job->commit.end_step, job->commit.start_step) : 0;
        auto done = std::make_shared<segment_check_done>();
        st.runner->start(
            steps,
            [checker = st.checker, job = std::move(job), done]() mutable {
              try {
                *done = run_check(*checker, std::move(job));
              } catch (const std::exception& e) {
                done->error = e.what();
              }
            },
            [me = caf::actor_cast<segment_replay_actor>(self), id, done]() {
              caf::anon_send(me, segready_atom::value, id, done);
            });
        return caf::delegated<segment_check_done>{};
      },
      [self](segready_atom, uint64_t id, std::shared_ptr<segment_check_done>& done) {
        auto& st = self->state;
        const auto it = st.waiting.find(id);
        if (it == st.waiting.end() || !done) return;
        if (!done->error.empty())
          it->second.deliver(caf::make_error(caf::sec::runtime_error, "segment check: " + done->error));
        else
          it->second.deliver(std::move(*done));
        st.waiting.erase(it);
      },
  };
}

}  // namespace

segment_replay_actor spawn_segment_replay_actor(caf::actor_system& sys, segment_checker::replay_factory replay_of,
                                                double step_flops, std::shared_ptr<segment_check_runner> runner,
                                                std::shared_ptr<boundary_store> spill) {
  return sys.spawn(segment_replay_behavior, std::move(replay_of), step_flops, std::move(runner), std::move(spill));
}

}  // namespace murmur
